//! Shared by the DPDK integration tests. Each test file is its own binary, and so its own
//! process, because the EAL can be initialised only once per process.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different part.

use std::net::SocketAddrV4;

use relay_dataplane::wire::{write_udp_with, UdpEndpoints};

/// EAL arguments that work without hugepages, PCI devices or shared config (CI machines),
/// followed by `vdevs`.
pub fn eal_args(vdevs: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "-l",
        "0",
        "--log-level=error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(vdevs.iter().map(|v| format!("--vdev={v}")));
    args
}

/// EAL arguments without hugepages: the main lcore and two workers, all on CPU 0 (so the
/// tests run on a one-CPU machine too).
pub const THREE_LCORES_ON_CPU_0: [&str; 7] = [
    "--no-huge",
    "-m",
    "256",
    "--no-pci",
    "--no-shconf",
    "--log-level=error",
    "--lcores=0@0,1@0,2@0",
];

/// Frame `i` of a test stream: UDP/IPv4 with a size and content that differ per frame.
pub fn test_frame(i: usize) -> Vec<u8> {
    // Sizes sweep from the 60-byte Ethernet minimum (without FCS) to a full 1514-byte frame.
    let len = 60 + (i * 37) % (1514 - 60 + 1);
    let ends = UdpEndpoints {
        src_mac: [0x02, 0, 0, 0, 1, (i % 251) as u8],
        dst_mac: [0x02, 0, 0, 0, 2, 0x01],
        vlan: None,
        src: SocketAddrV4::new([198, 18, 0, 1].into(), 40_000 + (i % 1000) as u16).into(),
        dst: SocketAddrV4::new([198, 19, 0, 1].into(), 50_000).into(),
    };
    let payload_len = len - ends.header_len();
    let mut frame = vec![0u8; len];
    let n = write_udp_with(&mut frame, &ends, payload_len, |p| {
        for (k, b) in p.iter_mut().enumerate() {
            *b = (i.wrapping_mul(7) ^ k) as u8;
        }
    })
    .expect("buffer fits");
    assert_eq!(n, len);
    frame
}

/// Sends `signal` (e.g. `-TERM`) to `child` by its PID and waits (at most 10 s) for it to exit;
/// returns its exit status and standard output. Kills it and panics if it does not stop.
pub fn stop_by_signal(
    child: &mut std::process::Child,
    signal: &str,
) -> (std::process::ExitStatus, String) {
    use std::time::{Duration, Instant};
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {pid}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {pid} did not stop on {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(stdout) = child.stdout.as_mut() {
        let _ = std::io::Read::read_to_string(stdout, &mut out);
    }
    (status, out)
}

/// Writes `frames` to a pcap file (timestamps 1 µs apart; only the bytes matter).
pub fn write_pcap<F: AsRef<[u8]>>(path: &std::path::Path, frames: impl IntoIterator<Item = F>) {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let mut w =
        PcapWriter::new(std::fs::File::create(path).expect("create pcap")).expect("pcap header");
    for (i, f) in frames.into_iter().enumerate() {
        let f = f.as_ref();
        w.write_packet(&PcapPacket::new(
            std::time::Duration::from_micros(i as u64),
            f.len() as u32,
            f,
        ))
        .expect("write packet");
    }
}

/// Every packet of a pcap file.
pub fn read_pcap(path: &std::path::Path) -> Vec<Vec<u8>> {
    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(path).expect("open pcap"))
        .expect("pcap header");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.expect("valid packet").data.into_owned());
    }
    out
}

/// The `net_pcap0` vdev reading `input` and writing `output`.
pub fn pcap_vdev(input: &std::path::Path, output: &std::path::Path) -> String {
    format!(
        "net_pcap0,rx_pcap={},tx_pcap={}",
        input.display(),
        output.display()
    )
}

