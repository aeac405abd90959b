//! The burst paths: many packets of one context protected or unprotected together, each
//! pass over the whole burst (plan and commit indices in order, then keystream for all
//! payloads in one run of AES calls, then the HMACs), with the same outcome as the
//! single-packet calls in order.

use crate::ct::tags_match;

use super::{be32, cm_iv, rtp_header_len, xor_block, CmCipher, Context, Transform};
use crate::hmac_sha1::HmacSha1;
use crate::SrtpError;
use aes::Block;

impl Context {
    /// Protects a burst of RTP packets: `packets[i][..lens[i]]` in place, result (new length
    /// or error) in `results[i]`. Same outcome as calling [`Context::protect_rtp`] on each in
    /// order; for AES-CM suites the keystream of the whole burst is made in one pass so AES
    /// rounds of independent packets overlap.
    pub fn protect_rtp_burst(
        &mut self,
        packets: &mut [&mut [u8]],
        lens: &[usize],
        results: &mut [Result<usize, SrtpError>],
    ) {
        let n = packets.len().min(lens.len()).min(results.len());
        if self.suite.is_aead() || n > MAX_BURST {
            for i in 0..n {
                results[i] = self.protect_rtp(packets[i], lens[i]);
            }
            return;
        }
        // Pass 1, in order: validate, estimate and commit each packet's index.
        let mut plan = [PacketPlan::default(); MAX_BURST];
        let tag_len = self.suite.srtp_tag_len();
        let mki_len = self.mki_len();
        for i in 0..n {
            results[i] = self.plan_protect(packets[i], lens[i], &mut plan[i]);
        }
        let Transform::Cm { cipher, salt, auth } = &self.srtp else {
            unreachable!("checked above")
        };
        // Pass 2: one keystream for all payloads.
        xor_keystream_burst(cipher, salt, packets, &plan[..n], results);
        // Pass 3: tags, two packets' HMACs at a time.
        let mut tags = [[0u8; 20]; MAX_BURST];
        burst_tags(auth, packets, &plan[..n], results, &mut tags);
        for i in 0..n {
            if results[i].is_err() {
                continue;
            }
            let len = plan[i].len;
            let buf = &mut *packets[i];
            let tag = tags[i];
            if let Some((bytes, l)) = self.mki() {
                buf[len..len + l].copy_from_slice(&bytes[..l]);
            }
            buf[len + mki_len..len + mki_len + tag_len].copy_from_slice(&tag[..tag_len]);
            results[i] = Ok(len + mki_len + tag_len);
        }
    }

