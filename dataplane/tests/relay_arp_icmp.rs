//! On real DPDK (`net_pcap`): ARP requests and ICMP echo requests for the relay's address are
//! answered; those for other addresses are not.

mod common;

use std::process::Command;

use relay_dataplane::wire::{self, Arp};

const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let req = Arp {
        op: 1,
        sha: PEER_MAC,
        spa: [198, 18, 0, 10].into(),
        tha: [0; 6],
        tpa: target.into(),
    };
    let n = wire::write_arp(&mut buf, [0xff; 6], None, &req).unwrap();
    buf.truncate(n);
    buf
}

fn echo_request(dst: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 16];
    f[0..6].copy_from_slice(&RELAY_MAC);
    f[6..12].copy_from_slice(&PEER_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14..26].copy_from_slice(&[0x45, 0, 0, 36, 0, 1, 0, 0, 64, 1, 0, 0]);
    f[26..30].copy_from_slice(&[198, 18, 0, 10]);
    f[30..34].copy_from_slice(&dst);
    let c = !(wire::checksum_add(0, &f[14..34]) as u16);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34] = 8;
    f[38..42].copy_from_slice(&[0x12, 0x34, 0, 1]);
    f[42..50].copy_from_slice(b"relay?  ");
    let c = !(wire::checksum_add(0, &f[34..50]) as u16);
    f[36..38].copy_from_slice(&c.to_be_bytes());
    f
}

fn neighbour_solicitation(target: &str) -> Vec<u8> {
    let mut b = vec![135, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&target.parse::<std::net::Ipv6Addr>().unwrap().octets());
    b.extend_from_slice(&[1, 1]);
    b.extend_from_slice(&PEER_MAC);
    b
}

fn icmp6(body: &[u8], dst: &str, hop_limit: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let l2 = wire::L2Out {
        src: PEER_MAC,
        dst: RELAY_MAC,
        vlan: None,
    };
    let n = wire::write_icmp6(
        &mut buf,
        &l2,
        "2001:2::10".parse().unwrap(),
        dst.parse().unwrap(),
        hop_limit,
        body,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn arp_and_echo_for_our_address_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in.pcap"), tmp.path().join("out.pcap"));
    common::write_pcap(
        &input,
        [
            arp_request([198, 18, 0, 1]),
            arp_request([198, 18, 0, 99]),
            echo_request([198, 18, 0, 1]),
            echo_request([198, 18, 0, 99]),
            icmp6(&neighbour_solicitation("2001:2::1"), "ff02::1:ff00:1", 255),
            icmp6(
                &neighbour_solicitation("2001:2::99"),
                "ff02::1:ff00:99",
                255,
            ),
            icmp6(&[128, 0, 0, 0, 0, 7, 0, 1, b'v', b'6'], "2001:2::1", 64),
        ],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
        .args([
            "run",
            "--port",
            "net_pcap0,ipv4=198.18.0.1/24,ipv6=2001:2::1/64,mac=02:00:00:00:00:01",
            "--idle-exit-ms",
            "500",
            "--duration",
            "30",
        ])
        .arg("--")
        .args(common::eal_args(&[&common::pcap_vdev(&input, &output)]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replies = common::read_pcap(&output);
    assert_eq!(
        replies.len(),
        4,
        "ARP reply, echo reply, neighbour advertisement, echo6 reply: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let l2 = wire::parse_l2(&replies[0]).unwrap();
    let arp = wire::parse_arp(&replies[0], &l2).unwrap();
    assert_eq!(
        (arp.op, arp.sha, arp.spa, arp.tha, l2.dst),
        (2, RELAY_MAC, [198, 18, 0, 1].into(), PEER_MAC, PEER_MAC)
    );
    let echo = &replies[1];
    assert_eq!((echo[23], echo[34]), (1, 0), "ICMP echo reply");
    assert_eq!(&echo[26..30], &[198, 18, 0, 1]);
    assert_eq!(&echo[30..34], &[198, 18, 0, 10]);
    assert_eq!(&echo[42..50], b"relay?  ");
    assert_eq!(wire::checksum_add(0, &echo[34..50]), 0xffff);
    for (reply, kind) in [(&replies[2], 136u8), (&replies[3], 129)] {
        let l2 = wire::parse_l2(reply).unwrap();
        let icmp = wire::parse_icmp6(reply, &l2).unwrap();
        assert_eq!((icmp.kind, icmp.src), (kind, "2001:2::1".parse().unwrap()));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"replies\":4"), "{stdout}");
    // The ARP request, the echo request and the solicitation for someone else's address.
    assert!(stdout.contains("\"not_for_us\":3"), "{stdout}");
}
