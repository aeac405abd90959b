//! Restarts under a live baresip call over TLS with SRTP:
//!
//! * relay-control killed (SIGKILL): the media goes on in the data plane, and after
//!   relay-control starts again a BYE still ends the call properly on both legs, with its
//!   data-plane call removed and its record written. What relay-control keeps for that holds
//!   no SRTP key, and nothing of it outlives the call.
//! * relay-dataplane restarted: relay-control installs the call again (each SRTP stream at
//!   the rollover counter and sequence number the data plane last reported), and the media
//!   resumes, still authenticating on each leg with that leg's endpoint keys.
//! * relay-control killed with its record of the call lost (as if it died between
//!   programming the call and keeping it): at its start it removes the data-plane call that
//!   no record names, so the call's ports and streams are not held for ever.
//!
//! Needs root, iproute2, tcpdump and baresip; skipped with the reason otherwise. Addresses in
//! 198.18.10.0/24 and 198.18.20.0/24 only; namespaces and processes are removed however the
//! test ends.

mod sbc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use relay_session::client::ControlClient;
use relay_testsupport::appliance::Appliance;
use relay_testsupport::baresip::Baresip;
use relay_testsupport::capture::Capture;
use relay_testsupport::netns::wait_until;
use relay_testsupport::srtp_check;
use relay_testsupport::topology;
use relay_testsupport::topology::SbcTopology;
use sbc::WAIT;

/// The tests each run a data plane polling CPU 0: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// alice and bob in a call through the appliance.
struct Call<'ns> {
    app: Appliance<'ns>,
    alice: Baresip<'ns>,
    bob: Baresip<'ns>,
}

