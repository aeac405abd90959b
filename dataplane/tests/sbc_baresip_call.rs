//! The whole appliance between two real SIP user agents: baresip alice calls baresip bob
//! over SIP/TLS with SDES SRTP (`mediaenc=srtp-mand`) through `relay-control` (the B2BUA)
//! and `relay-dataplane` (on `net_af_packet`, reading the SBC namespace's two veth ends).
//!
//! Checked, from outside the appliance: the call connects and carries audio both ways;
//! each leg's SRTP, captured on the peer's own interface, authenticates with the keys that
//! leg's endpoint saw in its own SDP exchange (taken from baresip's SIP trace, never from
//! the appliance) and not with the other leg's; the two legs' keys all differ; hanging up
//! removes the data plane's call; the call record is readable under a grant, with media
//! statistics. Also: what operators see meanwhile (relayctl calls/trunks, metrics), a
//! certificate renewed by SIGHUP under the live call, and relay-control killed (SIGKILL)
//! during a call: media goes on, and a BYE after its restart still ends the call.
//!
//! Needs root, iproute2, tcpdump and baresip (installed by `scripts/install.sh
//! --test-deps`); skipped with the reason otherwise. Addresses in 198.18.10.0/24 and
//! 198.18.20.0/24 only; namespaces and processes are removed however the test ends.

mod sbc;

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::Duration;

use relay_session::client::ControlClient;
use relay_testsupport::baresip::{Baresip, BaresipOpts};
use relay_testsupport::capture::Capture;
use relay_testsupport::netns::wait_until;
use relay_testsupport::topology;
use relay_testsupport::{pki, srtp_check};
use sbc::WAIT;