    /// Checks one packet for protection and commits its index; fills `plan`.
    pub(super) fn plan_protect(
        &mut self,
        buf: &[u8],
        len: usize,
        plan: &mut PacketPlan,
    ) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        let header = rtp_header_len(packet)?;
        if len + self.srtp_overhead() > buf.len() {
            return Err(SrtpError::BufferTooSmall);
        }
        if self.srtp_count >= self.srtp_limit {
            return Err(SrtpError::KeyExpired);
        }
        let ssrc = be32(&buf[8..12]);
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let (roc, index) = self.rtp_index(ssrc, seq)?;
        let slot = self.slot(ssrc);
        self.ssrcs[slot].rtp.commit(roc, index);
        self.srtp_count += 1;
        *plan = PacketPlan::new(header, len, ssrc, seq, roc, index);
        Ok(len)
    }

    /// Unprotects a burst of SRTP packets in place; `results[i]` gets the RTP length or the
    /// error. Same outcome as calling [`Context::unprotect_rtp`] on each in order (a duplicate
    /// inside the burst is a replay); for AES-CM suites all tags are checked first and the
    /// keystream of the authenticated packets is made in one pass.
    pub fn unprotect_rtp_burst(
        &mut self,
        packets: &mut [&mut [u8]],
        results: &mut [Result<usize, SrtpError>],
    ) {
        let n = packets.len().min(results.len());
        if self.suite.is_aead() || n > MAX_BURST {
            for i in 0..n {
                results[i] = self.unprotect_rtp(packets[i]);
            }
            return;
        }
        let tag_len = self.suite.srtp_tag_len();
        let mki_len = self.mki_len();
        let mut plan = [PacketPlan::default(); MAX_BURST];
        // Pass 1: parse, estimate and check against the state before the burst; verify tags
        // (last, as `unprotect_rtp` does), two packets' HMACs at a time.
        for i in 0..n {
            results[i] = self.plan_unprotect(packets[i], tag_len, mki_len, &mut plan[i]);
        }
        {
            let Transform::Cm { auth, .. } = &self.srtp else {
                unreachable!("checked above")
            };
            let mut tags = [[0u8; 20]; MAX_BURST];
            burst_tags(auth, packets, &plan[..n], results, &mut tags);
            for i in 0..n {
                if results[i].is_ok() {
                    let packet = &packets[i];
                    let got = &packet[packet.len() - tag_len..];
                    if !tags_match(&tags[i][..tag_len], got) {
                        results[i] = Err(SrtpError::AuthFailed);
                    }
                }
            }
        }
        // Pass 2, in order: re-check each packet against the state its predecessors in the
        // burst left (duplicates inside the burst are replays), then commit. Errors come out
        // in the same precedence as `unprotect_rtp`: index, lifetime, MKI, tag.
        for i in 0..n {
            let p = plan[i];
            if !p.planned {
                continue;
            }
            match self.rtp_index(p.ssrc, p.seq) {
                Err(e) => results[i] = Err(e),
                Ok((roc, index)) if (roc, index) != (p.roc, p.index) => {
                    // The burst moved this SSRC across a wrap far enough to change the
                    // estimate: redo the packet alone (its bytes are still untouched).
                    plan[i].decrypt = false;
                    results[i] = self.unprotect_rtp(packets[i]);
                }
                Ok(_) if self.srtp_count >= self.srtp_limit => {
                    results[i] = Err(SrtpError::KeyExpired)
                }
                Ok(_) => {
                    if results[i].is_ok() {
                        let slot = self.slot(p.ssrc);
                        self.ssrcs[slot].rtp.commit(p.roc, p.index);
                        self.srtp_count += 1;
                    }
                }
            }
        }
        // Pass 3: decrypt what was accepted.
        let Transform::Cm { cipher, salt, .. } = &self.srtp else {
            unreachable!("checked above")
        };
        xor_keystream_burst(cipher, salt, packets, &plan[..n], results);
    }

    /// Parses one SRTP packet and checks its index against the current state (its tag is
    /// checked by the caller, with the burst's). Also the first stage of a staged packet.
    pub(super) fn plan_unprotect(
        &self,
        packet: &[u8],
        tag_len: usize,
        mki_len: usize,
        plan: &mut PacketPlan,
    ) -> Result<usize, SrtpError> {
        let at = self.locate_srtp(packet, tag_len, mki_len)?;
        let body_end = at.body_end;
        // From here on pass 2 re-checks the packet against the state the burst has reached.
        *plan = PacketPlan::new(at.header, body_end, at.ssrc, at.seq, at.roc, at.index);
        if self.srtp_count >= self.srtp_limit {
            return Err(SrtpError::KeyExpired);
        }
        if !self.mki_matches(&packet[body_end..body_end + mki_len]) {
            return Err(SrtpError::MkiMismatch);
        }
        Ok(body_end)
    }
}

