//! Packet capture: tcpdump inside a namespace on one interface, writing a pcap file, stopped by
//! PID; and the pcap read back as UDP datagrams with their IPv4 addresses.
//!
//! tcpdump runs with `--immediate-mode` (every packet reaches the file as it is captured, so
//! stopping it loses nothing still sitting in a kernel ring block), `-U` (the file is flushed
//! per packet) and `-Z root` (it keeps the rights to write into the test's private temporary
//! directory instead of switching to the `tcpdump` user).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

use crate::error::{Error, Result};
use crate::netns::{wait_until, KillOnDrop, Netns};

/// One captured UDP/IPv4 datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpDatagram {
    /// The capture timestamp (since the Unix epoch).
    pub time: Duration,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// The datagrams of `all` sent from `from` to `to` (any ports), in capture order.
pub fn between(all: &[UdpDatagram], from: Ipv4Addr, to: Ipv4Addr) -> Vec<&UdpDatagram> {
    all.iter()
        .filter(|d| *d.src.ip() == from && *d.dst.ip() == to)
        .collect()
}

/// What a stopped capture holds.
#[derive(Clone, Debug)]
pub struct Captured {
    /// Every UDP/IPv4 datagram, in capture order (non-first IPv4 fragments are left out).
    pub datagrams: Vec<UdpDatagram>,
    /// Frames of other kinds (ARP, TCP, IPv6, ...).
    pub other_frames: usize,
    /// tcpdump's "packets dropped by kernel", if it printed it.
    pub kernel_drops: Option<u64>,
}

/// tcpdump running inside a namespace; stopped (by PID) by [`Capture::stop`] or on drop.
#[derive(Debug)]
pub struct Capture<'ns> {
    ns: &'ns Netns,
    process: KillOnDrop,
    pcap: PathBuf,
    log: PathBuf,
}

