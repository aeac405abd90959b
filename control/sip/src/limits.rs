//! Size and count limits applied while parsing, before anything is allocated for the part
//! that is over the limit.

/// Limits on what the parsers accept. Every field is a hard refusal, never a truncation.
///
/// The defaults suit a trunk or Teams Direct Routing SBC: no well-formed message of RFC
/// 4475 trips them except `longreq`, whose point is a 93-byte header name; and 64 KiB is
/// what one UDP datagram can carry.
///
/// ```
/// let mut limits = relay_sip::Limits::default();
/// limits.max_headers = 60;
/// assert_eq!(limits.max_header_name_len, 32);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Whole message: start line, headers and body (513 when over).
    pub max_message_size: usize,
    /// Header fields, counting each line (after unfolding) once (513 when over).
    pub max_headers: usize,
    /// Bytes in a header field name (400 when over).
    pub max_header_name_len: usize,
    /// Bytes in one header field value after unfolding (400 when over).
    pub max_header_value_len: usize,
    /// Bytes in the Request-URI (414 when over). URIs inside header fields are bounded by
    /// [`Limits::max_header_value_len`] instead: RFC 4475's valid `longreq` carries a
    /// 400-byte To URI, and 414 is defined for the Request-URI only.
    pub max_uri_len: usize,
    /// Bytes in a message body, and so in an SDP (413 when over).
    pub max_body_size: usize,
    /// Via values, over all Via header fields (483 when over: each one is a hop).
    pub max_vias: usize,
    /// Lines in one SDP.
    pub max_sdp_lines: usize,
    /// Bytes in one SDP line, without its line ending.
    pub max_sdp_line_len: usize,
    /// `m=` sections in one SDP.
    pub max_media_sections: usize,
    /// What to do with octets after the body in a UDP datagram. RFC 3261 section 18.3 says
    /// they MUST be discarded (`true`, the default); `false` refuses such a datagram.
    pub discard_datagram_trailing_octets: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024,
            max_headers: 100,
            max_header_name_len: 32,
            max_header_value_len: 4096,
            max_uri_len: 256,
            max_body_size: 16 * 1024,
            // RFC 3261 section 8.1.1.6 recommends a Max-Forwards of 70, so no request that
            // honours it has passed more than 70 hops.
            max_vias: 70,
            max_sdp_lines: 512,
            max_sdp_line_len: 1024,
            max_media_sections: 16,
            discard_datagram_trailing_octets: true,
        }
    }
}
