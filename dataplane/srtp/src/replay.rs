//! Packet index estimation and replay protection (RFC 3711 section 3.3.1 and Appendix A).
//!
//! The estimation and the replay check only read state; `commit` changes it, and is called
//! only after a packet's tag has verified. A forged packet, however far ahead its sequence
//! number, therefore cannot move the rollover counter or the window.

use smallvec::SmallVec;

use crate::SrtpError;

/// A sliding window over packet indices: bit `i` says whether index `top - i` was accepted.
#[derive(Clone, Debug)]
pub(crate) struct ReplayWindow {
    /// The highest index accepted, or [`NOT_STARTED`] before the first (indices are 48 bits
    /// for SRTP, 31 for SRTCP, so no index is ever that).
    top: u64,
    /// Inline up to [`INLINE_WINDOW_WORDS`] words (the default window of 128): a window of
    /// its own on the heap would be one more cache miss per packet, behind the context's,
    /// that no prefetch of the context covers.
    bits: SmallVec<[u64; INLINE_WINDOW_WORDS]>,
}

/// [`ReplayWindow::top`] before any index was accepted.
const NOT_STARTED: u64 = u64::MAX;

/// Words of a replay window kept inside it (128 indices); larger windows go to the heap.
const INLINE_WINDOW_WORDS: usize = 2;

impl ReplayWindow {
    /// A window remembering `size` indices (rounded up to a multiple of 64, at least 64).
    pub(crate) fn new(size: u32) -> Self {
        let words = size.max(64).div_ceil(64) as usize;
        ReplayWindow {
            top: NOT_STARTED,
            bits: smallvec::smallvec![0; words],
        }
    }

    /// Whether any index was accepted.
    #[inline]
    pub(crate) fn started(&self) -> bool {
        self.top != NOT_STARTED
    }

    /// How many indices the window remembers (a multiple of 64).
    #[inline]
    pub(crate) fn size(&self) -> u32 {
        (self.bits.len() * 64) as u32
    }

    /// The highest index accepted so far, if any.
    pub(crate) fn highest(&self) -> Option<u64> {
        self.started().then_some(self.top)
    }

