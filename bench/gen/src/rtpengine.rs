//! The reference relay's side of `relay-gen rtpengine`: calls set up on rtpengine (Debian's
//! `rtpengine-daemon`, userspace) over its ng control protocol, the way Kamailio's
//! rtpengine module does, so the same SRTP streams the relay is measured with can be
//! re-keyed by rtpengine. Sans-I/O: the ng messages (bencoded dictionaries after a cookie)
//! and the SDP both legs send and read; `relay-gen` does the sockets.
//!
//! Per call, leg a offers `RTP/SAVP` with its SDES key; rtpengine's reply is the SDP leg b
//! sees (rtpengine's address towards b and the keys rtpengine will send to b with, one per
//! suite it offers; for leg a's own suite, leg a's own key). Leg b answers choosing one line
//! (`relay-gen` takes a suite other than leg a's, so that rtpengine re-keys); rtpengine's
//! reply is the SDP leg a sees (its address towards a). The stream a -> b is then: the
//! generator sends SRTP with a's key to rtpengine's a-side address, rtpengine sends it on
//! from its b-side address re-keyed with the key of the line b chose.

use std::net::{IpAddr, SocketAddr};

use relay_srtp::{SdesKey, Suite};
use serde::{Deserialize, Serialize};

use crate::streams::StreamPlan;

/// Why an ng exchange or its SDP cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NgError {
    /// The reply is not `<cookie> <bencoded dictionary>` for our cookie.
    #[error("rtpengine's reply is not an ng reply to this request")]
    NotOurReply,
    /// The dictionary does not decode.
    #[error("rtpengine's reply does not decode: {0}")]
    Bencode(String),
    /// rtpengine said no.
    #[error("rtpengine answered {result}: {reason}")]
    Refused {
        /// `error`, `load limit`, ...
        result: String,
        /// rtpengine's `error-reason`.
        reason: String,
    },
    /// The reply carries no SDP.
    #[error("rtpengine's reply has no SDP")]
    NoSdp,
    /// The SDP lacks a part the stream needs.
    #[error("rtpengine's SDP has no {0}")]
    SdpLacks(&'static str),
    /// The SDES key of the chosen line does not parse.
    #[error("rtpengine's SDES key: {0}")]
    Key(String),
}

/// An ng request (the keys rtpengine reads; `sdp` only for offer and answer).
#[derive(Serialize)]
struct Request<'a> {
    command: &'a str,
    #[serde(rename = "call-id")]
    call_id: &'a str,
    #[serde(rename = "from-tag")]
    from_tag: &'a str,
    #[serde(rename = "to-tag", skip_serializing_if = "Option::is_none")]
    to_tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sdp: Option<&'a str>,
}

/// The part of an ng reply used here.
#[derive(Deserialize)]
struct Reply {
    result: String,
    #[serde(rename = "error-reason", default)]
    error_reason: Option<String>,
    #[serde(default)]
    sdp: Option<String>,
}

/// One call's tags (call `i` of a run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallIds {
    /// The SIP Call-ID rtpengine keys the call by.
    pub call_id: String,
    /// Leg a's tag.
    pub from_tag: String,
    /// Leg b's tag.
    pub to_tag: String,
}

impl CallIds {
    /// Call `i` of run `run` (a run's calls never meet another's).
    pub fn new(run: &str, i: usize) -> CallIds {
        CallIds {
            call_id: format!("relay-gen-{run}-{i}"),
            from_tag: format!("a{i}"),
            to_tag: format!("b{i}"),
        }
    }
}

/// The ng datagram for `command` (`offer`, `answer`, `delete`) of `call`, after `cookie`.
pub fn request(cookie: &str, command: &str, call: &CallIds, sdp: Option<&str>) -> Vec<u8> {
    let to_tag = (command != "offer").then_some(call.to_tag.as_str());
    let body = serde_bencode::to_bytes(&Request {
        command,
        call_id: &call.call_id,
        from_tag: &call.from_tag,
        to_tag,
        sdp,
    })
    .expect("a dictionary of strings encodes");
    let mut out = Vec::with_capacity(cookie.len() + 1 + body.len());
    out.extend_from_slice(cookie.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&body);
    out
}

/// The SDP of an ng reply to the request sent with `cookie` (`None` for a reply without
/// SDP, as `delete`'s).
pub fn reply_sdp(cookie: &str, datagram: &[u8]) -> Result<Option<String>, NgError> {
    let body = datagram
        .strip_prefix(cookie.as_bytes())
        .and_then(|r| r.strip_prefix(b" "))
        .ok_or(NgError::NotOurReply)?;
    let reply: Reply =
        serde_bencode::from_bytes(body).map_err(|e| NgError::Bencode(e.to_string()))?;
    if reply.result != "ok" {
        return Err(NgError::Refused {
            result: reply.result,
            reason: reply.error_reason.unwrap_or_default(),
        });
    }
    Ok(reply.sdp)
}

/// A leg's SDP: one audio stream of PCMU at `addr`, SRTP with `key` under crypto tag `tag`.
pub fn leg_sdp(addr: SocketAddr, key: &SdesKey, tag: u32) -> String {
    let family = if addr.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=- 1 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
         a=crypto:{tag} {suite} {inline}\r\na=sendrecv\r\n",
        ip = addr.ip(),
        port = addr.port(),
        suite = key.master.suite().name(),
        inline = key.to_inline(),
    )
}

