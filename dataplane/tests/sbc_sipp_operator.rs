//! An operator trunk driven by SIPp through the whole appliance (`relay-control` and
//! `relay-dataplane`): SIP over UDP or TCP with plain RTP (`media_policy = "rtp"`) on the
//! operator side; on the far side a baresip user agent over SIP/TLS with SDES SRTP
//! (`srtp-mand`), or SIPp user agents over UDP with plain RTP where baresip is not needed.
//!
//! ```text
//!  ns alice (operator)       ns sbc                               ns bob (far side)
//!  SIPp 198.18.10.2:5060 ─── 198.18.10.1:5060 udp|tcp
//!                            198.18.20.1:5061 tls ─────────────── baresip 198.18.20.2:5061
//!                            198.18.20.1:5060 udp ─────────────── SIPp 198.18.20.2:5060, :5070
//!  RTP 198.18.10.2:6000 ──── 198.18.10.10  data plane  198.18.20.10 ── SRTP (baresip) or RTP
//! ```
//!
//! Scenarios (SIPp XML under `tests/sipp/`):
//!
//! 1. and 2. `uac_call.xml` over UDP and over TCP: SIPp calls baresip, two seconds of audio
//!    both ways, SIPp hangs up. Checked: baresip's leg is SRTP that authenticates with the
//!    keys baresip saw in its own SDP (and not with the other direction's), SIPp's leg is plain
//!    RTP to and from the data plane's address, the audio crosses unchanged (payloads SIPp sent
//!    are what baresip decrypts, and the other way round), the data plane's call is removed
//!    after the BYE.
//! 3. `uac_cancel.xml`: SIPp cancels while baresip (answering manually) rings; SIPp gets 200
//!    to the CANCEL and 487 to the INVITE, baresip sees the call cancelled.
//! 4. `uac_rejected.xml` against SIPp UAS peers: 486 reaches the caller; 503 from the first
//!    peer fails over to the second, where the call succeeds; 603 never fails over.
//! 5. `uac_hold.xml`: hold (`a=sendonly`) and resume (`a=sendrecv`) by re-INVITE, relayed to
//!    baresip. Ignored until the B2BUA relays re-INVITEs (it answers them 501 today).
//! 6. `uac_late_ack.xml`: a UDP caller that ACKs 2.5 s late must see the 200 retransmitted.
//!    Ignored: the B2BUA stops that retransmission once leg b sent a provisional response.
//!
//! Tests run one at a time (each starts its own data plane, which polls a core); with
//! `RELAY_TEST_KEEP=1` each keeps its directory (logs, SIPp traces, captures). Needs root,
//! iproute2, tcpdump, SIPp and baresip (`scripts/install.sh --packages --test-deps`); skipped
//! with the reason otherwise. Addresses in 198.18.10.0/24 and 198.18.20.0/24 only; namespaces
//! and processes are removed however a test ends.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use relay_session::client::ControlClient;
use relay_testsupport::appliance::{Appliance, Binaries, MediaPort};
use relay_testsupport::baresip::{Baresip, BaresipOpts};
use relay_testsupport::capture::{Capture, Captured};
use relay_testsupport::netns::wait_until;
use relay_testsupport::sipp::{self, Direction, Sipp, SippOpts, SippTransport};
use relay_testsupport::topology::{self, SbcTopology};
use relay_testsupport::workspace_binary;
use relay_testsupport::{pki, srtp_check};

/// The bound of every wait for an event.
const WAIT: Duration = Duration::from_secs(10);
/// The bound of a SIPp run (its own `-timeout` is 15 s).
const SIPP_RUN: Duration = Duration::from_secs(20);

/// The operator's SIPp, its RTP, and the SBC's signalling address towards it.
const OPERATOR_SIP: SocketAddrV4 = SocketAddrV4::new(topology::ALICE, 5060);
const OPERATOR_RTP: SocketAddrV4 = SocketAddrV4::new(topology::ALICE, 6000);
const SBC_OPERATOR_SIP: SocketAddrV4 = SocketAddrV4::new(topology::SBC_ALICE_SIGNALLING, 5060);
/// The far side's SIPp peers (UDP) and their RTP; the SBC's UDP address towards them.
const FAR_SIPP: [SocketAddrV4; 2] = [
    SocketAddrV4::new(topology::BOB, 5060),
    SocketAddrV4::new(topology::BOB, 5070),
];
const FAR_SIPP_RTP: [SocketAddrV4; 2] = [
    SocketAddrV4::new(topology::BOB, 6000),
    SocketAddrV4::new(topology::BOB, 6010),
];
const SBC_FAR_UDP: SocketAddrV4 = SocketAddrV4::new(topology::SBC_BOB_SIGNALLING, 5060);

/// SIPp's audio: frames numbered from 0 for the operator, from 1000 for far-side SIPps.
const OPERATOR_FIRST_FRAME: u16 = 0;
const FAR_FIRST_FRAME: u16 = 1000;
const FRAMES: u16 = 250;

