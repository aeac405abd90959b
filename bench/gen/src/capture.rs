//! `--write-pcap`: a capture of fresh, valid SRTP (or RTP) for every stream of a plan, as
//! the generator would send it to the relay, for tools that replay captures but cannot make
//! SRTP (pktgen-dpdk's pcap mode, tcpreplay). Each packet is used once: the relay's replay
//! protection drops a capture played twice, so a capture holds as many packets per stream as
//! the run needs.

use std::io::Write;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use relay_proto::wire;

use crate::send::{Codec, SendError, Sender};
use crate::streams::StreamPlan;

/// Where the frames come from and go to on the wire.
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    /// The generator's MAC address (source of every frame).
    pub src_mac: [u8; 6],
    /// The relay port's MAC address (destination).
    pub dst_mac: [u8; 6],
}

/// Why a capture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A packet could not be made.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The frame could not be built (the stream's two addresses are of different families).
    #[error("stream {0}: its source and destination are of different address families")]
    Frame(usize),
    /// Writing failed.
    #[error("writing the capture: {0}")]
    Io(#[from] pcap_file::PcapError),
}

/// Writes `per_stream` packets of every stream, round robin, one every `gap` (their stamps'
/// send times count from zero by `gap` too), as Ethernet frames. Returns the frames written.
pub fn write<W: Write>(
    out: W,
    plans: &[StreamPlan],
    codec: Codec,
    per_stream: u64,
    gap: Duration,
    ends: Ends,
) -> Result<u64, CaptureError> {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(out, header)?;
    let mut sender = Sender::new(plans, codec);
    let mut packet = vec![0u8; sender.max_packet_len()];
    // IPv6 and UDP headers at most before the payload, and room after for the builder.
    let mut frame = vec![0u8; 62 + sender.max_packet_len() + 64];
    let l2 = wire::L2Out {
        src: ends.src_mac,
        dst: ends.dst_mac,
        vlan: None,
    };
    let mut written = 0u64;
    for _ in 0..per_stream {
        for (i, p) in plans.iter().enumerate() {
            let at = gap * u32::try_from(written).unwrap_or(u32::MAX);
            let len = sender.next(i, at.as_nanos() as u64, &mut packet)?;
            let start = if p.to_relay.is_ipv4() { 42 } else { 62 };
            frame[start..start + len].copy_from_slice(&packet[..len]);
            let n = wire::emit_udp(&mut frame, start, len, &l2, p.from, p.to_relay)
                .ok_or(CaptureError::Frame(i))?;
            writer.write_packet(&PcapPacket::new(at, n as u32, &frame[..n]))?;
            written += 1;
        }
    }
    Ok(written)
}
