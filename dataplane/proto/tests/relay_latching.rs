//! Latching: the relay learns a peer's address only from packets that authenticate, and
//! strict source holds once latched.

mod util;

use relay_proto::relay::{DropReason, Verdict};
use relay_srtp::{Context, ContextConfig, Suite};
use util::*;

#[test]
fn latching_learns_only_from_authenticated_packets_and_strict_source_holds() {
    let mut h = Harness::new();
    let (ka, kb) = (
        key(Suite::AesCm128HmacSha1_80, 1),
        key(Suite::AesCm128HmacSha1_80, 2),
    );
    let call = Call::new("c")
        .a("198.18.0.1:40000", None)
        .a_keys(Some(&ka), Some(&ka))
        .a_strict()
        .b_keys(Some(&kb), Some(&kb));
    let Peers {
        mut caller,
        mut callee,
    } = h.add(&call);
    // B -> A before A's address is known: nowhere to send.
    let (mut buf, len, _) = callee.send(1, 20);
    h.now_ns = 1;
    assert_eq!(
        h.process(1, &mut buf, len),
        Verdict::Drop(DropReason::NoDestination)
    );
    // A forged packet from an attacker does not latch.
    let mut forged = protect(
        &mut Context::new(
            &key(Suite::AesCm128HmacSha1_80, 9),
            ContextConfig::default(),
        ),
        &rtp(1, 20),
    );
    forged[15] ^= 1;
    let (mut buf, len) = frame(
        [2, 0, 0, 0, 0, 0x66],
        "198.18.0.66:7777",
        "198.18.0.1:40000",
        &forged,
    );
    h.now_ns = 2;
    assert_eq!(
        h.process(0, &mut buf, len),
        Verdict::Drop(DropReason::AuthFailed)
    );
    // The genuine peer's first packet latches (from behind the gateway: NAT).
    let p = caller.seal(&rtp(1, 20));
    let (mut buf, len) = frame(GW_MAC, "203.0.113.5:31000", "198.18.0.1:40000", &p);
    h.now_ns = 3;
    assert!(matches!(
        h.process(0, &mut buf, len),
        Verdict::Forward { .. }
    ));
    // Now B -> A goes to the latched address, via the gateway's MAC.
    let (mut buf, len, _) = callee.send(2, 20);
    h.now_ns = 4;
    let (port, u, _) = forwarded(h.process(1, &mut buf, len), &buf);
    assert_eq!(
        (port, u.dst, relay_proto::wire::parse_l2(&buf).unwrap().dst),
        (0, addr("203.0.113.5:31000"), GW_MAC)
    );
    // Strict source: a genuine packet from elsewhere is refused after latching.
    let (mut buf, len, _) = caller.send(2, 20);
    assert_eq!(caller.addr, addr("198.18.0.10:5004"));
    h.now_ns = 5;
    assert_eq!(
        h.process(0, &mut buf, len),
        Verdict::Drop(DropReason::UnexpectedSource)
    );
}
