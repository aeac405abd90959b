//! `net_pcap` reads frames from one pcap file and writes what we transmit to another: relaying
//! every frame unchanged must make the output's packets equal the input's.

mod common;

use std::fs::File;
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use relay_dataplane::dpdk::{Burst, Eal, PktMbufPool, Port, PortConfig};

const FRAMES: usize = 777;

#[test]
fn pcap_in_equals_pcap_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.pcap");
    let output = dir.path().join("out.pcap");

    let frames: Vec<Vec<u8>> = (0..FRAMES).map(common::test_frame).collect();
    {
        let mut w =
            PcapWriter::new(File::create(&input).expect("create in.pcap")).expect("pcap header");
        for (i, f) in frames.iter().enumerate() {
            let ts = Duration::from_micros(i as u64 * 20_000);
            w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
                .expect("write packet");
        }
    }

    {
        let vdev = format!(
            "net_pcap0,rx_pcap={},tx_pcap={}",
            input.display(),
            output.display()
        );
        let eal = Eal::init(common::eal_args(&[&vdev])).expect("EAL");
        let pool = PktMbufPool::create(
            &eal,
            "pcap_test",
            2047,
            0,
            PktMbufPool::default_data_room(),
            -1,
        )
        .expect("pool");
        let port = Port::open(&eal, 0, &PortConfig::default(), pool).expect("net_pcap port");

        let mut burst = Burst::new();
        let mut relayed = 0;
        let mut idle_since = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(20);
        // The pcap PMD returns nothing once the file is read; stop after a quiet second.
        while Instant::now() < deadline && idle_since.elapsed() < Duration::from_secs(1) {
            if port.rx_burst(0, &mut burst) > 0 {
                idle_since = Instant::now();
            }
            while !burst.is_empty() && Instant::now() < deadline {
                relayed += port.tx_burst(0, &mut burst);
            }
        }
        assert_eq!(relayed, FRAMES);
        // The output file is complete only once the port is closed (end of this scope).
    }

    let mut r =
        PcapReader::new(File::open(&output).expect("out.pcap written")).expect("pcap header");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.expect("valid packet").data.into_owned());
    }
    assert_eq!(out.len(), FRAMES);
    for (i, (a, b)) in frames.iter().zip(&out).enumerate() {
        assert_eq!(a, b, "frame {i} differs");
    }
}