/// Runs `test` with the topology, its directory and an established alice -> bob call over
/// TLS with SRTP through the appliance; one test at a time, skipped (with the reason) where
/// root or the tools are missing.
fn with_established_call(test: impl FnOnce(&SbcTopology, &Path, Call<'_>)) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = relay_testsupport::skip_reason(true) {
        eprintln!("skipped: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = SbcTopology::new().unwrap();
    let pki = sbc::pki(dir);
    let app = sbc::start(&net, dir, &pki);
    let (alice, bob) = sbc::user_agents(&net, &pki);
    alice.dial("sip:bob@198.18.20.2").unwrap();
    let established = alice
        .wait_event("CALL_ESTABLISHED", WAIT)
        .and_then(|_| bob.wait_event("CALL_ESTABLISHED", WAIT));
    if let Err(e) = established {
        panic!(
            "{e}\n{}\n--- alice\n{}\n--- bob\n{}",
            app.logs(),
            alice.sip_trace(),
            bob.sip_trace()
        );
    }
    test(&net, dir, Call { app, alice, bob });
}

/// The kept-call records in `dir`'s state directory.
fn kept_records(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("state"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_call_survives_a_killed_relay_control_and_is_still_ended_by_bye() {
    with_established_call(
        |_net,
         dir,
         Call {
             mut app,
             alice,
             bob,
         }| {
            let diagnose = |app: &Appliance<'_>, what: &str| {
                format!(
                    "{what}\n{}\n--- alice\n{}\n--- bob\n{}",
                    app.logs(),
                    alice.sip_trace(),
                    bob.sip_trace()
                )
            };

            // The confirmed call is kept in the state directory, without keys.
            let kept = wait_until(WAIT, || {
                let files = kept_records(dir);
                (files.len() == 1).then(|| files[0].clone())
            })
            .unwrap_or_else(|| panic!("{}", diagnose(&app, "one kept call")));
            let record = std::fs::read_to_string(&kept).unwrap();
            for key in [
                alice.sent_key().unwrap(),
                alice.received_key().unwrap(),
                bob.sent_key().unwrap(),
                bob.received_key().unwrap(),
            ] {
                let inline = key.to_inline();
                assert!(
                    !record.contains(inline.trim_start_matches("inline:")),
                    "no key on disk"
                );
            }

            // SIGKILL: the media goes on without relay-control.
            let mut dp = ControlClient::connect(app.socket()).unwrap();
            assert!(app.kill_control());
            let before = dp.worker_stats().unwrap().forwarded;
            std::thread::sleep(Duration::from_millis(1500));
            let after = dp.worker_stats().unwrap().forwarded;
            assert!(
                after >= before + 100,
                "media relayed while relay-control was down: {before} -> {after}"
            );
            assert_eq!(dp.list_calls().unwrap().len(), 1);

            // relay-control again: it takes the call back; bob hangs up; alice hears the BYE.
            app.restart_control().unwrap_or_else(|e| panic!("{e}"));
            assert!(
                app.control_log().contains("call continued after a restart"),
                "{}",
                app.logs()
            );
            bob.hangup().unwrap();
            bob.wait_event("CALL_CLOSED", WAIT).unwrap();
            alice.wait_event("CALL_CLOSED", WAIT).unwrap_or_else(|e| {
                panic!(
                    "{}",
                    diagnose(&app, &format!("alice hears bob's hang-up: {e}"))
                )
            });
            assert!(
                wait_until(WAIT, || dp.list_calls().ok().filter(Vec::is_empty)).is_some(),
                "{}",
                diagnose(&app, "the data plane's call is removed")
            );
            assert!(
                wait_until(WAIT, || (!kept.exists()).then_some(())).is_some(),
                "the kept record is gone with the call"
            );

            // The record: ended by the callee, with the media of the whole call.
            assert!(app.stop_control(), "{}", app.logs());
            let grant = sbc::relayctl(
                dir,
                &[
                    "access",
                    "grant",
                    "--reason",
                    "TEST-2 restart",
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
            let text = String::from_utf8_lossy(&export.stdout);
            let records: Vec<serde_json::Value> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(records.len(), 1, "{text}");
            assert_eq!(records[0]["ended_by"], "callee", "{}", records[0]);
            let r = &records[0];
            assert!(r["media"][0]["packets"].as_u64().unwrap() >= 50, "{r}");
            let (setup, answer, end) = (
                r["setup_ms"].as_i64().unwrap(),
                r["answer_ms"].as_i64().unwrap(),
                r["end_ms"].as_i64().unwrap(),
            );
            assert!(
                setup <= answer && end - answer >= 1500,
                "the times of the whole call, across the restart: {r}"
            );
        },
    );
}

#[test]
fn a_restarted_data_plane_gets_its_calls_back_and_the_media_resumes() {
    with_established_call(
        |net,
         dir,
         Call {
             mut app,
             alice,
             bob,
         }| {
            std::thread::sleep(Duration::from_millis(2500));

            // The data plane restarts empty; relay-control notices at its next media check.
            app.restart_dataplane().unwrap_or_else(|e| panic!("{e}"));
            let mut dp = ControlClient::connect(app.socket()).unwrap();
            assert!(
                wait_until(WAIT, || dp.list_calls().ok().filter(|c| c.len() == 1)).is_some(),
                "the call is installed again:\n{}",
                app.logs()
            );
            // Media on both legs after the re-install, checked with the endpoints' keys.
            let cap_alice =
                Capture::start(&net.alice, topology::ALICE_IF, &dir.join("a.pcap"), "udp").unwrap();
            let cap_bob =
                Capture::start(&net.bob, topology::BOB_IF, &dir.join("b.pcap"), "udp").unwrap();
            std::thread::sleep(Duration::from_millis(2000));
            let (alice_leg, bob_leg) = (cap_alice.stop().unwrap(), cap_bob.stop().unwrap());
            srtp_check::check_call(
                &alice_leg.datagrams,
                topology::ALICE,
                &alice.sent_key().unwrap(),
                topology::SBC_ALICE_MEDIA,
                &alice.received_key().unwrap(),
            )
            .unwrap()
            .verdict(40)
            .unwrap_or_else(|e| panic!("alice's leg after the restart: {e}\n{}", app.logs()));
            srtp_check::check_call(
                &bob_leg.datagrams,
                topology::SBC_BOB_MEDIA,
                &bob.received_key().unwrap(),
                topology::BOB,
                &bob.sent_key().unwrap(),
            )
            .unwrap()
            .verdict(40)
            .unwrap_or_else(|e| panic!("bob's leg after the restart: {e}\n{}", app.logs()));
            alice.hangup().unwrap();
            bob.wait_event("CALL_CLOSED", WAIT).unwrap();
            assert!(wait_until(WAIT, || dp.list_calls().ok().filter(Vec::is_empty)).is_some());
        },
    );
}

#[test]
fn a_data_plane_call_no_kept_record_names_is_removed_when_relay_control_starts() {
    with_established_call(
        |_net,
         dir,
         Call {
             mut app,
             alice: _alice,
             bob: _bob,
         }| {
            assert!(
                wait_until(WAIT, || (kept_records(dir).len() == 1).then_some(())).is_some(),
                "{}",
                app.logs()
            );

            // relay-control dies as if between programming the call and keeping it: no record.
            let mut dp = ControlClient::connect(app.socket()).unwrap();
            assert!(app.kill_control());
            for f in kept_records(dir) {
                std::fs::remove_file(f).unwrap();
            }
            assert_eq!(dp.list_calls().unwrap().len(), 1);
            app.restart_control().unwrap_or_else(|e| panic!("{e}"));
            assert!(
                wait_until(WAIT, || dp.list_calls().ok().filter(Vec::is_empty)).is_some(),
                "the unkept call is removed from the data plane\n{}",
                app.logs()
            );
            assert!(
                app.control_log()
                    .contains("a data-plane call no kept record names was removed"),
                "{}",
                app.logs()
            );
        },
    );
}
