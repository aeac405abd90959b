//! Why a message, a header value or an SDP was refused.
//!
//! Errors are small `Copy` values that name the problem and never carry bytes from the
//! input, so a reason phrase or a log line built from one cannot echo attacker data.

use crate::header::StdHeader;

/// Why a SIP message (or one of its header values) was refused.
///
/// [`ParseError::status`] and [`ParseError::reason`] give the response a UAS sends for a
/// refused request (RFC 3261 section 21); a refused response is dropped instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The message is larger than [`crate::Limits::max_message_size`].
    #[error("Message Too Large")]
    MessageTooLarge,
    /// More header fields than [`crate::Limits::max_headers`].
    #[error("Too Many Header Fields")]
    TooManyHeaders,
    /// A header field name longer than [`crate::Limits::max_header_name_len`].
    #[error("Header Name Too Long")]
    HeaderNameTooLong,
    /// A header field value longer than [`crate::Limits::max_header_value_len`].
    #[error("Header Value Too Long")]
    HeaderValueTooLong,
    /// A Request-URI longer than [`crate::Limits::max_uri_len`].
    #[error("Request-URI Too Long")]
    UriTooLong,
    /// A body (by Content-Length or size) over [`crate::Limits::max_body_size`].
    #[error("Request Entity Too Large")]
    BodyTooLarge,
    /// More Via values than [`crate::Limits::max_vias`].
    #[error("Too Many Hops")]
    TooManyVias,
    /// Bytes in the start line or the header section that are not UTF-8.
    #[error("Header Not UTF-8")]
    NotUtf8,
    /// A control character (other than HTAB) in the start line or a header field.
    #[error("Control Character in Header")]
    ControlCharacter,
    /// A CR or LF that is not part of a CRLF line ending.
    #[error("Bare CR or LF")]
    BadLineEnding,
    /// The header section has no empty line ending it.
    #[error("Unterminated Header Section")]
    Unterminated,
    /// The start line is neither a Request-Line nor a Status-Line.
    #[error("Malformed Start Line")]
    BadStartLine,
    /// The method is not a token.
    #[error("Malformed Method")]
    BadMethod,
    /// The Request-URI does not follow its scheme's grammar.
    #[error("Malformed Request-URI")]
    BadRequestUri,
    /// The Request-URI's scheme is well formed but not sip, sips or tel.
    #[error("Unsupported URI Scheme")]
    UnsupportedUriScheme,
    /// A well-formed SIP version other than 2.0.
    #[error("Version Not Supported")]
    UnsupportedVersion,
    /// A status code that is not three digits from 100 to 699.
    #[error("Malformed Status Code")]
    BadStatusCode,
    /// A reason phrase with characters RFC 3261 does not allow there.
    #[error("Malformed Reason Phrase")]
    BadReasonPhrase,
    /// A header field name that is not a token (or a line without a colon).
    #[error("Malformed Header Name")]
    BadHeaderName,
    /// A header field value that does not follow its grammar.
    #[error("Malformed {0} Header")]
    BadHeader(StdHeader),
    /// A header field the message must carry is missing.
    #[error("Missing {0} Header")]
    MissingHeader(StdHeader),
    /// A single-valued header field appears more than once.
    #[error("Duplicate {0} Header")]
    DuplicateHeader(StdHeader),
    /// The CSeq method differs from the request method.
    #[error("CSeq Method Mismatch")]
    CSeqMethodMismatch,
    /// No Content-Length on a stream transport, where it frames the message.
    #[error("Missing Content-Length")]
    MissingContentLength,
    /// A datagram shorter than its header section plus Content-Length.
    #[error("Body Shorter Than Content-Length")]
    BodyTruncated,
    /// Octets after the body of a datagram, when configured to refuse them.
    #[error("Octets After Body")]
    TrailingOctets,
}

impl ParseError {
    /// The status code of the response to a request refused for this reason.
    ///
    //= https://www.rfc-editor.org/rfc/rfc3261#section-21.4
    //# 413 Request Entity Too Large
    //# 414 Request-URI Too Long
    //# 416 Unsupported URI Scheme
    //# 483 Too Many Hops
    //= https://www.rfc-editor.org/rfc/rfc3261#section-21.5
    //# 505 Version Not Supported
    //# 513 Message Too Large
    pub fn status(self) -> u16 {
        match self {
            ParseError::MessageTooLarge | ParseError::TooManyHeaders => 513,
            ParseError::BodyTooLarge => 413,
            ParseError::UriTooLong => 414,
            ParseError::UnsupportedUriScheme => 416,
            ParseError::TooManyVias => 483,
            ParseError::UnsupportedVersion => 505,
            _ => 400,
        }
    }

    /// A reason phrase naming the problem, built from fixed words only.
    pub fn reason(self) -> String {
        self.to_string()
    }
}

/// Why a message could not be built (see [`crate::Message::response_to`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A response was asked for, but the message given is not a request.
    #[error("not a request")]
    NotARequest,
    /// A response to ACK was asked for (RFC 3261 section 17.1.1.3: ACK has none).
    #[error("ACK has no response")]
    AckHasNoResponse,
    /// The status code is outside 100..=699.
    #[error("status code outside 100..=699")]
    BadStatusCode,
    /// The reason phrase has characters a Reason-Phrase may not carry.
    #[error("bad reason phrase")]
    BadReasonPhrase,
    /// The request lacks a header field the response must copy.
    #[error("request has no {0} header")]
    MissingHeader(StdHeader),
    /// The To header field already has a tag.
    #[error("To already has a tag")]
    ToTagPresent,
    /// A tag that is not a token.
    #[error("tag is not a token")]
    BadTag,
}

/// A value handed to a constructor or setter does not follow its grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("value does not follow the grammar")]
pub struct SyntaxError;