/// The HMAC of each packet `i` of a burst whose `results[i]` is still `Ok`, over
/// `packets[i][..plan[i].len]` and its ROC, into `tags[i]`: two packets at a time
/// (`HmacSha1::mac2`), an odd one out alone.
fn burst_tags(
    auth: &HmacSha1,
    packets: &[&mut [u8]],
    plan: &[PacketPlan],
    results: &[Result<usize, SrtpError>],
    tags: &mut [[u8; 20]; MAX_BURST],
) {
    let mut todo = [0usize; MAX_BURST];
    let mut m = 0;
    for (i, r) in results.iter().enumerate().take(plan.len()) {
        if r.is_ok() {
            todo[m] = i;
            m += 1;
        }
    }
    if m >= 4 && HmacSha1::many_at_once() {
        let rocs: [[u8; 4]; MAX_BURST] =
            std::array::from_fn(|k| plan[todo[k.min(m.saturating_sub(1))]].roc.to_be_bytes());
        let items: [(&HmacSha1, &[u8], &[u8]); MAX_BURST] = std::array::from_fn(|k| {
            let i = todo[k.min(m - 1)];
            (auth, &packets[i][..plan[i].len], &rocs[k.min(m - 1)][..])
        });
        let mut out = [[0u8; 20]; MAX_BURST];
        HmacSha1::mac_many(&items[..m], &mut out[..m]);
        for (k, &i) in todo[..m].iter().enumerate() {
            tags[i] = out[k];
        }
        return;
    }
    let mut pairs = todo[..m].chunks_exact(2);
    for pair in &mut pairs {
        let (i, j) = (pair[0], pair[1]);
        let (ti, tj) = HmacSha1::mac2(
            auth,
            &packets[i][..plan[i].len],
            &plan[i].roc.to_be_bytes(),
            auth,
            &packets[j][..plan[j].len],
            &plan[j].roc.to_be_bytes(),
        );
        tags[i] = ti;
        tags[j] = tj;
    }
    if let [i] = *pairs.remainder() {
        tags[i] = auth.mac(&packets[i][..plan[i].len], &plan[i].roc.to_be_bytes());
    }
}

/// Re-keys a burst of SRTP packets in place (see [`rekey_rtp`](crate::rekey_rtp)): `packets[i][..lens[i]]`,
/// results in `results[i]`. Both halves use the interleaved burst paths.
pub fn rekey_rtp_burst(
    inbound: &mut Context,
    outbound: &mut Context,
    packets: &mut [&mut [u8]],
    lens: &[usize],
    results: &mut [Result<usize, SrtpError>],
) {
    let n = packets.len().min(lens.len()).min(results.len());
    if inbound.suite.is_aead() && outbound.suite.is_aead() {
        // GCM to GCM: each packet in one pass where both have our AES-GCM (`rekey_rtp`).
        for i in 0..n {
            results[i] = super::rekey_rtp(inbound, outbound, packets[i], lens[i]);
        }
        return;
    }
    for start in (0..n).step_by(MAX_BURST) {
        let end = (start + MAX_BURST).min(n);
        let (chunk, res) = (&mut packets[start..end], &mut results[start..end]);
        {
            // Unprotect sees each packet's received bytes only.
            let mut views: [&mut [u8]; MAX_BURST] = Default::default();
            for ((v, p), &len) in views
                .iter_mut()
                .zip(chunk.iter_mut())
                .zip(&lens[start..end])
            {
                let len = len.min(p.len());
                *v = &mut p[..len];
            }
            inbound.unprotect_rtp_burst(&mut views[..end - start], res);
        }
        // Gather what decrypted, protect it as one burst, and put the results back in place.
        let mut views: [&mut [u8]; MAX_BURST] = Default::default();
        let mut plain = [0usize; MAX_BURST];
        let mut at = [0usize; MAX_BURST];
        let mut ok = 0;
        for (i, (p, r)) in chunk.iter_mut().zip(res.iter()).enumerate() {
            if let Ok(len) = *r {
                views[ok] = &mut **p;
                plain[ok] = len;
                at[ok] = i;
                ok += 1;
            }
        }
        let mut out = [Ok(0); MAX_BURST];
        outbound.protect_rtp_burst(&mut views[..ok], &plain[..ok], &mut out[..ok]);
        for (&i, r) in at[..ok].iter().zip(&out[..ok]) {
            res[i] = *r;
        }
    }
}