/// One test at a time: each runs a data plane that polls core 0.
static SERIAL: Mutex<()> = Mutex::new(());

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// What is on the far side of the SBC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Far {
    /// baresip over SIP/TLS with SDES SRTP at 198.18.20.2:5061.
    Baresip,
    /// This many SIPp peers over UDP with plain RTP ([`FAR_SIPP`]), tried in order.
    Sipp(usize),
}

fn control_toml(
    socket: &Path,
    pki: &pki::Pki,
    operator: SippTransport,
    far: Far,
    sbc_extra: &str,
) -> String {
    let op = match operator {
        SippTransport::Udp => "udp",
        SippTransport::Tcp => "tcp",
    };
    let sbc = &pki.leaves[0];
    let mut t = format!(
        r#"
[sbc]
fqdn = "sbc.test"
dataplane_socket = "{socket}"
media_ports = "30000-39999"
admin_socket = "{admin}"
state_dir = "{state}"
{sbc_extra}
[tls]
certificate = "{cert}"
private_key = "{key}"

[[listen]]
transport = "{op}"
address = "{SBC_OPERATOR_SIP}"

[[trunk]]
name = "operator"
peers = [{{ host = "{op_host}", port = {op_port}, transport = "{op}" }}]
signalling_address = "{SBC_OPERATOR_SIP}"
media_address = "{op_media}"
media_policy = "rtp"
suites = []
# SIPp's scenarios expect no OPTIONS.
options_ping = false
"#,
        socket = socket.display(),
        admin = socket.with_file_name("control.sock").display(),
        state = socket.with_file_name("state").display(),
        cert = sbc.certificate.display(),
        key = sbc.key.display(),
        op_host = OPERATOR_SIP.ip(),
        op_port = OPERATOR_SIP.port(),
        op_media = topology::SBC_ALICE_MEDIA,
    );
    match far {
        Far::Baresip => t.push_str(&format!(
            r#"
[[listen]]
transport = "tls"
address = "{sbc_sig}:5061"

[[trunk]]
name = "far"
peers = [{{ host = "{bob}", port = 5061, transport = "tls" }}]
signalling_address = "{sbc_sig}:5061"
local_host = "{sbc_sig}"
media_address = "{far_media}"
media_policy = "srtp_mandatory"
suites = ["AES_CM_128_HMAC_SHA1_80"]
trust_store = "{ca}"
"#,
            sbc_sig = topology::SBC_BOB_SIGNALLING,
            bob = topology::BOB,
            far_media = topology::SBC_BOB_MEDIA,
            ca = pki.ca.display(),
        )),
        Far::Sipp(n) => {
            let peers: Vec<String> = FAR_SIPP[..n]
                .iter()
                .map(|p| {
                    format!(
                        "{{ host = \"{}\", port = {}, transport = \"udp\" }}",
                        p.ip(),
                        p.port()
                    )
                })
                .collect();
            t.push_str(&format!(
                r#"
[[listen]]
transport = "udp"
address = "{SBC_FAR_UDP}"

[[trunk]]
name = "far"
peers = [{peers}]
signalling_address = "{SBC_FAR_UDP}"
media_address = "{far_media}"
media_policy = "rtp"
suites = []
options_ping = false
"#,
                peers = peers.join(", "),
                far_media = topology::SBC_BOB_MEDIA,
            ));
        }
    }
    t.push_str(
        r#"
[[route]]
from = "operator"
to = "far"

[[route]]
from = "far"
to = "operator"
"#,
    );
    t
}

/// What every test has: its turn, a directory, the topology, certificates and audio files.
struct Env {
    net: SbcTopology,
    pki: pki::Pki,
    /// `FILE,-1,0` for the operator's SIPp (`-key rtp_stream`).
    operator_audio: String,
    /// The same for far-side SIPps.
    far_audio: String,
    /// Kept (and named) after the test when `RELAY_TEST_KEEP` is set.
    tmp: Option<tempfile::TempDir>,
    started: Instant,
    _serial: MutexGuard<'static, ()>,
}

impl Env {
    /// `None` (after printing why) where the test cannot run.
    fn new(name: &str, needs_baresip: bool) -> Option<Env> {
        if let Some(why) = relay_testsupport::sipp_skip_reason(needs_baresip) {
            eprintln!("skipped: {why}");
            return None;
        }
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("sbc-sipp-{name}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path();
        let ip = |a: Ipv4Addr| IpAddr::V4(a);
        let pki = pki::make(
            dir,
            &[
                (
                    "sbc",
                    &[
                        ip(topology::SBC_ALICE_SIGNALLING),
                        ip(topology::SBC_BOB_SIGNALLING),
                    ],
                    &["sbc.test"],
                ),
                ("bob", &[ip(topology::BOB)], &[]),
            ],
        );
        let audio = |file: &str, first: u16| {
            let path = dir.join(file);
            std::fs::write(&path, sipp::pcmu_frames(first, FRAMES)).unwrap();
            format!("{},-1,0", path.display())
        };
        Some(Env {
            net: SbcTopology::new().unwrap(),
            pki,
            operator_audio: audio("operator.ulaw", OPERATOR_FIRST_FRAME),
            far_audio: audio("far.ulaw", FAR_FIRST_FRAME),
            tmp: Some(tmp),
            started,
            _serial: serial,
        })
    }

    fn dir(&self) -> &Path {
        self.tmp.as_ref().expect("until dropped").path()
    }

    /// The data plane and relay-control in the SBC namespace.
    fn appliance(&self, operator: SippTransport, far: Far) -> Appliance<'_> {
        self.appliance_with(operator, far, "")
    }

