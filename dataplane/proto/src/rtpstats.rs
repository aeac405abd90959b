//! Receive statistics of one RTP stream: loss (RFC 3550 A.1 and A.3) and interarrival jitter
//! (RFC 3550 A.8), plus counters and the time of the last packet.

const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;

/// Loss and jitter of one received RTP stream.
#[derive(Clone, Debug, Default)]
pub struct RtpReceiveStats {
    started: bool,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u64,
    transit: i64,
    /// The jitter times 16, in RTP timestamp units (RFC 3550 A.8's integer form).
    jitter_x16: u64,
}

impl RtpReceiveStats {
    /// Counts a packet with sequence number `seq` and RTP timestamp `ts` that arrived at
    /// `arrival` (in the same clock units as `ts`).
    //= https://www.rfc-editor.org/rfc/rfc3550#appendix-A.1
    //# if (udelta < MAX_DROPOUT) { /* in order, with permissible gap */
    pub fn update(&mut self, seq: u16, ts: u32, arrival: u32) {
        if !self.started {
            self.started = true;
            self.base_seq = u32::from(seq);
            self.max_seq = seq;
            self.received = 1;
            self.transit = i64::from(arrival.wrapping_sub(ts) as i32);
            return;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
        } else if udelta <= u16::MAX - MAX_MISORDER {
            // A very large jump: the source restarted; start counting again from here.
            self.base_seq = u32::from(seq);
            self.max_seq = seq;
            self.cycles = 0;
            self.received = 0;
        }
        // else: duplicate or reordered within MAX_MISORDER: counted, max unchanged.
        self.received += 1;
        //= https://www.rfc-editor.org/rfc/rfc3550#appendix-A.8
        //# s->jitter += d - ((s->jitter + 8) >> 4);
        // A.8's integer form, the estimate kept scaled by 16 against round-off:
        // no floating point on the packet path, the same estimate within rounding.
        let transit = i64::from(arrival.wrapping_sub(ts) as i32);
        let d = (transit - self.transit).unsigned_abs();
        self.transit = transit;
        self.jitter_x16 = self.jitter_x16 + d - ((self.jitter_x16 + 8) >> 4);
    }

    /// Packets expected from the highest sequence number seen (RFC 3550 A.3).
    pub fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        u64::from(self.cycles) + u64::from(self.max_seq) + 1 - u64::from(self.base_seq)
    }

    /// Packets received (duplicates included, as RFC 3550 counts them).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Cumulative packets lost (never negative here; RFC 3550 allows it to be).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> f64 {
        self.jitter_x16 as f64 / 16.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_across_the_wrap() {
        let mut s = RtpReceiveStats::default();
        for i in 0..100u32 {
            let seq = 65_500u16.wrapping_add(i as u16);
            if i % 10 == 5 {
                continue; // lost
            }
            s.update(seq, i * 160, i * 160 + 1000);
        }
        assert_eq!(s.expected(), 100);
        assert_eq!(s.lost(), 10);
        assert!(
            s.jitter() < 0.001,
            "constant transit, no jitter: {}",
            s.jitter()
        );
    }

    #[test]
    fn jitter_follows_a_8() {
        let mut s = RtpReceiveStats::default();
        // Every other packet 80 units late: |D| = 80 each time after the first.
        for i in 0..2000u32 {
            let late = if i % 2 == 1 { 80 } else { 0 };
            s.update(i as u16, i * 160, i * 160 + late);
        }
        assert!((s.jitter() - 80.0).abs() < 1.0, "{}", s.jitter());
    }

    /// The integer estimate stays within one timestamp unit of A.8's floating-point one on
    /// random arrival times.
    #[test]
    fn integer_jitter_tracks_the_floating_point_form() {
        let mut s = RtpReceiveStats::default();
        let (mut reference, mut last_transit) = (0.0f64, 0i64);
        let mut x = 0x2545_f491u32;
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Delays of up to 2,000 units, a few of them much longer.
            let late = if x.is_multiple_of(97) {
                x % 50_000
            } else {
                x % 2_000
            };
            let (ts, arrival) = (i * 160, i * 160 + late);
            s.update(i as u16, ts, arrival);
            let transit = i64::from(arrival.wrapping_sub(ts) as i32);
            if i > 0 {
                reference += ((transit - last_transit).abs() as f64 - reference) / 16.0;
            }
            last_transit = transit;
            assert!(
                (s.jitter() - reference).abs() < 1.0,
                "packet {i}: {} against {reference}",
                s.jitter()
            );
        }
    }
}