/// What the far side of an SDP offers: its media address and, for `suite`, its crypto tag
/// and key.
pub struct Media {
    /// Where the media goes (`c=` and the audio `m=` port).
    pub addr: SocketAddr,
    /// The crypto line's tag.
    pub tag: u32,
    /// The key it sends with.
    pub key: SdesKey,
}

/// The audio media of `sdp` with the `a=crypto` line of `suite`.
pub fn media(sdp: &str, suite: Suite) -> Result<Media, NgError> {
    let mut ip: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    let mut crypto = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(c) = line.strip_prefix("c=IN ") {
            ip = c.split_whitespace().nth(1).and_then(|a| a.parse().ok());
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m.split_whitespace().next().and_then(|p| p.parse().ok());
        } else if let Some(a) = line.strip_prefix("a=crypto:") {
            let mut f = a.split_whitespace();
            let (Some(tag), Some(name), Some(params)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if crypto.is_none() && name == suite.name() {
                let tag = tag.parse().map_err(|_| NgError::SdpLacks("crypto tag"))?;
                let key = SdesKey::parse_inline(suite, params)
                    .map_err(|e| NgError::Key(e.to_string()))?;
                crypto = Some((tag, key));
            }
        }
    }
    let ip = ip.ok_or(NgError::SdpLacks("c= line"))?;
    let port = port.ok_or(NgError::SdpLacks("audio m= line"))?;
    let (tag, key) = crypto.ok_or(NgError::SdpLacks("a=crypto line of the suite"))?;
    Ok(Media {
        addr: SocketAddr::new(ip, port),
        tag,
        key,
    })
}

/// The stream a -> b of one call set up through rtpengine: the generator sends from
/// `a_addr` with `a_key` to rtpengine's a-side address (`towards_a`: the answer reply), and
/// receives at `b_addr` from rtpengine's b-side address with the key of the line b chose
/// (`towards_b`: the offer reply).
pub fn stream(
    call: &CallIds,
    a_addr: SocketAddr,
    a_key: SdesKey,
    b_addr: SocketAddr,
    towards_a: SocketAddr,
    towards_b: Media,
) -> StreamPlan {
    StreamPlan {
        call: call.call_id.clone(),
        from: a_addr,
        to_relay: towards_a,
        relay_out: towards_b.addr,
        to_peer: b_addr,
        send_key: Some(a_key),
        receive_key: Some(towards_b.key),
        clock_rate: 8000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_srtp::MasterKey;

    fn key() -> SdesKey {
        SdesKey::new(MasterKey::random(Suite::AesCm128HmacSha1_80).unwrap())
    }

    #[test]
    fn requests_are_bencoded_after_the_cookie() {
        let call = CallIds::new("7", 3);
        let offer = request("c1", "offer", &call, Some("v=0\r\n"));
        let text = String::from_utf8(offer).unwrap();
        assert!(text.starts_with("c1 d"), "{text}");
        assert!(text.contains("7:call-id13:relay-gen-7-3"), "{text}");
        assert!(text.contains("7:command5:offer"), "{text}");
        assert!(text.contains("3:sdp5:v=0\r\n"), "{text}");
        assert!(!text.contains("to-tag"), "an offer has no to-tag: {text}");
        let delete = String::from_utf8(request("c2", "delete", &call, None)).unwrap();
        assert!(delete.contains("6:to-tag2:b3"), "{delete}");
        assert!(!delete.contains("3:sdp"), "{delete}");
    }

    #[test]
    fn replies_give_their_sdp_or_say_why_not() {
        assert_eq!(
            reply_sdp("c1", b"c1 d6:result2:ok3:sdp3:v=0e"),
            Ok(Some("v=0".into()))
        );
        assert_eq!(reply_sdp("c1", b"c1 d6:result2:oke"), Ok(None));
        assert_eq!(
            reply_sdp("c1", b"c1 d12:error-reason7:no call6:result5:errore"),
            Err(NgError::Refused {
                result: "error".into(),
                reason: "no call".into()
            })
        );
        assert_eq!(
            reply_sdp("c1", b"c2 d6:result2:oke"),
            Err(NgError::NotOurReply)
        );
        assert!(matches!(
            reply_sdp("c1", b"c1 d6:result"),
            Err(NgError::Bencode(_))
        ));
    }

    #[test]
    fn the_chosen_suites_line_is_read_back() {
        let k = key();
        let addr: SocketAddr = "198.18.0.5:30000".parse().unwrap();
        // rtpengine offers several suites; the one asked for is found whatever its place.
        let other = SdesKey::new(MasterKey::random(Suite::AesCm128HmacSha1_32).unwrap());
        let sdp = leg_sdp(addr, &k, 2).replace(
            "a=crypto:2",
            &format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_32 {}\r\na=crypto:2",
                other.to_inline()
            ),
        );
        let m = media(&sdp, Suite::AesCm128HmacSha1_80).unwrap();
        assert_eq!(m.addr, addr);
        assert_eq!(m.tag, 2);
        assert_eq!(m.key.to_inline(), k.to_inline());
        assert_eq!(
            media(
                "v=0\r\nm=audio 4 RTP/SAVP 0\r\n",
                Suite::AesCm128HmacSha1_80
            )
            .err(),
            Some(NgError::SdpLacks("c= line"))
        );
        let plain = "c=IN IP4 198.18.0.5\r\nm=audio 4 RTP/AVP 0\r\n";
        assert_eq!(
            media(plain, Suite::AesCm128HmacSha1_80).err(),
            Some(NgError::SdpLacks("a=crypto line of the suite"))
        );
    }
}