    /// The same with `sbc_extra` (TOML lines) added to `[sbc]`.
    fn appliance_with(&self, operator: SippTransport, far: Far, sbc_extra: &str) -> Appliance<'_> {
        let bins = Binaries {
            dataplane: PathBuf::from(env!("CARGO_BIN_EXE_relay-dataplane")),
            control: workspace_binary("relay-control"),
        };
        let ports = [
            MediaPort {
                iface: topology::SBC_ALICE_IF.into(),
                address: topology::SBC_ALICE_MEDIA,
                prefix_len: topology::PREFIX_LEN,
            },
            MediaPort {
                iface: topology::SBC_BOB_IF.into(),
                address: topology::SBC_BOB_MEDIA,
                prefix_len: topology::PREFIX_LEN,
            },
        ];
        Appliance::start(&self.net.sbc, &bins, &ports, self.dir(), |socket| {
            control_toml(socket, &self.pki, operator, far, sbc_extra)
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The operator's SIPp UAC running `file` over `transport`.
    fn caller(&self, file: &str, transport: SippTransport) -> Sipp<'_> {
        let opts = SippOpts::uac(
            "caller",
            &scenario(file),
            OPERATOR_SIP,
            SBC_OPERATOR_SIP,
            OPERATOR_RTP,
            "bob",
        )
        .over(transport)
        .key("rtp_stream", self.operator_audio.clone());
        Sipp::start(&self.net.alice, &opts, self.dir()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Far-side SIPp UAS number `i` ([`FAR_SIPP`]) running `file`.
    fn callee(&self, i: usize, file: &str) -> Sipp<'_> {
        let opts = SippOpts::uas(
            &format!("callee{}", i + 1),
            &scenario(file),
            FAR_SIPP[i],
            FAR_SIPP_RTP[i],
        )
        .key("rtp_stream", self.far_audio.clone());
        Sipp::start(&self.net.bob, &opts, self.dir()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// baresip bob over SIP/TLS with SDES SRTP, answering `answer_mode` (`auto`, `manual`).
    fn baresip(&self, answer_mode: &str) -> Baresip<'_> {
        let mut opts = BaresipOpts::new(
            "sip:bob@198.18.20.2;transport=tls",
            topology::BOB_SIP,
            &self.pki.leaves[1].combined,
            &self.pki.ca,
        );
        opts.answer_mode = answer_mode.to_owned();
        Baresip::start(&self.net.bob, &opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Captures on the operator's interface (everything but its SIP) and on the far side's
    /// (UDP: media, and SIP when the far side is SIPp).
    fn captures(&self) -> (Capture<'_>, Capture<'_>) {
        let op = Capture::start(
            &self.net.alice,
            topology::ALICE_IF,
            &self.dir().join("operator.pcap"),
            "udp and not port 5060",
        )
        .unwrap();
        let far = Capture::start(
            &self.net.bob,
            topology::BOB_IF,
            &self.dir().join("far.pcap"),
            "udp and not port 5060 and not port 5070",
        )
        .unwrap();
        (op, far)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        eprintln!("took {:.1?}", self.started.elapsed());
        if std::env::var_os("RELAY_TEST_KEEP").is_some() {
            if let Some(tmp) = self.tmp.take() {
                eprintln!("logs, traces and captures kept in {}", tmp.keep().display());
            }
        }
    }
}

/// Waits until the data plane has `n` calls; the last list it gave.
fn wait_calls(app: &Appliance<'_>, n: usize) -> Result<(), Vec<String>> {
    let mut dp = ControlClient::connect(app.socket()).unwrap();
    let mut last = Vec::new();
    wait_until(WAIT, || {
        last = dp.list_calls().unwrap_or_default();
        (last.len() == n).then_some(())
    })
    .ok_or(last)
}

/// The RTP packets (PT, payload) from `from` to `to` in `captured`.
fn rtp_between(captured: &Captured, from: SocketAddrV4, to: Ipv4Addr) -> Vec<(u8, Vec<u8>)> {
    captured
        .datagrams
        .iter()
        .filter(|d| d.src == from && *d.dst.ip() == to)
        .filter_map(|d| sipp::parse_rtp(&d.payload).map(|r| (r.payload_type, r.payload.to_vec())))
        .collect()
}

/// The same to `to` from `from`'s address.
fn rtp_to(captured: &Captured, from: Ipv4Addr, to: SocketAddrV4) -> Vec<(u8, Vec<u8>)> {
    captured
        .datagrams
        .iter()
        .filter(|d| *d.src.ip() == from && d.dst == to)
        .filter_map(|d| sipp::parse_rtp(&d.payload).map(|r| (r.payload_type, r.payload.to_vec())))
        .collect()
}

/// The payloads of decrypted RTP packets.
fn payloads(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    packets
        .iter()
        .filter_map(|p| sipp::parse_rtp(p).map(|r| r.payload.to_vec()))
        .collect()
}

/// The frame number SIPp's audio carries in a payload's first two bytes.
fn frame_of(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

/// Checks a plain RTP leg between a SIPp at `sipp_rtp` and the data plane's `media`: at
/// least `min` PCMU packets each way, the ones from SIPp being its own audio frames (numbered
/// from `first_frame`), and no media datagram to or from anyone else. Returns the payloads
/// the data plane sent to SIPp.
fn check_plain_leg(
    leg: &Captured,
    sipp_rtp: SocketAddrV4,
    media: Ipv4Addr,
    first_frame: u16,
    min: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let sent = rtp_between(leg, sipp_rtp, media);
    let got = rtp_to(leg, media, sipp_rtp);
    let mut wrong = Vec::new();
    if sent.len() < min || got.len() < min {
        wrong.push(format!(
            "{} RTP packets {sipp_rtp} -> {media}, {} back: expected at least {min} each way",
            sent.len(),
            got.len()
        ));
    }
    let frames = first_frame..first_frame + FRAMES;
    if let Some((pt, p)) = sent
        .iter()
        .find(|(pt, p)| *pt != 0 || p.len() != 160 || !frames.contains(&frame_of(p)))
    {
        wrong.push(format!(
            "SIPp sent something else than its PCMU frames: PT {pt}, {} bytes",
            p.len()
        ));
    }
    if let Some((pt, p)) = got.iter().find(|(pt, p)| *pt != 0 || p.len() != 160) {
        wrong.push(format!(
            "the data plane sent SIPp other than plain PCMU of 20 ms: PT {pt}, {} bytes",
            p.len()
        ));
    }
    let stray: Vec<_> = leg
        .datagrams
        .iter()
        .filter(|d| !(*d.src.ip() == media || *d.dst.ip() == media))
        .collect();
    if !stray.is_empty() {
        wrong.push(format!(
            "{} media datagrams went around the data plane, first {} -> {}",
            stray.len(),
            stray[0].src,
            stray[0].dst
        ));
    }
    if wrong.is_empty() {
        Ok(got.into_iter().map(|(_, p)| p).collect())
    } else {
        Err(wrong.join("\n"))
    }
}

/// The body of the last response with `status` SIPp received to `method`.
fn response_body(sipp: &Sipp<'_>, method: &str, status: u16) -> Option<String> {
    sipp.messages()
        .into_iter()
        .rev()
        .find(|m| {
            m.direction == Direction::Received
                && m.status() == Some(status)
                && m.cseq_method() == Some(method)
        })
        .map(|m| m.body().to_owned())
}

/// An answer's m-line and whether the answer holds `a=crypto`.
fn media_line(sdp: &str) -> (Option<String>, Option<String>, bool) {
    let line = |prefix: &str| {
        sdp.lines()
            .find(|l| l.starts_with(prefix))
            .map(|l| l.trim_end().to_owned())
    };
    (line("c="), line("m="), sdp.contains("a=crypto"))
}

/// Scenarios 1 and 2: SIPp over `transport` calls baresip, audio both ways, SIPp hangs up.
fn sipp_calls_baresip(name: &str, transport: SippTransport) {
    let Some(env) = Env::new(name, true) else {
        return;
    };
    let app = env.appliance(transport, Far::Baresip);
    let (cap_op, cap_far) = env.captures();
    let bob = env.baresip("auto");
    let mut caller = env.caller("uac_call.xml", transport);
    let diagnose = |what: &str, caller: &Sipp<'_>| {
        format!(
            "{what}\n{}\n{}\n{}",
            app.logs(),
            caller.report(),
            bob.log_tail(120)
        )
    };
    bob.wait_event("CALL_ESTABLISHED", WAIT)
        .unwrap_or_else(|e| panic!("{}", diagnose(&format!("bob: {e}"), &caller)));
    wait_calls(&app, 1).unwrap_or_else(|calls| {
        panic!(
            "{}",
            diagnose(&format!("one call in the data plane: {calls:?}"), &caller)
        )
    });
    caller
        .finish(SIPP_RUN)
        .unwrap_or_else(|e| panic!("{}", diagnose(&e.to_string(), &caller)));
    bob.wait_event("CALL_CLOSED", WAIT)
        .unwrap_or_else(|e| panic!("{}", diagnose(&format!("bob: {e}"), &caller)));
    wait_calls(&app, 0).unwrap_or_else(|calls| {
        panic!(
            "{}",
            diagnose(
                &format!("the BYE removes the data plane's call: {calls:?}"),
                &caller
            )
        )
    });
    let op_leg = cap_op.stop().unwrap();
    let far_leg = cap_far.stop().unwrap();

    // Signalling as SIPp saw it: the answer is plain RTP at the data plane's address.
    let statuses = caller.statuses("INVITE");
    assert!(
        statuses.first() == Some(&100) && statuses.last() == Some(&200),
        "INVITE answered {statuses:?}"
    );
    assert_eq!(caller.statuses("BYE"), [200]);
    assert!(caller
        .messages()
        .iter()
        .all(|m| m.transport == transport.name()));
    let answer = response_body(&caller, "INVITE", 200).expect("the 200 has SDP");
    let (c, m, crypto) = media_line(&answer);
    assert_eq!(
        c.as_deref(),
        Some(format!("c=IN IP4 {}", topology::SBC_ALICE_MEDIA).as_str()),
        "{answer}"
    );
    let m = m.unwrap_or_default();
    assert!(
        m.starts_with("m=audio ") && m.ends_with(" RTP/AVP 0"),
        "{answer}"
    );
    assert!(!crypto, "no key goes to a plain RTP trunk: {answer}");

    // baresip's leg: SRTP with the keys baresip saw, each direction its own.
    let (bob_sent, bob_got) = (bob.sent_key().unwrap(), bob.received_key().unwrap());
    assert_ne!(bob_sent.to_inline(), bob_got.to_inline());
    srtp_check::check_call(
        &far_leg.datagrams,
        topology::SBC_BOB_MEDIA,
        &bob_got,
        topology::BOB,
        &bob_sent,
    )
    .unwrap()
    .verdict(50)
    .unwrap_or_else(|e| panic!("baresip's leg: {e}"));

    // SIPp's leg: plain RTP with the data plane, nothing around it.
    let to_sipp = check_plain_leg(
        &op_leg,
        OPERATOR_RTP,
        topology::SBC_ALICE_MEDIA,
        OPERATOR_FIRST_FRAME,
        50,
    )
    .unwrap_or_else(|e| panic!("SIPp's leg: {e}"));

    // The audio crosses unchanged: what SIPp sent is what baresip decrypts, and what baresip
    // encrypted is what SIPp gets in the clear.
    let to_bob = payloads(
        &srtp_check::decrypt_rtp(
            &far_leg.datagrams,
            topology::SBC_BOB_MEDIA,
            topology::BOB,
            &bob_got,
        )
        .unwrap(),
    );
    let frames = OPERATOR_FIRST_FRAME..OPERATOR_FIRST_FRAME + FRAMES;
    assert!(to_bob.len() >= 50, "{} packets to baresip", to_bob.len());
    let sipp_sent: HashSet<Vec<u8>> = rtp_between(&op_leg, OPERATOR_RTP, topology::SBC_ALICE_MEDIA)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert!(
        to_bob
            .iter()
            .all(|p| sipp_sent.contains(p) && frames.contains(&frame_of(p))),
        "baresip received audio that SIPp did not send"
    );
    let from_bob_packets = payloads(
        &srtp_check::decrypt_rtp(
            &far_leg.datagrams,
            topology::BOB,
            topology::SBC_BOB_MEDIA,
            &bob_sent,
        )
        .unwrap(),
    );
    let from_bob: HashSet<&Vec<u8>> = from_bob_packets.iter().collect();
    eprintln!(
        "{name}: SIPp sent {} RTP packets and got {}; baresip got {} SRTP packets from the \
         data plane and sent {} ({} distinct payloads: its tone repeats); INVITE answered \
         {statuses:?}",
        sipp_sent.len(),
        to_sipp.len(),
        to_bob.len(),
        from_bob_packets.len(),
        from_bob.len()
    );
    let unknown = to_sipp.iter().filter(|p| !from_bob.contains(p)).count();
    assert_eq!(
        unknown,
        0,
        "{unknown} of {} payloads SIPp received are not baresip's audio",
        to_sipp.len()
    );
}

#[test]
fn sipp_over_udp_calls_baresip_rtp_to_srtp() {
    sipp_calls_baresip("udp", SippTransport::Udp);
}

#[test]
fn sipp_over_tcp_calls_baresip_rtp_to_srtp() {
    sipp_calls_baresip("tcp", SippTransport::Tcp);
}

#[test]
fn sipp_cancels_while_baresip_rings() {
    let Some(env) = Env::new("cancel", true) else {
        return;
    };
    let app = env.appliance(SippTransport::Udp, Far::Baresip);
    let bob = env.baresip("manual");
    let mut caller = env.caller("uac_cancel.xml", SippTransport::Udp);
    let diagnose = |what: &str, caller: &Sipp<'_>| {
        format!(
            "{what}\n{}\n{}\n{}",
            app.logs(),
            caller.report(),
            bob.log_tail(120)
        )
    };
    bob.wait_event("CALL_INCOMING", WAIT)
        .unwrap_or_else(|e| panic!("{}", diagnose(&format!("bob: {e}"), &caller)));
    caller
        .finish(SIPP_RUN)
        .unwrap_or_else(|e| panic!("{}", diagnose(&e.to_string(), &caller)));
    let closed = bob
        .wait_event("CALL_CLOSED", WAIT)
        .unwrap_or_else(|e| panic!("{}", diagnose(&format!("bob: {e}"), &caller)));
    assert!(
        bob.events().iter().all(|e| e.kind != "CALL_ESTABLISHED"),
        "{}",
        diagnose("bob never answered", &caller)
    );
    // The caller: 180 relayed, 200 to the CANCEL, 487 to the INVITE.
    let statuses = caller.statuses("INVITE");
    assert!(
        statuses.contains(&180) && statuses.last() == Some(&487),
        "{}",
        diagnose(&format!("INVITE answered {statuses:?}"), &caller)
    );
    assert_eq!(caller.statuses("CANCEL"), [200]);
    // baresip: the SBC's CANCEL, answered 200, and its INVITE ended with 487 and ACKed.
    let trace = bob.sip_messages();
    let got = |start: &str| {
        trace.iter().any(|m| {
            m.src.ip() == IpAddr::V4(topology::SBC_BOB_SIGNALLING)
                && m.start_line().starts_with(start)
        })
    };
    let sent = |start: &str| {
        trace
            .iter()
            .any(|m| m.src.ip() == IpAddr::V4(topology::BOB) && m.start_line().starts_with(start))
    };
    assert!(
        got("CANCEL ") && got("ACK ") && sent("SIP/2.0 487") && sent("SIP/2.0 200"),
        "{}\nclosed: {}",
        diagnose("baresip's CANCEL exchange", &caller),
        closed.param
    );
    wait_calls(&app, 0).unwrap_or_else(|calls| {
        panic!("{}", diagnose(&format!("no call left: {calls:?}"), &caller))
    });
}

#[test]
fn busy_here_reaches_the_caller() {
    let Some(env) = Env::new("busy", false) else {
        return;
    };
    let app = env.appliance(SippTransport::Udp, Far::Sipp(2));
    let mut busy = env.callee(0, "uas_486.xml");
    let mut second = env.callee(1, "uas_answer.xml");
    let mut caller = env.caller("uac_rejected.xml", SippTransport::Udp);
    let report = |caller: &Sipp<'_>, busy: &Sipp<'_>, second: &Sipp<'_>| {
        format!(
            "{}\n{}\n{}\n{}",
            app.logs(),
            caller.report(),
            busy.report(),
            second.report()
        )
    };
    if let Err(e) = caller.finish(SIPP_RUN).and_then(|_| busy.finish(WAIT)) {
        panic!("{e}\n{}", report(&caller, &busy, &second));
    }
    assert_eq!(
        caller.statuses("INVITE").last(),
        Some(&486),
        "{}",
        report(&caller, &busy, &second)
    );
    // 486 is no reason to try the next peer.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        second.messages().is_empty() && !second.has_exited(),
        "{}",
        report(&caller, &busy, &second)
    );
    wait_calls(&app, 0).unwrap();
}

#[test]
fn service_unavailable_fails_over_to_the_next_peer() {
    let Some(env) = Env::new("failover", false) else {
        return;
    };
    let app = env.appliance(SippTransport::Udp, Far::Sipp(2));
    let (cap_op, cap_far) = env.captures();
    let mut down = env.callee(0, "uas_503.xml");
    let mut up = env.callee(1, "uas_answer.xml");
    let mut caller = env.caller("uac_call.xml", SippTransport::Udp);
    let report = |caller: &Sipp<'_>, down: &Sipp<'_>, up: &Sipp<'_>| {
        format!(
            "{}\n{}\n{}\n{}",
            app.logs(),
            caller.report(),
            down.report(),
            up.report()
        )
    };
    if let Err(e) = wait_calls(&app, 1) {
        panic!(
            "one call in the data plane: {e:?}\n{}",
            report(&caller, &down, &up)
        );
    }
    if let Err(e) = caller
        .finish(SIPP_RUN)
        .and_then(|_| down.finish(WAIT))
        .and_then(|_| up.finish(WAIT))
    {
        panic!("{e}\n{}", report(&caller, &down, &up));
    }
    wait_calls(&app, 0).unwrap();
    // The caller never saw the 503: the call was answered by the second peer.
    let statuses = caller.statuses("INVITE");
    assert!(
        !statuses.contains(&503) && statuses.last() == Some(&200),
        "{statuses:?}\n{}",
        report(&caller, &down, &up)
    );
    let invites = |s: &Sipp<'_>| {
        s.messages()
            .iter()
            .filter(|m| m.direction == Direction::Received && m.method() == Some("INVITE"))
            .count()
    };
    assert!(invites(&down) >= 1 && invites(&up) >= 1);
    // Media flowed between the caller and the second peer, through the data plane, in the
    // clear on both legs.
    let op_leg = cap_op.stop().unwrap();
    let far_leg = cap_far.stop().unwrap();
    let to_caller = check_plain_leg(
        &op_leg,
        OPERATOR_RTP,
        topology::SBC_ALICE_MEDIA,
        OPERATOR_FIRST_FRAME,
        50,
    )
    .unwrap_or_else(|e| panic!("caller's leg: {e}"));
    let to_callee = check_plain_leg(
        &far_leg,
        FAR_SIPP_RTP[1],
        topology::SBC_BOB_MEDIA,
        FAR_FIRST_FRAME,
        50,
    )
    .unwrap_or_else(|e| panic!("second peer's leg: {e}"));
    let far_frames = FAR_FIRST_FRAME..FAR_FIRST_FRAME + FRAMES;
    let op_frames = OPERATOR_FIRST_FRAME..OPERATOR_FIRST_FRAME + FRAMES;
    assert!(to_caller.iter().all(|p| far_frames.contains(&frame_of(p))));
    assert!(to_callee.iter().all(|p| op_frames.contains(&frame_of(p))));
}

