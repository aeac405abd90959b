//! SIP and SDP parsing for the session border controller: the part of the control plane
//! that faces the network first, so the part an attacker reaches first.
//!
//! # Design
//!
//! The crate is sans-I/O in the manner of `quinn-proto`: bytes in, typed values or typed
//! errors out, no sockets, no TLS, no clock. The shell around it reads from TCP, TLS or
//! UDP and hands the bytes here; the B2BUA on top takes [`Message`]s and SDPs.
//!
//! * [`parse_datagram`] parses one UDP datagram; [`StreamDecoder`] frames a TCP/TLS stream
//!   by Content-Length, reports RFC 5626 CRLF keep-alives so the shell can answer a ping
//!   with a CRLF, and skips a message that is framed but invalid
//!   ([`Frame::Invalid`]). An `Err` from the decoder means the framing is lost and the
//!   connection must close.
//! * [`Message`] keeps the start line typed and header fields as unfolded text with their
//!   names normalised (compact forms expanded, [`StdHeader`]). Typed accessors
//!   ([`Message::vias`], [`Message::cseq`], [`Message::to_addr`], ...) parse on demand;
//!   the parser has already run every one of them on a message it returns, so they do not
//!   fail on a parsed message.
//! * A refused message is still answered when it can be: [`Refused::salvage`] takes the
//!   Via, From, To, Call-ID and CSeq back out of its bytes (bounded, and never a value
//!   the parser would refuse as unsafe), [`Frame::Invalid`] and
//!   [`StreamDecoder::refused`] hand it over on a stream, and [`Refused::error_response`]
//!   builds the answer with the error's status and fixed words.
//! * [`Message::to_bytes`] writes one canonical form (long names, CRLF, a Content-Length
//!   computed from the body), and [`Message::response_to`] builds the response RFC 3261
//!   section 8.2.6.2 describes.
//! * [`sdp`] parses and writes SDP (RFC 4566) with `a=crypto` (RFC 4568) typed and keys
//!   zeroised on drop and never printed.
//!
//! # Strictness and limits
//!
//! The parser follows the grammar of RFC 3261 sections 7, 20 and 25 and refuses what it
//! does not match: bare CR or LF, control characters (HTAB aside), bytes that are not
//! UTF-8 in the header section, several SP between Request-Line elements, a Content-Length
//! that is missing on a stream, repeated, negative or larger than the body, single-valued
//! fields given twice, a CSeq method other than the request's, and requests without To,
//! From, CSeq, Call-ID, Max-Forwards or Via. Folded header lines are accepted and
//! unfolded, as RFC 3261 section 7.3.1 requires. Every refusal is a [`ParseError`] that
//! names the response (400, 413, 414, 416, 483, 505, 513) and a reason phrase made of
//! fixed words only, never of the input. Unsupported `Require` option tags (420) are a
//! policy decision, not a parse error: [`Message::unsupported_requirements`] lists them.
//!
//! Sizes and counts are bounded by [`Limits`], checked before the work they bound: message
//! size, header count, header name and value length, Request-URI length, body size, Via
//! count and SDP lines and media sections. A stream never buffers more than one maximum
//! message.
//!
//! Where this crate is stricter than RFC 4475 allows (the torture tests the unit tests
//! replay): control characters are refused even inside a quoted-pair (RFC 4475 section
//! 3.1.1.2 puts NUL, BEL and DEL in a display name; peers written in C lose the rest of
//! such a string), RFC 2543 requests without Max-Forwards are refused, and header names
//! over 32 bytes are refused by default. Datagram octets after the body are discarded as
//! RFC 3261 section 18.3 says, or refused if [`Limits::discard_datagram_trailing_octets`]
//! is off.
//!
//! # Not here
//!
//! Transactions, dialogs, the B2BUA and the SDP rewriter build on these types and live
//! elsewhere.

#![forbid(unsafe_code)]

mod error;
mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod limits;
mod message;
mod parse;
mod refused;
#[cfg(test)]
mod rfc4475;
mod scan;
pub mod sdp;
mod serialize;
mod uri;
mod values;

pub use error::{BuildError, ParseError, SyntaxError};
pub use framing::{parse_datagram, Datagram, Frame, StreamDecoder};
pub use header::{Header, HeaderName, Headers, StdHeader};
pub use limits::Limits;
pub use message::{Message, RequestLine, StartLine, StatusLine};
pub use refused::Refused;
pub use scan::{Param, Params};
pub use uri::{Host, OpaqueUri, SipUri, Uri};
pub use values::{
    check_call_id, parse_max_forwards, parse_option_tags, CSeq, Comment, Contact, MediaType,
    Method, NameAddr, Reason, Refresher, RetryAfter, SessionExpires, Token, Transport, Via,
};
