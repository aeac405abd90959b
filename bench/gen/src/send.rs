//! The send side: for each stream, the next RTP packet with the generator's stamp, protected
//! with the key the relay receives with, at a codec's size and clock.

use relay_srtp::{staged_tags, Context, ContextConfig, SrtpError, StagedRtp};

use crate::stamp::{Stamp, StampError, LEN};
use crate::streams::StreamPlan;

/// A payload size and clock the generator sends at (one packet per 20 ms unless flat out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// G.711 (PCMU), 20 ms: 160 bytes, payload type 0, 8 kHz.
    G711,
    /// G.722, 20 ms: 160 bytes, payload type 9, RTP clock 8 kHz (RFC 3551 section 4.5.2).
    G722,
    /// Opus at about 40 kbit/s, 20 ms: 100 bytes, payload type 111, 48 kHz.
    Opus,
    /// Video-sized: 1,200 bytes, payload type 96, 90 kHz, 33 ms.
    Video,
}

impl Codec {
    /// Payload bytes per packet.
    pub fn payload_len(self) -> usize {
        match self {
            Codec::G711 | Codec::G722 => 160,
            Codec::Opus => 100,
            Codec::Video => 1200,
        }
    }

    fn payload_type(self) -> u8 {
        match self {
            Codec::G711 => 0,
            Codec::G722 => 9,
            Codec::Opus => 111,
            Codec::Video => 96,
        }
    }

    /// RTP timestamp units per packet.
    fn ts_step(self) -> u32 {
        match self {
            Codec::G711 | Codec::G722 => 160,
            Codec::Opus => 960,
            Codec::Video => 3000,
        }
    }
}

/// Why a packet could not be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SendError {
    /// The output buffer is too small for the packet and its tag.
    #[error("output buffer of {0} bytes is too small")]
    BufferTooSmall(usize),
    /// No such stream in the plan.
    #[error("no stream {0}")]
    NoStream(usize),
    /// The stamp does not fit the payload.
    #[error(transparent)]
    Stamp(#[from] StampError),
    /// Protection failed (the key's lifetime is over).
    #[error("SRTP: {0:?}")]
    Srtp(SrtpError),
}

struct TxStream {
    context: Option<Context>,
    ssrc: u32,
    next: u64,
}

/// The send side of a run.
pub struct Sender {
    codec: Codec,
    streams: Vec<TxStream>,
    sent: u64,
}

/// RTP header bytes the generator writes (no CSRCs, no extension).
const RTP_HEADER: usize = 12;

impl Sender {
    /// A sender for the streams of a plan.
    pub fn new(plans: &[StreamPlan], codec: Codec) -> Sender {
        Sender::with_ssrc_seed(plans, codec, 0)
    }

    /// [`Sender::new`] with the streams' SSRCs derived from `seed`: a generator started
    /// again against a relay that still holds its streams must send under new SSRCs (the
    /// old ones' sequence numbers would be replays, rightly dropped), as a restarted
    /// endpoint does.
    pub fn with_ssrc_seed(plans: &[StreamPlan], codec: Codec, seed: u32) -> Sender {
        let streams = plans
            .iter()
            .enumerate()
            .map(|(i, p)| TxStream {
                context: p
                    .send_key
                    .as_ref()
                    .map(|k| Context::new(k, ContextConfig::default())),
                // Distinct per stream, and recognisable in a capture.
                ssrc: (0x5247_0000 ^ seed) ^ (i as u32).wrapping_mul(0x9e37_79b9),
                next: 0,
            })
            .collect();
        Sender {
            codec,
            streams,
            sent: 0,
        }
    }

    /// Bytes [`Sender::next`] needs at most per packet (header, payload, tag and MKI).
    pub fn max_packet_len(&self) -> usize {
        RTP_HEADER + self.codec.payload_len() + 16 + 4
    }