impl<'ns> Capture<'ns> {
    /// Starts tcpdump on `iface` in `ns`, writing `pcap` (name it `*.pcap`: Debian's AppArmor
    /// profile for tcpdump allows writing only such names), with the capture `filter` (e.g.
    /// `"udp"`, or `""` for everything). Returns once tcpdump says it is listening (at most 5 s).
    pub fn start(ns: &'ns Netns, iface: &str, pcap: &Path, filter: &str) -> Result<Capture<'ns>> {
        let log = pcap.with_extension("tcpdump.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
        let mut cmd = ns.command("tcpdump");
        cmd.args([
            "-i",
            iface,
            "-n",
            "-s",
            "0",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
        ])
        .arg("-w")
        .arg(pcap);
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| Error::io("starting tcpdump", e))?;
        let mut capture = Capture {
            ns,
            process: KillOnDrop::new(child),
            pcap: pcap.to_owned(),
            log,
        };
        let ready = wait_until(Duration::from_secs(5), || {
            if capture.log_text().contains("listening on") {
                return Some(true);
            }
            capture.process.try_wait().map(|_| false)
        });
        match ready {
            Some(true) => Ok(capture),
            Some(false) => Err(Error::Process(format!(
                "tcpdump on {iface} in {} exited: {}",
                capture.ns.name(),
                capture.log_text()
            ))),
            None => Err(Error::Timeout {
                what: format!(
                    "tcpdump on {iface} in {} to listen: {}",
                    capture.ns.name(),
                    capture.log_text()
                ),
                after: Duration::from_secs(5),
            }),
        }
    }

    /// The pcap file being written.
    pub fn path(&self) -> &Path {
        &self.pcap
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops tcpdump (SIGTERM by PID, SIGKILL after 5 s) and reads what it captured.
    pub fn stop(mut self) -> Result<Captured> {
        self.process.terminate(Duration::from_secs(5));
        let kernel_drops = self.log_text().lines().find_map(|l| {
            l.strip_suffix(" packets dropped by kernel")
                .or_else(|| l.strip_suffix(" packet dropped by kernel"))
                .and_then(|n| n.trim().parse().ok())
        });
        let (datagrams, other_frames) = read_udp(&self.pcap)?;
        Ok(Captured {
            datagrams,
            other_frames,
            kernel_drops,
        })
    }
}

/// Reads a pcap file: its UDP/IPv4 datagrams and the number of other frames. Link types:
/// Ethernet (with or without one 802.1Q/802.1ad tag), Linux cooked (`-i any`), raw IPv4.
pub fn read_udp(path: &Path) -> Result<(Vec<UdpDatagram>, usize)> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut reader = PcapReader::new(file)
        .map_err(|e| Error::Malformed(format!("pcap header of {}: {e}", path.display())))?;
    let link = reader.header().datalink;
    let mut datagrams = Vec::new();
    let mut other = 0;
    while let Some(packet) = reader.next_packet() {
        let packet = packet
            .map_err(|e| Error::Malformed(format!("pcap record in {}: {e}", path.display())))?;
        match parse_frame(link, &packet.data) {
            Some((src, dst, payload)) => datagrams.push(UdpDatagram {
                time: packet.timestamp,
                src,
                dst,
                payload: payload.to_vec(),
            }),
            None => other += 1,
        }
    }
    Ok((datagrams, other))
}

/// The UDP/IPv4 datagram in one captured frame, or `None` for anything else (including
/// truncated frames and IPv4 fragments).
pub fn parse_frame(link: DataLink, frame: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4, &[u8])> {
    let ip = match link {
        DataLink::ETHERNET => {
            let mut ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
            let mut offset = 14;
            if ethertype == 0x8100 || ethertype == 0x88a8 {
                ethertype = u16::from_be_bytes(frame.get(16..18)?.try_into().ok()?);
                offset = 18;
            }
            if ethertype != 0x0800 {
                return None;
            }
            frame.get(offset..)?
        }
        DataLink::LINUX_SLL => {
            if u16::from_be_bytes(frame.get(14..16)?.try_into().ok()?) != 0x0800 {
                return None;
            }
            frame.get(16..)?
        }
        DataLink::RAW | DataLink::IPV4 => frame,
        _ => return None,
    };
    let first = *ip.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes(ip.get(2..4)?.try_into().ok()?));
    let ip = ip.get(..total_len)?;
    let fragment = u16::from_be_bytes(ip.get(6..8)?.try_into().ok()?);
    // More-fragments set or a non-zero offset: not a whole datagram.
    if ip.get(9) != Some(&17) || fragment & 0x3fff != 0 {
        return None;
    }
    let src_ip = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?);
    let dst_ip = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?);
    let udp = ip.get(header_len..)?;
    let src_port = u16::from_be_bytes(udp.get(0..2)?.try_into().ok()?);
    let dst_port = u16::from_be_bytes(udp.get(2..4)?.try_into().ok()?);
    let udp_len = usize::from(u16::from_be_bytes(udp.get(4..6)?.try_into().ok()?));
    let payload = udp.get(8..udp_len.max(8))?;
    Some((
        SocketAddrV4::new(src_ip, src_port),
        SocketAddrV4::new(dst_ip, dst_port),
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with UDP/IPv4 198.18.30.1:20000 -> 198.18.30.2:20002 carrying
    /// `payload`, padded like a short Ethernet frame.
    fn frame(payload: &[u8], vlan: bool, fragment: u16) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + 8 + payload.len() as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 1]);
        let at = f.len() - 4;
        f[at..at + 2].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&fragment.to_be_bytes());
        f.extend_from_slice(&[64, 17, 0, 0, 198, 18, 30, 1, 198, 18, 30, 2]);
        f.extend_from_slice(&20000u16.to_be_bytes());
        f.extend_from_slice(&20002u16.to_be_bytes());
        f.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f.resize(f.len().max(60), 0);
        f
    }

    #[test]
    fn udp_in_ethernet_with_and_without_vlan() {
        for vlan in [false, true] {
            let f = frame(b"abc", vlan, 0x4000);
            let (src, dst, payload) = parse_frame(DataLink::ETHERNET, &f).unwrap();
            assert_eq!(src, "198.18.30.1:20000".parse().unwrap());
            assert_eq!(dst, "198.18.30.2:20002".parse().unwrap());
            // The Ethernet padding is not payload.
            assert_eq!(payload, b"abc");
        }
    }

    #[test]
    fn fragments_truncation_and_other_protocols_are_not_datagrams() {
        assert!(parse_frame(DataLink::ETHERNET, &frame(b"abc", false, 0x2000)).is_none());
        assert!(parse_frame(DataLink::ETHERNET, &frame(b"abc", false, 0x0001)).is_none());
        let f = frame(&[7; 100], false, 0);
        for cut in 0..f.len() - 1 {
            assert!(
                parse_frame(DataLink::ETHERNET, &f[..cut]).is_none(),
                "{cut}"
            );
        }
        let mut tcp = frame(b"abc", false, 0);
        tcp[14 + 9] = 6;
        assert!(parse_frame(DataLink::ETHERNET, &tcp).is_none());
        let mut arp = frame(b"abc", false, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(parse_frame(DataLink::ETHERNET, &arp).is_none());
        assert!(parse_frame(DataLink::ETHERNET, &[]).is_none());
    }

    #[test]
    fn raw_ipv4_and_linux_cooked() {
        let f = frame(b"xyz", false, 0);
        assert_eq!(parse_frame(DataLink::RAW, &f[14..]).unwrap().2, b"xyz");
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&f[14..]);
        assert_eq!(parse_frame(DataLink::LINUX_SLL, &sll).unwrap().2, b"xyz");
    }

    #[test]
    fn pcap_round_trip() {
        use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(std::fs::File::create(&path).unwrap(), header).unwrap();
        let frames = [
            frame(b"one", false, 0),
            vec![0u8; 42],
            frame(b"two", true, 0),
        ];
        for (i, f) in frames.iter().enumerate() {
            let packet = PcapPacket::new(Duration::from_millis(i as u64), f.len() as u32, f);
            w.write_packet(&packet).unwrap();
        }
        drop(w);
        let (datagrams, other) = read_udp(&path).unwrap();
        assert_eq!(other, 1);
        assert_eq!(datagrams.len(), 2);
        assert_eq!(datagrams[0].payload, b"one");
        assert_eq!(datagrams[1].payload, b"two");
        assert_eq!(datagrams[1].time, Duration::from_millis(2));
        let a = Ipv4Addr::new(198, 18, 30, 1);
        let b = Ipv4Addr::new(198, 18, 30, 2);
        assert_eq!(between(&datagrams, a, b).len(), 2);
        assert!(between(&datagrams, b, a).is_empty());
    }
}