/// A plain RTP packet (sequence `seq`, 160 bytes of payload) from the test caller
/// 198.18.1.10:5004 to the relay's 198.18.0.1:`dst_port`, as an Ethernet frame.
pub fn caller_rtp_frame(dst_port: u16, seq: u16) -> Vec<u8> {
    use relay_dataplane::wire::write_udp;
    let mut rtp = vec![0x80, 0];
    rtp.extend_from_slice(&seq.to_be_bytes());
    rtp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
    rtp.extend_from_slice(&[0x55; 160]);
    let mut buf = vec![0u8; 256];
    let ends = UdpEndpoints {
        src_mac: [2, 0, 0, 0, 0, 0x10],
        dst_mac: [2, 0, 0, 0, 0, 1],
        vlan: None,
        src: "198.18.1.10:5004".parse().unwrap(),
        dst: format!("198.18.0.1:{dst_port}").parse().unwrap(),
    };
    let n = write_udp(&mut buf, &ends, &rtp).unwrap();
    buf.truncate(n);
    buf
}

/// The session crate's control-socket client, asked in raw JSON (to test the protocol itself).
pub struct ControlClient(pub relay_session::client::ControlClient);

impl ControlClient {
    /// Connects to `socket`, waiting up to 15 s for the relay to create it.
    pub fn connect(socket: &std::path::Path) -> ControlClient {
        ControlClient(
            relay_session::client::ControlClient::connect_waiting(
                socket,
                std::time::Duration::from_secs(15),
            )
            .expect("control socket"),
        )
    }

    /// Sends one request and returns the answer.
    pub fn ask(&mut self, req: serde_json::Value) -> serde_json::Value {
        let answer = self.0.exchange_line(&req.to_string()).expect("answer");
        serde_json::from_str(&answer).expect("JSON answer")
    }
}

/// `count` local port pairs (p, p + 2), from `start` on in steps of 4, that both land on
/// `worker` of two (by the hash calls are placed and dispatched with).
pub fn ports_on_worker(worker: u16, count: usize, start: u16) -> Vec<u16> {
    use relay_dataplane::rss::{queue_for_port, SOFTWARE_RETA_SIZE};
    (start..)
        .step_by(4)
        .filter(|&p| {
            queue_for_port(p, SOFTWARE_RETA_SIZE, 2) == worker
                && queue_for_port(p + 2, SOFTWARE_RETA_SIZE, 2) == worker
        })
        .take(count)
        .collect()
}

/// Runs a command quietly; whether it succeeded.
pub fn sh(args: &[&str]) -> bool {
    std::process::Command::new(args[0])
        .args(&args[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether this process may make network namespaces: root (the effective uid, from /proc)
/// and iproute2 installed.
pub fn can_make_namespaces() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    root && sh(&["ip", "-V"])
}

/// A network namespace the test made; deleted on drop (with the interfaces inside it).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Makes namespace `name` with its loopback up.
    pub fn new(name: String) -> Netns {
        assert!(sh(&["ip", "netns", "add", &name]), "ip netns add {name}");
        let ns = Netns { name };
        assert!(sh(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]));
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.name]);
    }
}

/// A child process stopped (by its PID) if the test ends before it does.
pub struct KillOnDrop(pub Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits (up to 20 s) for the relay in `relay` to create its control socket; if it never
/// does, stops it and fails the test with what it printed.
pub fn wait_for_control_socket(relay: &mut KillOnDrop, socket: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if !socket.exists() {
        let mut child = relay.0.take().expect("the relay process");
        let _ = child.kill();
        let out = child.wait_with_output().expect("the relay's output");
        panic!(
            "the relay did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs test `name` of this test binary inside namespace `ns` with `env` set (the peer side
/// of a kernel-socket test) and returns the JSON it printed after `PEER `.
pub fn run_peer_in(ns: &Netns, name: &str, env: (&str, &str)) -> serde_json::Value {
    let peer = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(std::env::current_exe().expect("this test binary"))
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(env.0, env.1)
        .output()
        .expect("running the peer");
    let text = String::from_utf8_lossy(&peer.stdout);
    let line = text
        .lines()
        .find_map(|l| l.split_once("PEER ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("peer: {text}{}", String::from_utf8_lossy(&peer.stderr)));
    serde_json::from_str(line).expect("the peer's JSON")
}

/// The RTP packet the kernel-socket peers send for call `port`, number `seq`: SSRC = port,
/// 160 payload bytes that differ per call and per packet.
pub fn peer_rtp(port: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&u32::from(port).to_be_bytes());
    p.extend((0..160u16).map(|i| (i as u8) ^ (seq as u8) ^ (port as u8)));
    p
}
