//! The Internet checksum: the one's-complement sum of RFC 1071, and the incremental update of
//! RFC 1624, with which a relay carries a payload's sum from the checksum it received into the
//! one it sends without reading the payload again.

/// RFC 1071 one's-complement sum, folded to 16 bits (not inverted).
///
/// Adds eight bytes at a time as two 32-bit big-endian words into a 64-bit accumulator:
/// because 2^16 = 1 (mod 2^16 - 1), sums of wider words fold to the same 16-bit result
/// (RFC 1071 section 2(B)), at a quarter of the additions.
pub fn checksum_add(sum: u32, data: &[u8]) -> u32 {
    let mut acc = u64::from(sum);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (v >> 32) + (v & 0xffff_ffff);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for pair in &mut words {
        acc += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
}

/// Folds a one's-complement accumulator to 16 bits (end-around carry, RFC 1071).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field for a folded sum: its one's complement (RFC 1071 section 1).
#[inline]
pub fn finish(sum: u32) -> u16 {
    !(sum as u16)
}

/// Takes `part` back out of the one's-complement sum `whole`.
//= https://www.rfc-editor.org/rfc/rfc1624#section-3
//# HC' = ~(~HC + ~m + m')
// Adding the complement of a word subtracts it; here `whole` is ~HC and `part` is m.
#[inline]
pub fn subtract(whole: u16, part: u16) -> u16 {
    fold(u64::from(whole) + u64::from(!part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ipv4_checksum() {
        // RFC 1071 style check against a header computed by hand (Wikipedia's example).
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(checksum_add(0, &hdr)), 0xb861);
    }

    #[test]
    fn wide_checksum_equals_rfc1071_word_sum() {
        let reference = |sum: u32, data: &[u8]| {
            let mut sum = sum;
            for pair in data.chunks(2) {
                sum += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
            }
            sum
        };
        let mut x = 0x9e37_79b9u32;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            for start in [0u32, 1, 0xfffe, 0xffff] {
                assert_eq!(
                    checksum_add(start, &data),
                    reference(start, &data),
                    "len {len} start {start}"
                );
            }
        }
        assert_eq!(checksum_add(0, &[0xff; 4096]), 0xffff);
    }

    /// `checksum_add` against RFC 1071's definition (big-endian 16-bit words, end-around
    /// carry, one at a time) on every length up to 300 and random contents and start sums.
    #[test]
    fn checksum_matches_the_rfc_1071_definition() {
        let reference = |sum: u32, data: &[u8]| -> u32 {
            let mut acc = sum;
            for pair in data.chunks(2) {
                let w = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
                acc += w;
                acc = (acc & 0xffff) + (acc >> 16);
            }
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc
        };
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for len in 0..300 {
            for _ in 0..20 {
                let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                let start = (next() % 0x1_0000) as u32;
                // Equal as one's-complement values (0 and 0xffff are both zero).
                let (a, b) = (checksum_add(start, &data), reference(start, &data));
                assert_eq!(a % 0xffff, b % 0xffff, "len {len}");
            }
            assert_eq!(
                checksum_add(0, &vec![0xff; len]) % 0xffff,
                reference(0, &vec![0xff; len]) % 0xffff
            );
        }
    }

    /// Subtracting a part's sum leaves the sum of the rest (as one's-complement values).
    #[test]
    fn subtract_removes_a_part() {
        let (a, b) = (
            &[0x12u8, 0x34, 0xff, 0xfe][..],
            &[0xab, 0xcd, 0x00, 0x01][..],
        );
        let whole = checksum_add(checksum_add(0, a), b) as u16;
        let rest = subtract(whole, checksum_add(0, b) as u16);
        assert_eq!(rest % 0xffff, (checksum_add(0, a) as u16) % 0xffff);
    }
}
