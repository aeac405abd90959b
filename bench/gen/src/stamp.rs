//! The generator's mark in an RTP payload: a magic number, the stream, the stream's
//! sequence number (64 bits: it never wraps within a run) and the send time, then a filler
//! derived from the three so that any change to the payload shows.

/// The first bytes of every stamped payload.
pub const MAGIC: [u8; 4] = *b"RGEN";

/// The stamp's length: magic, stream (u32), sequence (u64), send time (u64), big-endian.
pub const LEN: usize = 24;

/// What a generated payload carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The stream's index in the plan.
    pub stream: u32,
    /// The stream's packet number, from 0.
    pub seq: u64,
    /// When it was sent, in the generator's nanoseconds.
    pub sent_ns: u64,
}

/// Why a payload is not one the generator made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    /// Shorter than a stamp.
    #[error("payload of {0} bytes is shorter than a stamp ({LEN})")]
    TooShort(usize),
    /// The magic number is missing.
    #[error("no generator stamp")]
    NotStamped,
    /// The filler after the stamp differs from what the stamp implies.
    #[error("payload altered after the stamp")]
    Altered,
}

impl Stamp {
    /// Writes the stamp and the filler into `payload` (at least [`LEN`] bytes).
    pub fn write(&self, payload: &mut [u8]) -> Result<(), StampError> {
        if payload.len() < LEN {
            return Err(StampError::TooShort(payload.len()));
        }
        payload[..4].copy_from_slice(&MAGIC);
        payload[4..8].copy_from_slice(&self.stream.to_be_bytes());
        payload[8..16].copy_from_slice(&self.seq.to_be_bytes());
        payload[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
        let seed = self.filler_seed();
        for (i, b) in payload[LEN..].iter_mut().enumerate() {
            *b = filler(seed, i);
        }
        Ok(())
    }

    /// Reads the stamp of `payload` and checks its filler.
    pub fn read(payload: &[u8]) -> Result<Stamp, StampError> {
        if payload.len() < LEN {
            return Err(StampError::TooShort(payload.len()));
        }
        if payload[..4] != MAGIC {
            return Err(StampError::NotStamped);
        }
        let word = |r: std::ops::Range<usize>| -> [u8; 8] {
            let mut w = [0u8; 8];
            w[8 - r.len()..].copy_from_slice(&payload[r]);
            w
        };
        let stamp = Stamp {
            stream: u64::from_be_bytes(word(4..8)) as u32,
            seq: u64::from_be_bytes(word(8..16)),
            sent_ns: u64::from_be_bytes(word(16..24)),
        };
        let seed = stamp.filler_seed();
        if payload[LEN..]
            .iter()
            .enumerate()
            .any(|(i, &b)| b != filler(seed, i))
        {
            return Err(StampError::Altered);
        }
        Ok(stamp)
    }

    fn filler_seed(&self) -> u8 {
        (self.stream as u8) ^ (self.seq as u8).rotate_left(3)
    }
}

/// Filler byte `i` after a stamp: varies with the position and the stamp.
#[inline]
fn filler(seed: u8, i: usize) -> u8 {
    seed.wrapping_add((i as u8).wrapping_mul(29))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What is written reads back; any one changed byte is caught.
        #[test]
        fn a_stamp_reads_back_and_any_change_shows(
            stream in any::<u32>(),
            seq in any::<u64>(),
            sent_ns in any::<u64>(),
            len in LEN..1500usize,
            flip in any::<(usize, u8)>(),
        ) {
            let s = Stamp { stream, seq, sent_ns };
            let mut p = vec![0u8; len];
            s.write(&mut p).unwrap();
            prop_assert_eq!(Stamp::read(&p), Ok(s));
            let at = flip.0 % len;
            let bit = 1u8 << (flip.1 % 8);
            p[at] ^= bit;
            let read = Stamp::read(&p);
            if at < 4 {
                prop_assert_eq!(read, Err(StampError::NotStamped));
            } else if at < LEN {
                // A changed stamp field reads as another stamp, whose filler differs unless
                // the field does not feed the filler seed; the verifier then sees a wrong
                // stream, sequence or time.
                prop_assert_ne!(read, Ok(s));
            } else {
                prop_assert_eq!(read, Err(StampError::Altered));
            }
        }
    }

    #[test]
    fn too_short_payloads_are_refused() {
        assert_eq!(
            Stamp {
                stream: 0,
                seq: 0,
                sent_ns: 0
            }
            .write(&mut [0u8; 23]),
            Err(StampError::TooShort(23))
        );
        assert_eq!(Stamp::read(&[0u8; 10]), Err(StampError::TooShort(10)));
    }
}
