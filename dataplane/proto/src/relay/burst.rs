//! The burst path: [`Relay::process_burst`] runs a received burst through the same stages
//! as [`Relay::process`], but splits each SRTP re-key at its HMACs so the tags of the whole
//! burst (one packet per stream, typically: many contexts) are computed together, two
//! packets at a time ([`relay_srtp::staged_tags`]), as the engine's own burst paths do for one
//! context. Outcome, bytes, counters and state equal `process` called on each frame in order
//! (tested in `tests/relay_burst.rs`): a frame that is not staged (RTCP, plain RTP, AEAD,
//! a refusal) waits for the staged frames of its own call before it. Other calls' staged
//! frames may finish after it, and a neighbour learnt from an ARP or ND frame of the burst
//! serves the burst's staged frames before it: nothing a call sees depends on either.

use relay_srtp::{finish_rekey_rtp, staged_tags, Context, StagedRtp};

use super::forward::{check_source, Admitted, Classified};
use super::prefetch::Found;
use super::{CacheHint, DropReason, NoHint, Relay, RxChecksum, Verdict};
use crate::flows::FlowRef;
use crate::wire;

/// One received frame of a burst: `frame[..len]` holds it, the rest is room to grow.
pub struct Received<'a> {
    /// The port it arrived on.
    pub port: u16,
    /// The frame and its tailroom.
    pub frame: &'a mut [u8],
    /// The frame's length.
    pub len: usize,
    /// The receiving NIC's verdict on its UDP checksum.
    pub checksum: RxChecksum,
}

impl Default for Received<'_> {
    /// An empty frame (a placeholder in a fixed array).
    fn default() -> Self {
        Received {
            port: 0,
            frame: &mut [],
            len: 0,
            checksum: RxChecksum::Unknown,
        }
    }
}

/// Frames handled per pass; longer bursts are taken in chunks of this many.
const CHUNK: usize = 32;

/// A frame waiting for its burst's tags.
struct Waiting {
    /// Its index in the chunk.
    at: usize,
    u: wire::Udp,
    flow: FlowRef,
    admitted: Admitted,
    stage: Stage,
}

/// Where a waiting packet's SRTP stands.
enum Stage {
    /// SRTP in: its tag is to be checked.
    In(StagedRtp),
    /// Plain RTP in, SRTP out: received and encrypted, its tag is to be written.
    Out(StagedRtp),
}

