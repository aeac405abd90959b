//! The streams of a relay's sessions file as the generator sees them. Each media pair of a
//! call gives one stream: the generator plays leg a's peer (it sends from `a.remote` to the
//! relay's `a.local`, protected with the key the relay receives with, `a.receive`) and leg
//! b's peer (the relay sends from `b.local` to `b.remote`, protected with `b.send`, and the
//! generator opens it with that key).

use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use relay_session::{CallSpec, SessionsFile};
use relay_srtp::SdesKey;

/// One stream the generator sends and verifies.
#[derive(Clone, Debug)]
pub struct StreamPlan {
    /// The call it belongs to.
    pub call: String,
    /// Where the generator sends from (leg a's peer).
    pub from: SocketAddr,
    /// The relay's address it sends to (leg a's local address).
    pub to_relay: SocketAddr,
    /// Where the relay sends from (leg b's local address).
    pub relay_out: SocketAddr,
    /// Where the relayed packets go (leg b's peer: the generator's receiving address).
    pub to_peer: SocketAddr,
    /// The key the generator protects with (the relay's receiving key of leg a); `None`
    /// for plain RTP.
    pub send_key: Option<SdesKey>,
    /// The key the relayed packets carry (the relay's sending key of leg b); `None` for
    /// plain RTP.
    pub receive_key: Option<SdesKey>,
    /// RTP timestamp units per second on leg a.
    pub clock_rate: u32,
}

/// Why a sessions file cannot be played.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// A leg has no peer address: the generator would not know where to send from or to.
    #[error("call {call}: leg {leg} has no remote address; the generator plays both peers, so every leg needs one")]
    NoRemote {
        /// The call.
        call: String,
        /// `a` or `b`.
        leg: char,
    },
    /// A key does not parse.
    #[error("{0}")]
    Key(String),
    /// Nothing to send.
    #[error("the sessions file has no calls")]
    Empty,
}

/// Which stream each relayed packet belongs to, by the address it was sent to (the
/// generator's receiving address of the stream).
pub fn by_destination(plans: &[StreamPlan]) -> FxHashMap<SocketAddr, usize> {
    plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.to_peer, i))
        .collect()
}

/// The streams as a loop returns them: every packet comes back unchanged (`dpdk-testpmd`
/// forwarding between the generator's ports, a cable loop), so it is received at the
/// address it was sent to and opened with the key it was protected with. Runs over a loop
/// measure the I/O path without the relay: the ceiling the relay's figures are set against.
pub fn looped(mut plans: Vec<StreamPlan>) -> Vec<StreamPlan> {
    for p in &mut plans {
        p.relay_out = p.to_relay;
        p.to_peer = p.to_relay;
        p.receive_key = p.send_key.clone();
    }
    plans
}

/// The streams of `file`, in call and media order.
pub fn plan(file: &SessionsFile) -> Result<Vec<StreamPlan>, PlanError> {
    let mut out = Vec::new();
    for call in &file.calls {
        out.extend(call_streams(call)?);
    }
    if out.is_empty() {
        return Err(PlanError::Empty);
    }
    Ok(out)
}

fn call_streams(call: &CallSpec) -> Result<Vec<StreamPlan>, PlanError> {
    let key = |c: &Option<relay_session::CryptoSpec>| {
        c.as_ref()
            .map(|c| c.parse(&call.id))
            .transpose()
            .map_err(|e| PlanError::Key(e.to_string()))
    };
    let remote = |r: Option<SocketAddr>, leg| {
        r.ok_or_else(|| PlanError::NoRemote {
            call: call.id.clone(),
            leg,
        })
    };
    call.media
        .iter()
        .map(|m| {
            Ok(StreamPlan {
                call: call.id.clone(),
                from: remote(m.a.remote, 'a')?,
                to_relay: m.a.local,
                relay_out: m.b.local,
                to_peer: remote(m.b.remote, 'b')?,
                send_key: key(&m.a.receive)?,
                receive_key: key(&m.b.send)?,
                clock_rate: m.a.clock_rate,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"version":1,"calls":[{"id":"c1","media":[{"rtcp":"mux",
        "a":{"local":"198.18.0.1:40000","remote":"198.18.0.10:5004","clock_rate":8000,
             "receive":{"suite":"AES_CM_128_HMAC_SHA1_80","key":"inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2"}},
        "b":{"local":"198.19.0.1:40002","remote":"198.19.0.20:6000","clock_rate":8000,
             "send":{"suite":"AEAD_AES_128_GCM","key":"inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHA=="}}}]}]}"#;

    #[test]
    fn a_call_gives_a_stream_from_leg_a_to_leg_b() {
        let file = SessionsFile::from_json(FILE).unwrap();
        let s = plan(&file).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].from, "198.18.0.10:5004".parse().unwrap());
        assert_eq!(s[0].to_relay, "198.18.0.1:40000".parse().unwrap());
        assert_eq!(s[0].relay_out, "198.19.0.1:40002".parse().unwrap());
        assert_eq!(s[0].to_peer, "198.19.0.20:6000".parse().unwrap());
        assert_eq!(
            s[0].send_key.as_ref().map(|k| k.master.suite().name()),
            Some("AES_CM_128_HMAC_SHA1_80")
        );
        assert_eq!(
            s[0].receive_key.as_ref().map(|k| k.master.suite().name()),
            Some("AEAD_AES_128_GCM")
        );
    }

    #[test]
    fn a_leg_without_a_peer_is_refused_by_name() {
        let file =
            SessionsFile::from_json(&FILE.replace(r#""remote":"198.19.0.20:6000","#, "")).unwrap();
        let e = plan(&file).unwrap_err();
        assert_eq!(
            e,
            PlanError::NoRemote {
                call: "c1".into(),
                leg: 'b'
            }
        );
        assert!(e.to_string().contains("leg b has no remote address"));
    }

    #[test]
    fn a_loop_returns_what_was_sent() {
        let file = SessionsFile::from_json(FILE).unwrap();
        let s = looped(plan(&file).unwrap());
        assert_eq!(s[0].to_peer, "198.18.0.1:40000".parse().unwrap());
        assert_eq!(s[0].relay_out, s[0].to_relay);
        assert_eq!(
            s[0].receive_key.as_ref().map(|k| k.master.suite().name()),
            Some("AES_CM_128_HMAC_SHA1_80")
        );
    }

    #[test]
    fn an_empty_file_is_refused() {
        let file = SessionsFile::from_json(r#"{"version":1}"#).unwrap();
        assert_eq!(plan(&file).unwrap_err(), PlanError::Empty);
    }
}
