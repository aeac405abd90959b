//! The control plane builds data-plane calls from the session crate alone: no DPDK is linked
//! into `relay-control` (`cargo tree -p relay-control` has no `relay-sys`). A call with fresh
//! SDES keys per leg and direction becomes the `add_call` line the data plane reads.

use relay_session::control::{Envelope, Request};
use relay_session::{CallSpec, CryptoSpec, LegSpec, MediaSpec, RtcpMode};
use relay_srtp::{MasterKey, SdesKey, Suite};

fn fresh(suite: Suite) -> CryptoSpec {
    let key = SdesKey::new(MasterKey::random(suite).expect("OS random source"));
    CryptoSpec {
        suite: suite.name().to_owned(),
        key: key.to_inline(),
    }
}

#[test]
fn a_call_with_fresh_keys_per_leg_becomes_an_add_call_request() {
    let leg = |local: &str, remote: &str, suite: Suite| LegSpec {
        local: local.parse().unwrap(),
        remote: Some(remote.parse().unwrap()),
        strict_source: true,
        receive: Some(fresh(suite)),
        send: Some(fresh(suite)),
        clock_rate: 8000,
        resume_receive: Vec::new(),
        resume_send: Vec::new(),
    };
    let call = CallSpec {
        id: "teams-1".into(),
        media: vec![MediaSpec {
            rtcp: RtcpMode::Mux,
            a: leg(
                "198.18.0.1:40000",
                "198.18.1.10:5004",
                Suite::AesCm128HmacSha1_80,
            ),
            b: leg(
                "[2001:2::1]:40002",
                "[2001:2::20]:6000",
                Suite::AeadAes128Gcm,
            ),
        }],
    };
    let keys: Vec<String> = [&call.media[0].a, &call.media[0].b]
        .iter()
        .flat_map(|l| [&l.receive, &l.send])
        .map(|c| c.as_ref().unwrap().key.clone())
        .collect();
    for (i, k) in keys.iter().enumerate() {
        assert!(
            keys[i + 1..].iter().all(|other| other != k),
            "every leg and direction has its own key"
        );
    }
    let line =
        serde_json::to_string(&Envelope::new(Request::AddCall { call: call.clone() })).unwrap();
    let back = Envelope::parse(&line).unwrap();
    assert_eq!(back.request, Request::AddCall { call });
    let text = format!("{back:?}");
    assert!(
        keys.iter().all(|k| !text.contains(&k[7..])),
        "no key in Debug"
    );
}