    /// Writes stream `stream`'s next packet, stamped with `now_ns`, into `out`; returns its
    /// length.
    pub fn next(&mut self, stream: usize, now_ns: u64, out: &mut [u8]) -> Result<usize, SendError> {
        let plain = self.write_plain(stream, now_ns, out)?;
        let s = &mut self.streams[stream];
        let len = match &mut s.context {
            Some(ctx) => ctx.protect_rtp(out, plain).map_err(SendError::Srtp)?,
            None => plain,
        };
        s.next += 1;
        self.sent += 1;
        Ok(len)
    }

    /// [`Sender::next`] for several packets at once, `streams[i]`'s next into `outs[i]`
    /// (lengths into `lens[i]`): the same packets, but their SRTP tags computed together
    /// (`relay_srtp::staged_tags`: 16 SHA-1 lanes where the CPU has AVX-512), as the relay
    /// computes a burst's. At most 32 packets.
    pub fn next_burst(
        &mut self,
        streams: &[usize],
        now_ns: u64,
        outs: &mut [&mut [u8]],
        lens: &mut [usize],
    ) -> Result<(), SendError> {
        const MAX: usize = 32;
        let n = streams.len().min(outs.len()).min(lens.len()).min(MAX);
        let mut staged: [Option<StagedRtp>; MAX] = [None; MAX];
        for i in 0..n {
            let stream = streams[i];
            let plain = self.write_plain(stream, now_ns, outs[i])?;
            let s = &mut self.streams[stream];
            lens[i] = match &mut s.context {
                Some(ctx) => match ctx
                    .stage_protect_rtp(outs[i], plain)
                    .map_err(SendError::Srtp)?
                {
                    Some(st) => {
                        staged[i] = Some(st);
                        0
                    }
                    // AEAD: the tag comes out of the cipher.
                    None => ctx.protect_rtp(outs[i], plain).map_err(SendError::Srtp)?,
                },
                None => plain,
            };
            s.next += 1;
            self.sent += 1;
        }
        // The staged packets with their contexts, in order (a fixed array: no allocation
        // per burst; the unused tail repeats the first entry and is not passed on).
        let mut each = (0..n).filter_map(|i| {
            let ctx = self.streams[streams[i]].context.as_ref()?;
            Some((ctx, staged[i].as_ref()?, &outs[i][..]))
        });
        let Some(first) = each.next() else {
            return Ok(());
        };
        let mut jobs = [first; MAX];
        let mut m = 1;
        for job in each {
            jobs[m] = job;
            m += 1;
        }
        let jobs = &jobs[..m];
        let mut tags = [[0u8; 20]; MAX];
        staged_tags(jobs, &mut tags[..m]);
        let mut k = 0;
        for i in 0..n {
            if let (Some(st), Some(ctx)) = (&staged[i], &self.streams[streams[i]].context) {
                lens[i] = st.finish_protect(ctx, outs[i], &tags[k]);
                k += 1;
            }
        }
        Ok(())
    }

    /// Writes stream `stream`'s next RTP packet in the clear (header, stamp, filler) into
    /// `out`; returns its length. The caller protects it and moves the stream on.
    fn write_plain(
        &mut self,
        stream: usize,
        now_ns: u64,
        out: &mut [u8],
    ) -> Result<usize, SendError> {
        let codec = self.codec;
        let max = self.max_packet_len();
        let s = self
            .streams
            .get(stream)
            .ok_or(SendError::NoStream(stream))?;
        let plain = RTP_HEADER + codec.payload_len();
        if out.len() < max {
            return Err(SendError::BufferTooSmall(out.len()));
        }
        let seq = s.next;
        out[0] = 0x80;
        out[1] = codec.payload_type();
        out[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
        out[4..8].copy_from_slice(&(seq as u32).wrapping_mul(codec.ts_step()).to_be_bytes());
        out[8..12].copy_from_slice(&s.ssrc.to_be_bytes());
        Stamp {
            stream: stream as u32,
            seq,
            sent_ns: now_ns,
        }
        .write(&mut out[RTP_HEADER..plain])?;
        debug_assert!(codec.payload_len() >= LEN);
        Ok(plain)
    }

    /// Packets made so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}