    /// Whether `index` may be accepted: new, or inside the window and not yet seen.
    //= https://www.rfc-editor.org/rfc/rfc3711#section-3.3.2
    //# If the packet's index is less than the lower edge of the window
    //# then it is considered too old and MUST be discarded.
    #[inline]
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if !self.started() || index > self.top {
            return Ok(());
        }
        let delta = self.top - index;
        if delta >= u64::from(self.size()) {
            return Err(SrtpError::TooOld);
        }
        let (word, bit) = ((delta / 64) as usize, delta % 64);
        if self.bits[word] & (1 << bit) != 0 {
            Err(SrtpError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `index` as accepted. Call only after `check` passed and the tag verified.
    #[inline]
    pub(crate) fn commit(&mut self, index: u64) {
        if !self.started() {
            self.top = index;
            self.bits.fill(0);
            self.bits[0] = 1;
            return;
        }
        if index > self.top {
            self.shift(index - self.top);
            self.top = index;
            self.bits[0] |= 1;
        } else {
            let delta = self.top - index;
            if delta < u64::from(self.size()) {
                self.bits[(delta / 64) as usize] |= 1 << (delta % 64);
            }
        }
    }

    /// Moves every bit `by` positions towards the old end (bit i becomes bit i + by).
    #[inline]
    fn shift(&mut self, by: u64) {
        let bits = &mut self.bits[..];
        // The default window of 128 (two words), without the general loop below.
        if let [low, high] = bits {
            (*low, *high) = match by {
                0 => (*low, *high),
                1..64 => (*low << by, (*high << by) | (*low >> (64 - by))),
                64..128 => (0, *low << (by - 64)),
                _ => (0, 0),
            };
            return;
        }
        let n = bits.len();
        if by >= 64 * n as u64 {
            bits.fill(0);
            return;
        }
        let (words, b) = ((by / 64) as usize, (by % 64) as u32);
        for i in (words..n).rev() {
            // Word i takes word i - words shifted up, and the top bits of the word below it.
            let carried = if b != 0 && i > words {
                bits[i - words - 1] >> (64 - b)
            } else {
                0
            };
            bits[i] = (bits[i - words] << b) | carried;
        }
        if words > 0 {
            bits[..words].fill(0);
        }
    }
}

/// SRTP's rollover counter and highest sequence number for one SSRC, with its window.
#[derive(Clone, Debug)]
pub(crate) struct RtpIndex {
    roc: u32,
    s_l: u16,
    pub(crate) window: ReplayWindow,
}

impl RtpIndex {
    pub(crate) fn new(window: u32) -> Self {
        RtpIndex {
            roc: 0,
            s_l: 0,
            window: ReplayWindow::new(window),
        }
    }

    /// The current rollover counter.
    pub(crate) fn roc(&self) -> u32 {
        self.roc
    }

    /// The highest sequence number seen, if any packet was.
    pub(crate) fn highest_seq(&self) -> Option<u16> {
        self.window.started().then_some(self.s_l)
    }

    /// Continues a stream last seen at rollover counter `roc` and sequence `s_l` (carried
    /// over a restart): the next packets are placed relative to it, and that packet itself
    /// counts as received.
    pub(crate) fn resume(&mut self, roc: u32, s_l: u16) {
        self.roc = roc;
        self.s_l = s_l;
        self.window = ReplayWindow::new(self.window.size());
        self.window.commit((u64::from(roc) << 16) | u64::from(s_l));
    }

    /// The 48-bit index of a packet with sequence number `seq`, and the ROC it implies.
    //= https://www.rfc-editor.org/rfc/rfc3711#appendix-A
    //# if (s_l < 32,768)
    //#   if (SEQ - s_l > 32,768)
    //#     set v to (ROC-1) mod 2^32
    //#   else
    //#     set v to ROC
    //#   endif
    //# else
    //#   if (s_l - 32,768 > SEQ)
    //#     set v to (ROC+1) mod 2^32
    //#   else
    //#     set v to ROC
    //#   endif
    //# endif
    //  Unlike the pseudo-code, v is not taken mod 2^32: a packet from before ROC 0 is too old,
    //  and one after ROC 2^32-1 needs a new key.
    #[inline]
    pub(crate) fn estimate(&self, seq: u16) -> Result<(u32, u64), SrtpError> {
        if !self.window.started() {
            // RFC 3711 section 3.3.1: the first packet sets s_l; ROC starts at 0.
            return Ok((self.roc, (u64::from(self.roc) << 16) | u64::from(seq)));
        }
        let (s_l, seq_i, roc) = (i64::from(self.s_l), i64::from(seq), i64::from(self.roc));
        let v = if s_l < 32_768 {
            if seq_i - s_l > 32_768 {
                roc - 1
            } else {
                roc
            }
        } else if s_l - 32_768 > seq_i {
            roc + 1
        } else {
            roc
        };
        if v < 0 {
            return Err(SrtpError::TooOld);
        }
        let v = u32::try_from(v).map_err(|_| SrtpError::KeyExpired)?;
        Ok((v, (u64::from(v) << 16) | u64::from(seq)))
    }

    /// Records an authenticated packet: advances ROC and s_l if it is the newest.
    #[inline]
    pub(crate) fn commit(&mut self, roc: u32, index: u64) {
        let newest = self.window.highest().is_none_or(|top| index > top);
        self.window.commit(index);
        if newest {
            self.roc = roc;
            self.s_l = index as u16;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The obvious model: the set of accepted indices and the highest one.
    #[derive(Default)]
    struct Model {
        seen: std::collections::BTreeSet<u64>,
        top: Option<u64>,
    }

    impl Model {
        fn check(&self, index: u64, size: u64) -> Result<(), SrtpError> {
            match self.top {
                None => Ok(()),
                Some(top) if index > top => Ok(()),
                Some(top) if top - index >= size => Err(SrtpError::TooOld),
                Some(_) if self.seen.contains(&index) => Err(SrtpError::Replayed),
                Some(_) => Ok(()),
            }
        }
        fn commit(&mut self, index: u64) {
            self.seen.insert(index);
            self.top = Some(self.top.map_or(index, |t| t.max(index)));
        }
    }

    #[test]
    fn default_windows_live_inside_their_owner() {
        // 64 and 128 (the relay's default) need no heap block of their own; larger ones do.
        for (size, inline) in [(64, true), (128, true), (129, false), (1024, false)] {
            let mut w = ReplayWindow::new(size);
            w.commit(1000);
            assert_eq!(!w.bits.spilled(), inline, "window of {size}");
        }
    }

    proptest! {
        #[test]
        fn window_matches_model(size in prop_oneof![Just(64u32), Just(128), Just(200), Just(1024)],
                                steps in proptest::collection::vec((0u64..3000, any::<bool>()), 1..400)) {
            let mut w = ReplayWindow::new(size);
            let real_size = u64::from(w.size());
            let mut m = Model::default();
            let mut base = 0u64;
            for (delta, forward) in steps {
                // Mostly forward motion with jitter backwards, as real streams do.
                let index = if forward { base + delta % 300 } else { base.saturating_sub(delta) };
                base = base.max(index);
                let got = w.check(index);
                prop_assert_eq!(got, m.check(index, real_size), "index {}", index);
                if got.is_ok() {
                    w.commit(index);
                    m.commit(index);
                }
            }
        }

        #[test]
        fn estimation_recovers_the_true_index(start in 0u64..(1 << 20),
                                              jumps in proptest::collection::vec(-3000i64..3000, 1..300)) {
            // Any packet within 2^15 of the highest index is estimated exactly.
            let mut idx = RtpIndex::new(128);
            let mut highest = start;
            // A stream first seen mid-way (as after a re-INVITE that kept the key).
            idx.commit((start >> 16) as u32, start);
            for j in jumps {
                let truth = (highest as i64 + j).max(0) as u64;
                let (roc, est) = idx.estimate((truth & 0xffff) as u16).unwrap();
                prop_assert_eq!(est, truth);
                prop_assert_eq!(u64::from(roc), truth >> 16);
                if idx.window.check(est).is_ok() {
                    idx.commit(roc, est);
                }
                highest = highest.max(truth);
            }
        }
    }

    #[test]
    fn wrap_in_both_directions() {
        let mut idx = RtpIndex::new(128);
        for seq in [65_530u16, 65_535] {
            let (roc, i) = idx.estimate(seq).unwrap();
            idx.commit(roc, i);
        }
        // Forward across the wrap.
        let (roc, i) = idx.estimate(2).unwrap();
        assert_eq!((roc, i), (1, 0x1_0002));
        idx.commit(roc, i);
        // A late packet from before the wrap still gets ROC 0.
        assert_eq!(idx.estimate(65_533).unwrap(), (0, 65_533));
        assert_eq!(idx.window.check(65_533), Ok(()));
        assert_eq!(idx.window.check(65_535), Err(SrtpError::Replayed));
        // A packet from before ROC 0 cannot exist.
        let fresh = {
            let mut f = RtpIndex::new(128);
            f.commit(0, 10);
            f
        };
        assert_eq!(fresh.estimate(65_000), Err(SrtpError::TooOld));
    }
}