/// Packets in one burst call of the interleaved paths.
const MAX_BURST: usize = 32;
/// Keystream blocks per AES call: enough for a whole burst of voice packets.
const BURST_BLOCKS: usize = 64;

/// What pass 1 of a burst learnt about one packet.
#[derive(Clone, Copy, Default)]
pub(super) struct PacketPlan {
    pub(super) header: usize,
    /// End of the payload (RTP length).
    pub(super) len: usize,
    pub(super) ssrc: u32,
    pub(super) seq: u16,
    pub(super) roc: u32,
    pub(super) index: u64,
    /// Pass 1 got as far as the packet index.
    planned: bool,
    /// The keystream pass should process this packet.
    decrypt: bool,
}

impl PacketPlan {
    /// A packet planned to its index, for the keystream pass.
    fn new(header: usize, len: usize, ssrc: u32, seq: u16, roc: u32, index: u64) -> Self {
        PacketPlan {
            header,
            len,
            ssrc,
            seq,
            roc,
            index,
            planned: true,
            decrypt: true,
        }
    }
}

/// XORs each accepted packet's payload with its AES-CM keystream, generating the counter
/// blocks of many packets per AES call so the rounds of independent packets pipeline.
fn xor_keystream_burst(
    cipher: &CmCipher,
    salt: &[u8; 14],
    packets: &mut [&mut [u8]],
    plan: &[PacketPlan],
    results: &[Result<usize, SrtpError>],
) {
    {
        // AES-NI: every accepted packet's keystream in one pass, XORed from the registers.
        let mut jobs: [([u8; 16], &mut [u8]); MAX_BURST] = Default::default();
        let mut k = 0;
        for ((i, p), packet) in plan.iter().enumerate().zip(packets.iter_mut()) {
            if results[i].is_ok() && p.decrypt {
                jobs[k] = (cm_iv(salt, p.ssrc, p.index), &mut packet[p.header..p.len]);
                k += 1;
            }
        }
        if cipher.xor_keystream_many(&mut jobs[..k]) {
            return;
        }
    }
    let mut blocks = [Block::default(); BURST_BLOCKS];
    // (packet, first block in `blocks`, block count) for the packets in the current batch.
    let mut batch: [(usize, usize, usize); MAX_BURST] = [(0, 0, 0); MAX_BURST];
    let mut batch_len = 0;
    let mut used = 0;
    let flush = |blocks: &mut [Block; BURST_BLOCKS],
                 used: usize,
                 batch: &[(usize, usize, usize)],
                 packets: &mut [&mut [u8]]| {
        cipher.encrypt_blocks(&mut blocks[..used]);
        for &(i, first, count) in batch {
            let p = plan[i];
            let payload = &mut packets[i][p.header..p.len];
            for (d, k) in payload.chunks_mut(16).zip(&blocks[first..first + count]) {
                xor_block(d, k);
            }
        }
    };
    for (i, p) in plan.iter().enumerate() {
        if results[i].is_err() || !p.decrypt {
            continue;
        }
        let count = (p.len - p.header).div_ceil(16);
        if count > BURST_BLOCKS {
            // A large packet: on its own, through the single-packet path.
            cipher.xor_keystream(
                &cm_iv(salt, p.ssrc, p.index),
                &mut packets[i][p.header..p.len],
            );
            continue;
        }
        if used + count > BURST_BLOCKS {
            flush(&mut blocks, used, &batch[..batch_len], packets);
            used = 0;
            batch_len = 0;
        }
        let mut counter = u128::from_be_bytes(cm_iv(salt, p.ssrc, p.index));
        for block in &mut blocks[used..used + count] {
            *block = Block::from(counter.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        batch[batch_len] = (i, used, count);
        batch_len += 1;
        used += count;
    }
    if used > 0 {
        flush(&mut blocks, used, &batch[..batch_len], packets);
    }
}
