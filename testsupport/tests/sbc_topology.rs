//! The three-namespace topology the SBC tests use (`relay_testsupport::topology`), alone:
//! each peer reaches the SBC namespace's kernel signalling address across its veth, nothing
//! routes between the two sides, and everything is gone after the drop.
//!
//! Needs root; skipped (with the reason) otherwise. Addresses in 198.18.10.0/24 and
//! 198.18.20.0/24 only.

use relay_testsupport::topology::{self, SbcTopology};

#[test]
fn peers_reach_the_sbc_kernel_and_not_each_other() {
    if let Some(why) = relay_testsupport::skip_reason(false) {
        eprintln!("skipped: {why}");
        return;
    }
    let names;
    {
        let net = SbcTopology::new().unwrap();
        names = [
            net.alice.name().to_owned(),
            net.sbc.name().to_owned(),
            net.bob.name().to_owned(),
        ];
        assert!(net.alice.ping(topology::SBC_ALICE_SIGNALLING).unwrap());
        assert!(net.bob.ping(topology::SBC_BOB_SIGNALLING).unwrap());
        assert!(net.sbc.ping(topology::ALICE).unwrap());
        assert!(net.sbc.ping(topology::BOB).unwrap());
        // The SBC namespace does not forward, and the peers have no route to the other side.
        assert!(!net.alice.ping(topology::BOB).unwrap());
        assert!(!net.alice.ping(topology::SBC_BOB_SIGNALLING).unwrap());
        // The media addresses belong to the data plane, which is not running here.
        let sbc_addrs = net.sbc.ip(&["-4", "-o", "addr", "show"]).unwrap();
        assert!(sbc_addrs.contains("198.18.10.1/24") && sbc_addrs.contains("198.18.20.1/24"));
        assert!(!sbc_addrs.contains("198.18.10.10") && !sbc_addrs.contains("198.18.20.10"));
        // Checksum offload is off on the veth ends the data plane and tcpdump read.
        let features = net
            .sbc
            .run(&["ethtool", "-k", topology::SBC_ALICE_IF])
            .unwrap();
        assert!(features.contains("tx-checksumming: off"), "{features}");
        let features = net
            .alice
            .run(&["ethtool", "-k", topology::ALICE_IF])
            .unwrap();
        assert!(features.contains("tx-checksumming: off"), "{features}");
        assert_eq!(
            topology::sbc_proxy_for_alice(),
            "sip:198.18.10.1:5061;transport=tls"
        );
    }
    let left = relay_testsupport::netns::run(&["ip", "netns", "list"]).unwrap();
    for name in names {
        assert!(!left.contains(&name), "{name} is still there: {left}");
    }
}