#[test]
fn decline_never_fails_over() {
    let Some(env) = Env::new("decline", false) else {
        return;
    };
    let app = env.appliance(SippTransport::Udp, Far::Sipp(2));
    let mut decline = env.callee(0, "uas_603.xml");
    let mut second = env.callee(1, "uas_answer.xml");
    let mut caller = env.caller("uac_rejected.xml", SippTransport::Udp);
    let report = |caller: &Sipp<'_>, decline: &Sipp<'_>, second: &Sipp<'_>| {
        format!(
            "{}\n{}\n{}\n{}",
            app.logs(),
            caller.report(),
            decline.report(),
            second.report()
        )
    };
    if let Err(e) = caller.finish(SIPP_RUN).and_then(|_| decline.finish(WAIT)) {
        panic!("{e}\n{}", report(&caller, &decline, &second));
    }
    assert_eq!(
        caller.statuses("INVITE").last(),
        Some(&603),
        "{}",
        report(&caller, &decline, &second)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        second.messages().is_empty() && !second.has_exited(),
        "the second peer was tried after a 603:\n{}",
        report(&caller, &decline, &second)
    );
    wait_calls(&app, 0).unwrap();
}

#[test]
fn sipp_holds_and_resumes_by_re_invite() {
    let Some(env) = Env::new("hold", true) else {
        return;
    };
    let app = env.appliance(SippTransport::Udp, Far::Baresip);
    let (cap_op, cap_far) = env.captures();
    let bob = env.baresip("auto");
    let mut caller = env.caller("uac_hold.xml", SippTransport::Udp);
    let diagnose = |what: &str, caller: &Sipp<'_>| {
        format!(
            "{what}\n{}\n{}\n{}",
            app.logs(),
            caller.report(),
            bob.log_tail(160)
        )
    };
    bob.wait_event("CALL_ESTABLISHED", WAIT)
        .unwrap_or_else(|e| panic!("{}", diagnose(&format!("bob: {e}"), &caller)));
    caller
        .finish(SIPP_RUN)
        .unwrap_or_else(|e| panic!("{}", diagnose(&e.to_string(), &caller)));
    bob.wait_event("CALL_CLOSED", WAIT)
        .unwrap_or_else(|e| panic!("{}", diagnose(&format!("bob: {e}"), &caller)));
    wait_calls(&app, 0).unwrap_or_else(|calls| {
        panic!(
            "{}",
            diagnose(&format!("the BYE removes the call: {calls:?}"), &caller)
        )
    });
    let op_leg = cap_op.stop().unwrap();
    let far_leg = cap_far.stop().unwrap();

    // The caller's three INVITEs were each answered 200, the hold with a=recvonly (or
    // inactive), the resume with a=sendrecv, all at the data plane's address without keys.
    let answers: Vec<String> = caller
        .messages()
        .iter()
        .filter(|m| {
            m.direction == Direction::Received
                && m.status() == Some(200)
                && m.cseq_method() == Some("INVITE")
        })
        .map(|m| m.body().to_owned())
        .collect();
    assert_eq!(answers.len(), 3, "{}", diagnose("three answers", &caller));
    for a in &answers {
        let (c, _, crypto) = media_line(a);
        assert_eq!(
            c.as_deref(),
            Some(format!("c=IN IP4 {}", topology::SBC_ALICE_MEDIA).as_str()),
            "{a}"
        );
        assert!(!crypto, "{a}");
    }
    assert!(
        answers[1].contains("a=recvonly") || answers[1].contains("a=inactive"),
        "the hold's answer: {}",
        answers[1]
    );
    assert!(
        !answers[2].contains("a=recvonly") && !answers[2].contains("a=inactive"),
        "the resume's answer: {}",
        answers[2]
    );
    // baresip was put on hold and taken off it.
    let offers: Vec<String> = bob
        .sip_messages()
        .iter()
        .filter(|m| {
            m.src.ip() == IpAddr::V4(topology::SBC_BOB_SIGNALLING)
                && m.start_line().starts_with("INVITE ")
        })
        .map(|m| m.body().to_owned())
        .collect();
    assert!(
        offers.len() >= 3
            && offers[offers.len() - 2].contains("a=sendonly")
            && !offers[offers.len() - 1].contains("a=sendonly"),
        "{}",
        diagnose("baresip's re-INVITEs", &caller)
    );
    // Media on both legs, with the keys baresip saw last: if a re-INVITE re-keys, only the
    // packets after it authenticate (about a second's worth), hence the lower bounds.
    let (bob_sent, bob_got) = (bob.sent_key().unwrap(), bob.received_key().unwrap());
    let check = srtp_check::check_call(
        &far_leg.datagrams,
        topology::SBC_BOB_MEDIA,
        &bob_got,
        topology::BOB,
        &bob_sent,
    )
    .unwrap();
    assert!(
        check.a_to_b.rtp.authenticated >= 40 && check.b_to_a.rtp.authenticated >= 25,
        "baresip's leg: {check:#?}"
    );
    check_plain_leg(
        &op_leg,
        OPERATOR_RTP,
        topology::SBC_ALICE_MEDIA,
        OPERATOR_FIRST_FRAME,
        25,
    )
    .unwrap_or_else(|e| panic!("SIPp's leg: {e}"));
}

