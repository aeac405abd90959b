//! RTP and RTCP packets for tests and benchmarks.

/// Options for a generated RTP packet.
#[derive(Clone, Copy, Debug, Default)]
pub struct RtpShape {
    /// Number of CSRCs (0..=15).
    pub csrcs: u8,
    /// Words of RFC 8285 header extension (0 for none).
    pub extension_words: u16,
    /// Payload bytes.
    pub payload: usize,
}

/// An RTP packet with sequence number `seq`, SSRC `ssrc`, and payload bytes derived from
/// `seq` so each packet differs.
pub fn rtp_packet(seq: u16, ssrc: u32, shape: RtpShape) -> Vec<u8> {
    let mut p = Vec::with_capacity(
        12 + 4 * 15 + 4 + 4 * usize::from(shape.extension_words) + shape.payload,
    );
    let x = if shape.extension_words > 0 { 0x10 } else { 0 };
    p.push(0x80 | x | (shape.csrcs & 0x0f));
    p.push(0); // PT 0 (PCMU)
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..u32::from(shape.csrcs & 0x0f) {
        p.extend_from_slice(&(0x1000 + c).to_be_bytes());
    }
    if shape.extension_words > 0 {
        p.extend_from_slice(&[0xbe, 0xde]);
        p.extend_from_slice(&shape.extension_words.to_be_bytes());
        for w in 0..shape.extension_words {
            p.extend_from_slice(&[0x10, w as u8, 0, 0]);
        }
    }
    p.extend((0..shape.payload).map(|i| (usize::from(seq) * 31 + i) as u8));
    p
}

/// An RTCP compound packet: a sender report from `ssrc` with `blocks` report blocks and an
/// SDES CNAME, distinct per `n`.
pub fn rtcp_packet(n: u32, ssrc: u32, blocks: u8) -> Vec<u8> {
    let blocks = blocks.min(31);
    let sr_words = 6 + 6 * u16::from(blocks); // length in 32-bit words minus one
    let mut p = vec![0x80 | blocks, 200];
    p.extend_from_slice(&sr_words.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&u64::from(n).wrapping_mul(0x1_0000_0001).to_be_bytes()); // NTP
    p.extend_from_slice(&(n * 160).to_be_bytes()); // RTP timestamp
    p.extend_from_slice(&n.to_be_bytes()); // packet count
    p.extend_from_slice(&(n * 172).to_be_bytes()); // octet count
    for b in 0..u32::from(blocks) {
        p.extend_from_slice(&(0x2000 + b).to_be_bytes());
        p.extend_from_slice(&[0; 20]);
    }
    // SDES with one CNAME item "relay" padded to a word boundary.
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 5, b'r', b'e', b'l', b'a', b'y', 0]);
    p
}
