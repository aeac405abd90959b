//! Calls installed, modified (re-INVITE) and removed.

mod util;

use relay_proto::relay::{DropReason, Verdict};
use relay_srtp::Suite;
use util::*;

#[test]
fn modify_keeps_the_roc_for_an_unchanged_key_and_remove_frees_the_ports() {
    let mut h = Harness::new();
    h.now_ns = 1;
    let (ka, kb, kc) = (
        key(Suite::AesCm128HmacSha1_80, 1),
        key(Suite::AesCm128HmacSha1_80, 2),
        key(Suite::AeadAes256Gcm, 3),
    );
    let call = Call::new("c")
        .a_keys(Some(&ka), None)
        .b_keys(None, Some(&kb));
    let Peers { mut caller, .. } = h.add(&call);
    assert!(h.relay.add_call(&call.spec()).is_err(), "same id twice");
    for seq in [65_535u16, 0] {
        let (mut buf, len, _) = caller.send(seq, 20);
        assert!(matches!(
            h.process(0, &mut buf, len),
            Verdict::Forward { .. }
        ));
    }
    // re-INVITE: same inbound key, new outbound key. The inbound ROC (1) survives: seq 1
    // decrypts; a fresh context would have estimated ROC 0 and failed.
    let changed = call.clone().b_keys(None, Some(&kc));
    h.relay.modify_call(&changed.spec()).unwrap();
    let (mut buf, len, _) = caller.send(1, 20);
    let (_, _, payload) = forwarded(h.process(0, &mut buf, len), &buf);
    let mut callee = changed.peers().callee;
    assert!(callee.open(payload).is_ok(), "new outbound key in use");
    // A refused change leaves the call alone.
    let mut bad = changed.spec();
    bad.media[0].a.local = addr("198.18.0.7:40000");
    assert!(h.relay.modify_call(&bad).is_err());
    assert_eq!(h.relay.call_ids(), vec!["c".to_string()]);
    let stats = h.relay.remove_call("c").unwrap();
    assert_eq!(
        stats.media[0][0].rx_packets, 1,
        "counters restart with the new media"
    );
    let (mut buf, len) = frame(
        CALLER_MAC,
        "198.18.0.10:5004",
        "198.18.0.1:40000",
        &rtp(2, 20),
    );
    assert_eq!(
        h.process(0, &mut buf, len),
        Verdict::Drop(DropReason::UnknownFlow)
    );
    assert_eq!(h.relay.media_count(), 0);
}