#[test]
fn baresip_calls_baresip_over_tls_through_the_appliance_with_srtp_re_keyed_per_leg() {
    if let Some(why) = relay_testsupport::skip_reason(true) {
        eprintln!("skipped: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = topology::SbcTopology::new().unwrap();
    let net = &net;
    let pki = sbc::pki(dir);
    let mut app = sbc::start(net, dir, &pki);
    let socket = app.socket().to_owned();
    let ip = |a: Ipv4Addr| IpAddr::V4(a);
    // Captures on each peer's own interface, then the two user agents.
    let cap_alice = Capture::start(
        &net.alice,
        topology::ALICE_IF,
        &dir.join("alice.pcap"),
        "udp",
    )
    .unwrap();
    let cap_bob = Capture::start(&net.bob, topology::BOB_IF, &dir.join("bob.pcap"), "udp").unwrap();
    let bob = Baresip::start(
        &net.bob,
        &BaresipOpts::new(
            "sip:bob@198.18.20.2;transport=tls",
            topology::BOB_SIP,
            &pki.leaves[2].combined,
            &pki.ca,
        ),
    )
    .unwrap();
    let alice = Baresip::start(
        &net.alice,
        &BaresipOpts::new(
            "sip:alice@198.18.10.2;transport=tls",
            topology::ALICE_SIP,
            &pki.leaves[1].combined,
            &pki.ca,
        )
        .with_outbound_proxy(&topology::sbc_proxy_for_alice()),
    )
    .unwrap();

    alice.dial("sip:bob@198.18.20.2").unwrap();
    let diagnose = |what: &str| {
        format!(
            "{what}\n--- relay-control\n{}\n--- data plane\n{}\n--- alice\n{}\n--- bob\n{}",
            app.control_log(),
            app.dataplane_log(),
            alice.sip_trace(),
            bob.sip_trace()
        )
    };
    alice
        .wait_event("CALL_ESTABLISHED", WAIT)
        .unwrap_or_else(|e| panic!("{}", diagnose(&format!("alice: {e}"))));
    bob.wait_event("CALL_ESTABLISHED", WAIT)
        .unwrap_or_else(|e| panic!("{}", diagnose(&format!("bob: {e}"))));
    let mut dp = ControlClient::connect(&socket).unwrap();
    assert_eq!(
        dp.list_calls().unwrap().len(),
        1,
        "{}",
        diagnose("one call in the data plane")
    );

    // What an operator sees meanwhile: the call (numbers masked), the trunks' health from
    // OPTIONS, and the metrics.
    let calls = sbc::relayctl(
        dir,
        &[
            "calls",
            "--admin-socket",
            dir.join("control.sock").to_str().unwrap(),
        ],
    );
    let calls = String::from_utf8_lossy(&calls.stdout).into_owned();
    assert!(
        calls.contains("alice-side -> bob-side") && calls.contains("1 active"),
        "{calls}"
    );
    assert!(
        !calls.contains("alice ") && calls.contains("…lice"),
        "numbers masked: {calls}"
    );
    let trunks = wait_until(WAIT, || {
        let t = sbc::relayctl(
            dir,
            &[
                "trunks",
                "--admin-socket",
                dir.join("control.sock").to_str().unwrap(),
            ],
        );
        let t = String::from_utf8_lossy(&t.stdout).into_owned();
        (t.matches(" up ").count() == 2).then_some(t)
    })
    .unwrap_or_else(|| panic!("{}", diagnose("both trunk peers answer OPTIONS")));
    assert!(trunks.contains("198.18.20.2:5061/tls"), "{trunks}");
    let scrape = || {
        use std::io::{Read, Write};
        let mut c = net
            .sbc
            .connect_tcp("127.0.0.1:9464".parse().unwrap(), Duration::from_secs(5))
            .unwrap();
        c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        text
    };
    let m = scrape();
    assert!(m.starts_with("HTTP/1.0 200 OK"), "{m}");
    for line in [
        "relay_calls_active 1",
        "relay_calls_attempted_total 1",
        "relay_calls_answered_total 1",
        "relay_tls_handshakes_total{result=\"ok\"}",
        "relay_trunk_up{trunk=\"bob-side\",peer=\"198.18.20.2:5061\"} 1",
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }
    assert!(
        m.lines().any(
            |l| l.starts_with("relay_dataplane{worker=\"0\",counter=\"forwarded\"}")
                && !l.ends_with(" 0")
        ),
        "{m}"
    );

    // Certificate reload under the live call: a new certificate, SIGHUP; new handshakes get
    // it, the call's connections and media go on.
    std::thread::sleep(Duration::from_millis(700));
    let renewed = pki::make(
        &dir.join("renewed"),
        &[(
            "sbc",
            &[
                ip(topology::SBC_ALICE_SIGNALLING),
                ip(topology::SBC_BOB_SIGNALLING),
            ],
            &["sbc.test"],
        )],
    );
    // The renewed leaf is signed by a new CA: what matters is which certificate is served.
    std::fs::copy(&renewed.leaves[0].certificate, &pki.leaves[0].certificate).unwrap();
    std::fs::copy(&renewed.leaves[0].key, &pki.leaves[0].key).unwrap();
    let pid = app.control_pid().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    assert!(
        wait_until(WAIT, || app
            .control_log()
            .contains("configuration reloaded")
            .then_some(()))
        .is_some(),
        "{}",
        diagnose("reload")
    );
    let served = net
        .alice
        .command("openssl")
        .args(["s_client", "-connect", "198.18.10.1:5061", "-showcerts"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let served = String::from_utf8_lossy(&served.stdout);
    let renewed_pem = std::fs::read_to_string(&renewed.leaves[0].certificate).unwrap();
    let body = |pem: &str| {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    assert!(
        body(&served).contains(&body(&renewed_pem)),
        "the renewed certificate is served after SIGHUP:\n{served}"
    );

    // Audio both ways, then alice hangs up.
    std::thread::sleep(Duration::from_millis(1300));
    let during = dp.worker_stats().unwrap();
    alice.hangup().unwrap();
    alice.wait_event("CALL_CLOSED", WAIT).unwrap();
    bob.wait_event("CALL_CLOSED", WAIT)
        .unwrap_or_else(|e| panic!("{}", diagnose(&format!("bob: {e}"))));
    assert!(
        wait_until(WAIT, || dp.list_calls().ok().filter(Vec::is_empty)).is_some(),
        "{}",
        diagnose("hang-up removes the data plane's call")
    );
    let alice_leg = cap_alice.stop().unwrap();
    let bob_leg = cap_bob.stop().unwrap();

    // Keys as each endpoint saw them: what it sent in its SDP, what it received.
    let (alice_sent, alice_got) = (alice.sent_key().unwrap(), alice.received_key().unwrap());
    let (bob_sent, bob_got) = (bob.sent_key().unwrap(), bob.received_key().unwrap());
    let keys = [&alice_sent, &alice_got, &bob_sent, &bob_got].map(|k| k.to_inline());
    for i in 0..4 {
        for j in i + 1..4 {
            assert_ne!(keys[i], keys[j], "every leg and direction has its own key");
        }
    }
    // alice's leg: alice <-> the data plane's 198.18.10.10; bob's: 198.18.20.10 <-> bob.
    srtp_check::check_call(
        &alice_leg.datagrams,
        topology::ALICE,
        &alice_sent,
        topology::SBC_ALICE_MEDIA,
        &alice_got,
    )
    .unwrap()
    .verdict(50)
    .unwrap_or_else(|e| panic!("alice's leg: {e}\n{}", diagnose("")));
    srtp_check::check_call(
        &bob_leg.datagrams,
        topology::SBC_BOB_MEDIA,
        &bob_got,
        topology::BOB,
        &bob_sent,
    )
    .unwrap()
    .verdict(50)
    .unwrap_or_else(|e| panic!("bob's leg: {e}\n{}", diagnose("")));
    // Nothing went around the relay: every media datagram on a leg is to or from the data plane.
    for (leg, peer, media) in [
        (&alice_leg, topology::ALICE, topology::SBC_ALICE_MEDIA),
        (&bob_leg, topology::BOB, topology::SBC_BOB_MEDIA),
    ] {
        assert!(leg
            .datagrams
            .iter()
            .filter(|d| d.src.port() != 5061 && d.dst.port() != 5061)
            .all(|d| (*d.src.ip() == peer && *d.dst.ip() == media)
                || (*d.src.ip() == media && *d.dst.ip() == peer)));
    }
    assert!(
        during.forwarded >= 200,
        "the data plane relayed the audio: {during:?}"
    );

    // Stop relay-control (SIGTERM: its record store is flushed), then read the record.
    assert!(app.stop_control(), "{}", app.control_log());
    let logs = (app.control_log(), app.dataplane_log());
    drop(app);
    let grant = sbc::relayctl(
        dir,
        &[
            "access",
            "grant",
            "--reason",
            "TEST-1 sbc call",
            "--ttl",
            "1h",
        ],
    );
    assert!(
        grant.status.success(),
        "{}",
        String::from_utf8_lossy(&grant.stderr)
    );
    let export = sbc::relayctl(dir, &["cdr", "export", "--format", "json"]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = String::from_utf8_lossy(&export.stdout);
    let records: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{text}");
    let r = &records[0];
    assert_eq!(r["ended_by"], "caller", "{r}");
    assert_eq!(r["legs"][0]["trunk"], "alice-side");
    assert_eq!(r["legs"][1]["trunk"], "bob-side");
    assert!(r["answer_ms"].is_number());
    let media = r["media"].as_array().unwrap();
    assert_eq!(media.len(), 2, "{r}");
    for m in media {
        assert!(m["packets"].as_u64().unwrap() >= 50, "{r}");
        assert_eq!(m["srtp_suite"], "AES_CM_128_HMAC_SHA1_80", "{r}");
    }
    // relay-control's log names no person: no peer address, number or user.
    for personal in ["198.18.10.2", "198.18.20.2", "alice", "bob"] {
        assert!(
            !logs.0.contains(personal),
            "{personal} in relay-control's log:\n{}",
            logs.0
        );
    }
    // No key in the record, the logs or the data plane's output.
    for k in &keys {
        let b64 = k.trim_start_matches("inline:");
        assert!(!text.contains(b64) && !logs.0.contains(b64) && !logs.1.contains(b64));
    }
}