impl Relay {
    /// Handles a burst of received frames in place; `verdicts[i]` gets frame `i`'s verdict
    /// (only the first `min(frames, verdicts)` frames are handled). `now_ns` is the caller's
    /// monotonic clock.
    pub fn process_burst(
        &mut self,
        frames: &mut [Received<'_>],
        now_ns: u64,
        verdicts: &mut [Verdict],
    ) {
        self.process_burst_hinted(&NoHint, frames, now_ns, verdicts);
    }

    /// [`Relay::process_burst`] with the staged prefetch of [`Relay::prefetch_burst`] done
    /// first for each chunk of the burst, and the flows that prefetch finds kept: each frame's
    /// flow is looked up once, not once to prefetch and again to relay. Same outcome as
    /// `process_burst`: hints change nothing observable.
    pub fn process_burst_hinted<H: CacheHint>(
        &mut self,
        hint: &H,
        frames: &mut [Received<'_>],
        now_ns: u64,
        verdicts: &mut [Verdict],
    ) {
        let n = frames.len().min(verdicts.len());
        for (chunk, out) in frames[..n]
            .chunks_mut(CHUNK)
            .zip(verdicts.chunks_mut(CHUNK))
        {
            let found = self.stage_burst(
                hint,
                chunk.iter().map(|r| r.frame.get(..r.len).unwrap_or(&[])),
            );
            self.process_chunk(chunk, &found, now_ns, out);
        }
    }

    fn process_chunk(
        &mut self,
        frames: &mut [Received<'_>],
        found: &Found,
        now_ns: u64,
        verdicts: &mut [Verdict],
    ) {
        // Pass 1, in order: parse, answer what is not media, admit, and stage SRTP-in RTP;
        // everything else is relayed at once, after the waiting packets of its call if it
        // has any (so the order of latching, statistics and SRTP state is the frames').
        let mut waiting = std::mem::take(&mut self.scratch.waiting);
        // `waiting_media[k]`: the media pair of `waiting[k]`, side by side so that whether a
        // call has packets waiting is a scan of a few lines, not of every waiting record.
        let mut waiting_media = [0u32; CHUNK];
        for at in 0..frames.len() {
            let r = &mut frames[at];
            let (u, flow) = match self.classify(r.port, r.frame, r.len, now_ns, found[at]) {
                Classified::Done(v) => {
                    verdicts[at] = v;
                    continue;
                }
                Classified::Udp(u, flow) => (u, flow),
            };
            let call_waits = waiting_media[..waiting.len()].contains(&flow.media());
            verdicts[at] = match self.first_pass(r, &u, flow, call_waits, now_ns) {
                FirstPass::Staged(admitted, stage) => {
                    // (Within its capacity: a chunk holds at most `CHUNK` frames.)
                    waiting_media[waiting.len()] = flow.media();
                    waiting.push(Waiting {
                        at,
                        u,
                        flow,
                        admitted,
                        stage,
                    });
                    Verdict::Consumed
                }
                FirstPass::Relayed(relayed) => self.account(flow, relayed),
                FirstPass::AfterItsCall => {
                    // Its call's earlier packets first; then this one from the start, as
                    // they may have latched or moved the replay window.
                    self.finish_waiting(frames, &mut waiting, now_ns, verdicts);
                    let r = &mut frames[at];
                    let relayed = self.relay_udp(r.frame, &u, flow, now_ns, r.checksum);
                    self.account(flow, relayed)
                }
            };
        }
        self.finish_waiting(frames, &mut waiting, now_ns, verdicts);
        self.scratch.waiting = waiting;
    }

    /// Passes 2 to 5 for the staged packets `waiting` (in frame order), which it empties:
    /// their inbound tags together, each finished in order, their outbound tags together,
    /// tags and headers written.
    fn finish_waiting(
        &mut self,
        frames: &mut [Received<'_>],
        waiting: &mut Vec<Waiting>,
        now_ns: u64,
        verdicts: &mut [Verdict],
    ) {
        if waiting.is_empty() {
            return;
        }
        // Pass 2: the inbound tags, together.
        let mut tags = [[0u8; 20]; CHUNK];
        let inbound = |w: &Waiting| match w.stage {
            Stage::In(srtp) => Some(srtp),
            Stage::Out(_) => None,
        };
        self.tags(
            frames,
            waiting.iter().filter_map(|w| Some((w, inbound(w)?))),
            Side::Receive,
            &mut tags,
        );
        // Pass 3, in order: finish each inbound packet (the tag compared, index committed,
        // payload decrypted), latch and count it, and stage its outbound protection.
        let mut sending = std::mem::take(&mut self.scratch.sending);
        let mut in_tags = tags.iter();
        for (k, w) in waiting.iter().enumerate() {
            let srtp = match w.stage {
                Stage::Out(srtp) => {
                    sending.push((k, srtp));
                    continue;
                }
                Stage::In(srtp) => srtp,
            };
            let tag = in_tags.next().expect("one tag per inbound packet");
            let frame = &mut *frames[w.at].frame;
            match self.finish_inbound(frame, w, &srtp, tag, now_ns) {
                Ok(Finished::Staged(srtp)) => sending.push((k, srtp)),
                Ok(Finished::Sent(v)) => verdicts[w.at] = self.account(w.flow, Ok(v)),
                Err(reason) => verdicts[w.at] = self.account(w.flow, Err(reason)),
            }
        }
        // Pass 4: the outbound tags, together; pass 5: tags and headers written.
        self.tags(
            frames,
            sending.iter().map(|(k, srtp)| (&waiting[*k], *srtp)),
            Side::Send,
            &mut tags,
        );
        for ((k, srtp), tag) in sending.iter().zip(&tags) {
            let w = &waiting[*k];
            let frame = &mut *frames[w.at].frame;
            let sent = self.path(w.flow).and_then(|mut path| {
                let Some(ctx) = path.here.to.send.as_deref() else {
                    return Err(DropReason::UnknownFlow);
                };
                let out_len = srtp.finish_protect(ctx, &mut frame[w.u.payload..], tag);
                path.send(frame, &w.u, w.flow, w.admitted.carried_sum, out_len, now_ns)
            });
            verdicts[w.at] = self.account(w.flow, sent);
        }
        sending.clear();
        self.scratch.sending = sending;
        waiting.clear();
    }

    /// Pass 1 for a UDP packet of `flow`: admits it and, if it is RTP arriving with an
    /// AES-CM SRTP key, stages its authentication (nothing changes until it is finished);
    /// otherwise relays it at once, unless its call has packets waiting (`call_waits`).
    #[inline]
    fn first_pass(
        &mut self,
        r: &mut Received<'_>,
        u: &wire::Udp,
        flow: FlowRef,
        call_waits: bool,
        now_ns: u64,
    ) -> FirstPass {
        let mut path = match self.path(flow) {
            Ok(p) => p,
            Err(reason) => return FirstPass::Relayed(Err(reason)),
        };
        // Refusals and work other than staging wait for the call's staged packets.
        let later = |reason| {
            if call_waits {
                FirstPass::AfterItsCall
            } else {
                FirstPass::Relayed(Err(reason))
            }
        };
        let admitted = match path.admit(r.frame, u, flow, r.checksum) {
            Ok(a) => a,
            Err(reason) => return later(reason),
        };
        if !admitted.is_rtcp {
            let sends_cm = matches!(path.here.to.send.as_deref(), Some(c) if !c.suite().is_aead());
            if let Some(ctx) = path.here.from.receive.as_deref() {
                let payload = &r.frame[u.payload..u.payload + u.payload_len];
                match ctx.stage_unprotect_rtp(payload) {
                    Ok(Some(srtp)) => return FirstPass::Staged(admitted, Stage::In(srtp)),
                    Ok(None) => {}
                    Err(e) => return later(e.into()),
                }
            } else if sends_cm && !call_waits {
                // Plain RTP in, AES-CM out: all but the outbound tag now.
                let staged = path.unprotect(r.frame, u, false).and_then(|plain| {
                    path.received(r.frame, u, flow, false, plain, now_ns);
                    let Some(ctx) = path.here.to.send.as_deref_mut() else {
                        return Err(DropReason::UnknownFlow);
                    };
                    let payload = &mut r.frame[u.payload..];
                    ctx.stage_protect_rtp(payload, plain)?
                        .ok_or(DropReason::UnknownFlow)
                });
                return match staged {
                    Ok(srtp) => FirstPass::Staged(admitted, Stage::Out(srtp)),
                    Err(reason) => FirstPass::Relayed(Err(reason)),
                };
            }
        }
        if call_waits {
            return FirstPass::AfterItsCall;
        }
        FirstPass::Relayed(path.relay_admitted(r.frame, u, flow, admitted, now_ns))
    }

    /// Finishes a staged inbound packet whose tag is `tag`: source re-checked (an earlier
    /// packet of the burst may have latched), tag compared, index committed; with an AES-CM
    /// leg out, its index committed too and the payload re-keyed in one pass
    /// (`finish_rekey_rtp`), else decrypted; then latching and statistics; then the outbound
    /// tag left for the burst's (AES-CM), or the packet protected (AEAD) or left plain, and
    /// sent.
    fn finish_inbound(
        &mut self,
        frame: &mut [u8],
        w: &Waiting,
        srtp: &StagedRtp,
        tag: &[u8; 20],
        now_ns: u64,
    ) -> Result<Finished, DropReason> {
        let mut path = self.path(w.flow)?;
        check_source(&path.here.from, w.flow, &w.u)?;
        let here = &mut *path.here;
        let (Some(inbound), send) = (here.from.receive.as_deref_mut(), &mut here.to.send) else {
            return Err(DropReason::UnknownFlow);
        };
        let (plain, outbound) = match send.as_deref_mut() {
            // SRTP both ways: one call takes the payload from one key to the other.
            Some(out) => {
                let payload = &mut frame[w.u.payload..];
                let (plain, outbound) =
                    finish_rekey_rtp(inbound, srtp, tag, out, payload, w.u.payload_len)?;
                (plain, Some(outbound))
            }
            None => {
                let payload = &mut frame[w.u.payload..w.u.payload + w.u.payload_len];
                (inbound.finish_unprotect_rtp(srtp, payload, tag)?, None)
            }
        };
        path.received(frame, &w.u, w.flow, false, plain, now_ns);
        let out_len = match outbound {
            Some(outbound) => match outbound? {
                Some(srtp) => return Ok(Finished::Staged(srtp)),
                // An AEAD leg out: the payload is plain RTP now.
                None => match path.here.to.send.as_deref_mut() {
                    Some(ctx) => ctx.protect_rtp(&mut frame[w.u.payload..], plain)?,
                    None => return Err(DropReason::UnknownFlow),
                },
            },
            None => plain,
        };
        path.send(frame, &w.u, w.flow, w.admitted.carried_sum, out_len, now_ns)
            .map(Finished::Sent)
    }

    /// The HMACs of staged packets (at most `CHUNK`; each with the waiting packet it
    /// belongs to), into `tags` in the same order, with the key of the packet's context on
    /// `side` (the arriving leg's receiving context, or the leaving leg's sending one).
    fn tags<'w>(
        &self,
        frames: &[Received<'_>],
        staged: impl Iterator<Item = (&'w Waiting, StagedRtp)>,
        side: Side,
        tags: &mut [[u8; 20]; CHUNK],
    ) {
        let mut stages = [None; CHUNK];
        let mut waits: [Option<&Waiting>; CHUNK] = [None; CHUNK];
        let mut n = 0;
        for (w, srtp) in staged.take(CHUNK) {
            (stages[n], waits[n]) = (Some(srtp), Some(w));
            n += 1;
        }
        let mut jobs: [Option<(&Context, &StagedRtp, &[u8])>; CHUNK] = [None; CHUNK];
        for (k, (w, srtp)) in waits[..n].iter().zip(&stages[..n]).enumerate() {
            let (Some(w), Some(srtp)) = (w, srtp) else {
                continue;
            };
            let ctx = self
                .media
                .get(w.flow.media() as usize)
                .map(|m| &m.dirs[usize::from(w.flow.side())])
                .and_then(|d| match side {
                    Side::Receive => d.from.receive.as_deref(),
                    Side::Send => d.to.send.as_deref(),
                });
            // (Always there: contexts change only between bursts.) The staged packet knows
            // how much of its bytes is authenticated.
            if let Some(ctx) = ctx {
                jobs[k] = Some((ctx, srtp, &frames[w.at].frame[w.u.payload..]));
            }
        }
        let Some(Some(first)) = jobs.iter().find(|j| j.is_some()) else {
            return;
        };
        let jobs: [(&Context, &StagedRtp, &[u8]); CHUNK] =
            std::array::from_fn(|i| jobs[i].unwrap_or(*first));
        staged_tags(&jobs[..n], &mut tags[..n]);
    }
}

/// Which of a direction's contexts a tag is computed with.
#[derive(Clone, Copy)]
enum Side {
    /// The arriving leg's receiving context (authentication).
    Receive,
    /// The leaving leg's sending context (protection).
    Send,
}

/// The burst path's lists, kept between bursts so a burst allocates nothing.
pub(super) struct Scratch {
    /// Packets staged in pass 1, waiting for their inbound tags.
    waiting: Vec<Waiting>,
    /// Packets encrypted in pass 3, waiting for their outbound tags: (index in `waiting`,
    /// its outbound stage).
    sending: Vec<(usize, StagedRtp)>,
}

impl Scratch {
    pub(super) fn new() -> Scratch {
        Scratch {
            waiting: Vec::with_capacity(CHUNK),
            sending: Vec::with_capacity(CHUNK),
        }
    }
}

/// What pass 1 did with a UDP packet.
enum FirstPass {
    /// Staged: a tag waits for the burst's.
    Staged(Admitted, Stage),
    /// Relayed (or refused) at once.
    Relayed(Result<Verdict, DropReason>),
    /// Not staged, and its call has staged packets before it: it goes after them.
    AfterItsCall,
}

/// What became of a finished inbound packet.
enum Finished {
    /// Encrypted for the other leg, its tag to be computed with the burst's.
    Staged(StagedRtp),
    /// Sent (headers written) without an outbound tag to wait for.
    Sent(Verdict),
}