/// RFC 3261 section 13.3.1.4: over UDP the UAS core retransmits its 2xx until the ACK.
#[test]
fn the_200_is_retransmitted_to_a_udp_caller_until_its_ack() {
    let Some(env) = Env::new("late-ack", false) else {
        return;
    };
    let app = env.appliance(SippTransport::Udp, Far::Sipp(1));
    let mut callee = env.callee(0, "uas_answer.xml");
    let mut caller = env.caller("uac_late_ack.xml", SippTransport::Udp);
    let report = |caller: &Sipp<'_>, callee: &Sipp<'_>| {
        format!("{}\n{}\n{}", app.logs(), caller.report(), callee.report())
    };
    if let Err(e) = caller.finish(SIPP_RUN).and_then(|_| callee.finish(WAIT)) {
        panic!("{e}\n{}", report(&caller, &callee));
    }
    // Sent at once, then at T1 (0.5 s) and 2*T1 later (1.5 s): three before the ACK at 2.5 s.
    let oks = caller
        .statuses("INVITE")
        .iter()
        .filter(|s| **s == 200)
        .count();
    assert!(
        oks >= 3,
        "{oks} 200 OK in 2.5 s without an ACK, expected 3:\n{}",
        report(&caller, &callee)
    );
    wait_calls(&app, 0).unwrap();
}

