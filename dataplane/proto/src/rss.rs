//! Flow steering for several worker cores: which receive queue, and so which worker, a local
//! UDP port's packets land on.
//!
//! Ports run RSS hashing only the UDP destination port (`RTE_ETH_RSS_NONFRAG_IPV4_UDP |
//! RTE_ETH_RSS_L4_DST_ONLY`) with [`RSS_KEY`], and a redirection table that maps entry `i` to
//! queue `i % queues`. Worker `w` polls queue `w` of every port. So all packets to one local
//! port go to one worker, whatever their source, and [`queue_for_port`] tells in advance which:
//! a call is installed on the worker its local ports map to, and refused if its two legs map to
//! different workers (the port allocator must pick ports that agree). Every stream's state is
//! then owned by exactly one core.
//!
//! The software hash must match the NIC's; it is the Toeplitz function of Microsoft's RSS
//! specification, checked below against its published vectors. Whether a NIC hashes exactly the
//! 2-byte destination port under `L4_DST_ONLY` must be confirmed per NIC model (it is the
//! documented input set of Intel's i40e and ice).

/// The RSS key programmed into every port (Microsoft's example key, 40 bytes).
pub const RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The Toeplitz hash of `input` under `key`.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let mut result = 0u32;
    // The 32-bit window of the key starting at the current input bit.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    let mut next_key_bit = 32;
    for &byte in input {
        for bit in (0..8).rev() {
            if byte & (1 << bit) != 0 {
                result ^= window;
            }
            let k = key
                .get(next_key_bit / 8)
                .map_or(0, |b| (b >> (7 - next_key_bit % 8)) & 1);
            window = (window << 1) | u32::from(k);
            next_key_bit += 1;
        }
    }
    result
}

/// The redirection table size assumed for ports without RSS, whose packets the receiving
/// worker hands to the owning worker itself (software dispatch) by the same hash.
pub const SOFTWARE_RETA_SIZE: u16 = 128;

/// The receive queue (= worker index) of packets to local UDP port `port`, with a
/// redirection table of `reta_size` entries over `queues` queues.
pub fn queue_for_port(port: u16, reta_size: u16, queues: u16) -> u16 {
    if queues <= 1 {
        return 0;
    }
    let hash = toeplitz(&RSS_KEY, &port.to_be_bytes());
    let entry = hash % u32::from(reta_size.max(1));
    (entry % u32::from(queues)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_rss_verification_vectors() {
        // "Verifying the RSS Hash Calculation", IPv4 with TCP/UDP ports:
        // destination address, source address, destination port, source port in that order.
        type Case = ([u8; 4], [u8; 4], u16, u16, u32, u32);
        let cases: [Case; 2] = [
            (
                [161, 142, 100, 80],
                [66, 9, 149, 187],
                1766,
                2794,
                0x323e_8fc2,
                0x51cc_c178,
            ),
            (
                [65, 69, 140, 83],
                [199, 92, 111, 2],
                4739,
                14230,
                0xd718_262a,
                0xc626_b0ea,
            ),
        ];
        for (dst, src, dport, sport, ip_only, with_ports) in cases {
            let mut input = Vec::new();
            input.extend_from_slice(&src);
            input.extend_from_slice(&dst);
            assert_eq!(toeplitz(&RSS_KEY, &input), ip_only);
            input.extend_from_slice(&sport.to_be_bytes());
            input.extend_from_slice(&dport.to_be_bytes());
            assert_eq!(toeplitz(&RSS_KEY, &input), with_ports);
        }
    }

    #[test]
    fn ports_spread_over_queues() {
        let mut counts = [0u32; 4];
        for port in (20_000u16..40_000).step_by(2) {
            counts[usize::from(queue_for_port(port, 512, 4))] += 1;
        }
        assert!(counts.iter().all(|&c| c > 2000), "{counts:?}");
        assert_eq!(queue_for_port(12345, 512, 1), 0);
    }
}
