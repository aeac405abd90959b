//! The generator's SIP messages, built with `relay-sip` (`Message`, `Header`, the canonical
//! serializer) and its SDP offers and answers with one SDES `a=crypto` line.

use base64::Engine as _;
use relay_sip::{Header, HeaderName, Message, Method, StdHeader, Uri};

/// The only suite offered and answered: the one every SBC and Teams take.
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// A small, fast generator for tags, branches and Call-IDs (not for keys).
#[derive(Debug)]
pub struct Ids(u64);

impl Ids {
    /// Seeded from the OS.
    pub fn new() -> Ids {
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed).expect("the OS random source");
        Ids(u64::from_le_bytes(seed) | 1)
    }

    /// The next 64 random-looking bits (xorshift64*).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// 16 hex digits.
    pub fn hex(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}

impl Default for Ids {
    fn default() -> Self {
        Ids::new()
    }
}

/// A fresh SDES key and salt (30 bytes from the OS random source), base64 as `inline:` wants.
pub fn fresh_key() -> String {
    let mut k = [0u8; 30];
    getrandom::getrandom(&mut k).expect("the OS random source");
    base64::engine::general_purpose::STANDARD.encode(k)
}

/// Appends a header field the generator wrote itself (always valid text).
pub fn push(m: &mut Message, name: impl Into<HeaderName>, value: impl Into<String>) {
    m.headers
        .push(Header::new(name, value).expect("the generator writes valid header values"));
}

/// An SDP with one audio line, RTP/SAVP, PCMU/PCMA/telephone-event and one `a=crypto`.
pub fn sdp(ip: &str, port: u16, session: u64, tag: &str, key: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=- {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n\
         a=crypto:{tag} {SUITE} inline:{key}\r\n"
    )
    .into_bytes()
}

/// The first `a=crypto` of an SDP body: its tag, suite and key (the `inline:` value up to
/// any `|`). A text scan: the generator checks keys, it does not negotiate.
pub fn first_crypto(body: &[u8]) -> Option<(String, String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=crypto:"))?;
    let mut parts = line.split_whitespace();
    let tag = parts.next()?.to_owned();
    let suite = parts.next()?.to_owned();
    let key = parts
        .next()?
        .strip_prefix("inline:")?
        .split('|')
        .next()?
        .to_owned();
    Some((tag, suite, key))
}

/// What a new dialog's requests share.
#[derive(Clone, Debug)]
pub struct DialogIds {
    /// Call-ID.
    pub call_id: String,
    /// From, with our tag.
    pub from: String,
    /// To (with the remote tag once known).
    pub to: String,
}

/// A request inside (or starting) a dialog.
pub fn request(
    method: Method,
    uri: &Uri,
    via_host: &str,
    branch: &str,
    d: &DialogIds,
    cseq: u32,
    route: &[String],
) -> Message {
    let mut m = Message::request(method.clone(), uri.clone());
    push(
        &mut m,
        StdHeader::Via,
        format!("SIP/2.0/TLS {via_host};branch=z9hG4bK{branch}"),
    );
    for r in route {
        push(&mut m, StdHeader::Route, r.clone());
    }
    push(&mut m, StdHeader::MaxForwards, "70");
    push(&mut m, StdHeader::From, d.from.clone());
    push(&mut m, StdHeader::To, d.to.clone());
    push(&mut m, StdHeader::CallId, d.call_id.clone());
    push(&mut m, StdHeader::CSeq, format!("{cseq} {method}"));
    m
}

/// The response to `req` with `code`; `to_tag` is added if the request's To has none.
pub fn response(req: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Option<Message> {
    let mut r = Message::response_to(req, code, reason).ok()?;
    if let Some(tag) = to_tag {
        if req.to_addr().ok()?.tag().is_none() {
            r.add_to_tag(tag).ok()?;
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_sip::Limits;

    #[test]
    fn an_offer_parses_with_our_sdp_parser_and_its_key_is_found_again() {
        let key = fresh_key();
        let body = sdp("198.18.10.2", 40_000, 7, "1", &key);
        let parsed = relay_sip::sdp::SessionDescription::parse(&body, &Limits::default()).unwrap();
        assert_eq!(parsed.media.len(), 1);
        assert!(parsed.media[0].proto.is_srtp());
        assert_eq!(parsed.media[0].cryptos().count(), 1);
        let (tag, suite, k) = first_crypto(&body).unwrap();
        assert_eq!((tag.as_str(), suite.as_str(), k), ("1", SUITE, key));
    }

    #[test]
    fn requests_and_responses_serialize_and_parse_back() {
        let mut ids = Ids::new();
        let d = DialogIds {
            call_id: format!("{}@198.18.10.2", ids.hex()),
            from: format!("<sip:+4930100@198.18.10.2>;tag={}", ids.hex()),
            to: "<sip:+4930200@198.18.10.1>".into(),
        };
        let uri = Uri::parse("sip:+4930200@198.18.10.1:5061;transport=tls").unwrap();
        let mut m = request(
            Method::Invite,
            &uri,
            "198.18.10.2:40000",
            &ids.hex(),
            &d,
            1,
            &["<sip:198.18.10.1:5061;transport=tls;lr>".into()],
        );
        m.body = sdp("198.18.10.2", 40_000, 1, "1", &fresh_key());
        push(&mut m, StdHeader::ContentType, "application/sdp");
        let bytes = m.to_bytes();
        let back = Message::parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(back.call_id().unwrap(), d.call_id);
        let ok = response(&back, 200, "OK", Some("abc")).unwrap();
        let ok = Message::parse(&ok.to_bytes(), &Limits::default()).unwrap();
        assert_eq!(ok.to_addr().unwrap().tag(), Some("abc"));
    }
}