#[test]
fn a_call_whose_media_never_flows_is_ended_at_the_media_timeout() {
    let Some(env) = Env::new("media-timeout", false) else {
        return;
    };
    // Checked every second (a quarter of the timeout); a held call would wait for its own.
    let app = env.appliance_with(
        SippTransport::Udp,
        Far::Sipp(1),
        "media_timeout_s = 4\nhold_timeout_s = 60\n",
    );
    let mut callee = env.callee(0, "uas_silent.xml");
    let started = Instant::now();
    let mut caller = env.caller("uac_silent.xml", SippTransport::Udp);
    let report = |caller: &Sipp<'_>, callee: &Sipp<'_>| {
        format!("{}\n{}\n{}", app.logs(), caller.report(), callee.report())
    };
    if let Err(e) = wait_calls(&app, 1) {
        panic!(
            "one call in the data plane: {e:?}\n{}",
            report(&caller, &callee)
        );
    }
    // Both SIPps pass only if each got a BYE (and answered it) within 20 s.
    if let Err(e) = caller.finish(SIPP_RUN).and_then(|_| callee.finish(WAIT)) {
        panic!("{e}\n{}", report(&caller, &callee));
    }
    let ended_after = started.elapsed();
    assert!(
        ended_after >= Duration::from_secs(4),
        "ended after {ended_after:?}, before the 4 s media timeout\n{}",
        report(&caller, &callee)
    );
    for sipp in [&caller, &callee] {
        let bye = sipp
            .messages()
            .into_iter()
            .find(|m| m.direction == Direction::Received && m.method() == Some("BYE"))
            .unwrap_or_else(|| panic!("no BYE\n{}", report(&caller, &callee)));
        let reason = bye.header("Reason").unwrap_or_default().to_owned();
        assert!(
            reason.to_ascii_lowercase().contains("media"),
            "the BYE says why: {reason:?}\n{}",
            report(&caller, &callee)
        );
    }
    wait_calls(&app, 0).unwrap_or_else(|calls| panic!("no call left: {calls:?}"));
}
