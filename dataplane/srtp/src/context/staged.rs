//! Staged single packets: one RTP packet's SRTP work split at its HMAC, so a caller holding
//! packets of *many* contexts (a relay's burst, one packet per stream) can compute all their
//! tags together with [`staged_tags`], two packets at a time, as the per-context burst paths
//! do for one context.
//!
//! Unprotect: [`Context::stage_unprotect_rtp`] (parse, index, lifetime, MKI; nothing changed),
//! then [`staged_tags`], then [`Context::finish_unprotect_rtp`] (re-check against the state
//! reached meanwhile, compare the tag, commit, decrypt). Protect:
//! [`Context::stage_protect_rtp`] (commit the index, encrypt), then [`staged_tags`], then
//! [`StagedRtp::finish_protect`] (write MKI and tag). A staged packet holds no key: the tags
//! are computed with the context that staged it, passed beside it. The outcome is that of
//! [`Context::unprotect_rtp`] / [`Context::protect_rtp`] called in the order of the finishing
//! calls. AEAD suites are not staged (the stage calls answer `Ok(None)`): their tag comes out
//! of the cipher, so the caller uses the single-packet call.

use crate::ct::tags_match;

use super::burst::PacketPlan;
use super::{cm_iv, Context, Transform};
use crate::hmac_sha1::HmacSha1;
use crate::SrtpError;

/// One RTP packet between its stages: where its authenticated portion ends and its index.
/// No key material.
#[derive(Clone, Copy)]
pub struct StagedRtp {
    /// Authenticated portion: `packet[..body_end]`, followed by the ROC.
    body_end: usize,
    /// Where the payload starts.
    header: usize,
    /// The packet index, `2^16 * ROC + SEQ` (RFC 3711 section 3.3.1): both are read from it,
    /// so the record stays small (the relay moves one per packet through its burst).
    index: u64,
    ssrc: u32,
    tag_len: u8,
}

impl std::fmt::Debug for StagedRtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedRtp")
            .field("ssrc", &self.ssrc)
            .field("seq", &self.seq())
            .finish_non_exhaustive()
    }
}

/// The HMAC of each staged packet: `tags[i]` for `staged[i] = (context, packet, bytes)`,
/// computed with the key of the context that staged it, over its authenticated portion of
/// `bytes` and its ROC; two packets at a time (`HmacSha1::mac2`), an odd one out alone. (A
/// context of an AEAD suite, which stages nothing, gives an all-zero tag.)
pub fn staged_tags(staged: &[(&Context, &StagedRtp, &[u8])], tags: &mut [[u8; 20]]) {
    fn auth(ctx: &Context) -> Option<&HmacSha1> {
        match &ctx.srtp {
            Transform::Cm { auth, .. } => Some(auth),
            Transform::Gcm { .. } => None,
        }
    }
    let n = staged.len().min(tags.len());
    if n >= 4 && HmacSha1::many_at_once() && staged[..n].iter().all(|(c, ..)| auth(c).is_some()) {
        const MAX: usize = 32;
        for (chunk, tags) in staged[..n].chunks(MAX).zip(tags.chunks_mut(MAX)) {
            let rocs: [[u8; 4]; MAX] =
                std::array::from_fn(|k| chunk[k.min(chunk.len() - 1)].1.roc().to_be_bytes());
            let items: [(&HmacSha1, &[u8], &[u8]); MAX] = std::array::from_fn(|k| {
                let k = k.min(chunk.len() - 1);
                let (c, a, p) = chunk[k];
                (
                    auth(c).expect("checked above"),
                    &p[..a.body_end],
                    &rocs[k][..],
                )
            });
            HmacSha1::mac_many(&items[..chunk.len()], tags);
        }
        return;
    }
    let mut i = 0;
    while i + 1 < n {
        let ((ca, a, pa), (cb, b, pb)) = (staged[i], staged[i + 1]);
        let (ta, tb) = match (auth(ca), auth(cb)) {
            (Some(ka), Some(kb)) => HmacSha1::mac2(
                ka,
                &pa[..a.body_end],
                &a.roc().to_be_bytes(),
                kb,
                &pb[..b.body_end],
                &b.roc().to_be_bytes(),
            ),
            (ka, kb) => (
                ka.map_or([0; 20], |k| {
                    k.mac(&pa[..a.body_end], &a.roc().to_be_bytes())
                }),
                kb.map_or([0; 20], |k| {
                    k.mac(&pb[..b.body_end], &b.roc().to_be_bytes())
                }),
            ),
        };
        tags[i] = ta;
        tags[i + 1] = tb;
        i += 2;
    }
    if i < n {
        let (c, a, p) = staged[i];
        tags[i] = auth(c).map_or([0; 20], |k| k.mac(&p[..a.body_end], &a.roc().to_be_bytes()));
    }
}

impl StagedRtp {
    /// The rollover counter the packet's tag covers.
    #[inline]
    fn roc(&self) -> u32 {
        (self.index >> 16) as u32
    }

    /// The packet's sequence number.
    #[inline]
    fn seq(&self) -> u16 {
        self.index as u16
    }

    /// Completes a staged protect: writes the MKI and the first bytes of `tag` (from
    /// [`staged_tags`]) after the packet, returns the SRTP length.
    pub fn finish_protect(&self, ctx: &Context, buf: &mut [u8], tag: &[u8; 20]) -> usize {
        let len = self.body_end;
        let mki_len = ctx.mki_len();
        ctx.write_mki(&mut buf[len..len + mki_len]);
        let tag_len = usize::from(self.tag_len);
        buf[len + mki_len..len + mki_len + tag_len].copy_from_slice(&tag[..tag_len]);
        len + mki_len + tag_len
    }
}

impl Context {
    /// First stage of [`Context::unprotect_rtp`]: parses `packet`, estimates its index and
    /// checks it, the key's lifetime and the MKI against the current state; changes nothing.
    /// `Ok(None)` for AEAD suites (use `unprotect_rtp`).
    #[inline]
    pub fn stage_unprotect_rtp(&self, packet: &[u8]) -> Result<Option<StagedRtp>, SrtpError> {
        if self.suite.is_aead() {
            return Ok(None);
        }
        let tag_len = self.suite.srtp_tag_len();
        // The burst path's parse and checks, in `unprotect_rtp`'s order.
        let mut plan = PacketPlan::default();
        let body_end = self.plan_unprotect(packet, tag_len, self.mki_len(), &mut plan)?;
        Ok(Some(StagedRtp {
            body_end,
            header: plan.header,
            index: plan.index,
            ssrc: plan.ssrc,
            tag_len: tag_len as u8,
        }))
    }

    /// Last stage of [`Context::unprotect_rtp`] for a packet staged by this context, `tag`
    /// its HMAC from [`staged_tags`]: re-checks the index against the state the packets
    /// finished since have left (a duplicate among them is a replay), compares the tag in
    /// constant time, commits and decrypts. Returns the RTP length; on an error nothing has
    /// changed. Errors in `unprotect_rtp`'s precedence: index, lifetime, tag.
    pub fn finish_unprotect_rtp(
        &mut self,
        staged: &StagedRtp,
        packet: &mut [u8],
        tag: &[u8; 20],
    ) -> Result<usize, SrtpError> {
        let (roc, index) = self.rtp_index(staged.ssrc, staged.seq())?;
        if index != staged.index {
            // (The index holds the ROC.) Packets finished since moved this SSRC's estimate (across a wrap): the tag was
            // made with another ROC. Redo the packet alone; its bytes are still untouched.
            return self.unprotect_rtp(packet);
        }
        if self.srtp_count >= self.srtp_limit {
            return Err(SrtpError::KeyExpired);
        }
        let len = packet.len();
        let tag_len = usize::from(staged.tag_len);
        if len < tag_len || !tags_match(&tag[..tag_len], &packet[len - tag_len..]) {
            return Err(SrtpError::AuthFailed);
        }
        let Transform::Cm { cipher, salt, .. } = &self.srtp else {
            unreachable!("staged packets are AES-CM")
        };
        cipher.xor_keystream(
            &cm_iv(salt, staged.ssrc, index),
            &mut packet[staged.header..staged.body_end],
        );
        let slot = self.slot(staged.ssrc);
        self.ssrcs[slot].rtp.commit(roc, index);
        self.srtp_count += 1;
        Ok(staged.body_end)
    }

    /// First stage of [`Context::protect_rtp`] for `buf[..len]`: checks it, commits its index
    /// and encrypts the payload in place; its tag is then computed by [`staged_tags`] and
    /// written by [`StagedRtp::finish_protect`]. `Ok(None)` for AEAD suites (use
    /// `protect_rtp`); on an error nothing has changed.
    pub fn stage_protect_rtp(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Option<StagedRtp>, SrtpError> {
        let Some(staged) = self.plan_protect_only(buf, len)? else {
            return Ok(None);
        };
        let Transform::Cm { cipher, salt, .. } = &self.srtp else {
            unreachable!("planned only for AES-CM")
        };
        cipher.xor_keystream(
            &cm_iv(salt, staged.ssrc, staged.index),
            &mut buf[staged.header..staged.body_end],
        );
        Ok(Some(staged))
    }
}

/// [`Context::finish_unprotect_rtp`] and [`Context::stage_protect_rtp`] of one packet in one
/// go, for a relay re-keying it: the inbound tag compared and index committed, the outbound
/// index committed, and the payload taken from the inbound key's keystream to the outbound
/// key's in a single pass (ciphertext XOR both keystreams: the plaintext never exists).
///
/// `packet[..len]` is the received SRTP packet, staged by `inbound` as `staged`, its HMAC
/// `tag`; `packet` has room for the outbound overhead. Returns the RTP length and the
/// outbound outcome: `Ok(Some(stage))` (tag to be computed with [`staged_tags`]),
/// `Ok(None)` for an AEAD outbound suite (the payload is then plain RTP, to be protected
/// with [`Context::protect_rtp`]), or the outbound error (the inbound packet was accepted;
/// the payload is then unspecified). The outer error is the inbound one; nothing changed.
#[allow(clippy::type_complexity)]
#[inline]
pub fn finish_rekey_rtp(
    inbound: &mut Context,
    staged: &StagedRtp,
    tag: &[u8; 20],
    outbound: &mut Context,
    packet: &mut [u8],
    len: usize,
) -> Result<(usize, Result<Option<StagedRtp>, SrtpError>), SrtpError> {
    let (roc, index) = inbound.rtp_index(staged.ssrc, staged.seq())?;
    let received = packet.get_mut(..len).ok_or(SrtpError::BufferTooSmall)?;
    if index != staged.index {
        // As in `finish_unprotect_rtp`: redone alone, then protected as usual.
        let plain = inbound.unprotect_rtp(received)?;
        return Ok((plain, outbound.stage_protect_rtp(packet, plain)));
    }
    if inbound.srtp_count >= inbound.srtp_limit {
        return Err(SrtpError::KeyExpired);
    }
    let tag_len = usize::from(staged.tag_len);
    if len < tag_len || !tags_match(&tag[..tag_len], &received[len - tag_len..]) {
        return Err(SrtpError::AuthFailed);
    }
    let slot = inbound.slot(staged.ssrc);
    inbound.ssrcs[slot].rtp.commit(roc, index);
    inbound.srtp_count += 1;
    let plain = staged.body_end;
    let Transform::Cm {
        cipher: in_cipher,
        salt: in_salt,
        ..
    } = &inbound.srtp
    else {
        unreachable!("staged packets are AES-CM")
    };
    let in_iv = cm_iv(in_salt, staged.ssrc, index);
    let payload = staged.header..plain;
    let out = match outbound.plan_protect_only(packet, plain) {
        Err(e) => return Ok((plain, Err(e))),
        Ok(None) => {
            in_cipher.xor_keystream(&in_iv, &mut packet[payload]);
            return Ok((plain, Ok(None)));
        }
        Ok(Some(out)) => out,
    };
    let Transform::Cm {
        cipher: out_cipher,
        salt: out_salt,
        ..
    } = &outbound.srtp
    else {
        unreachable!("planned only for AES-CM")
    };
    let out_iv = cm_iv(out_salt, out.ssrc, out.index);
    in_cipher.xor_two_keystreams(&in_iv, out_cipher, &out_iv, &mut packet[payload]);
    Ok((plain, Ok(Some(out))))
}

impl Context {
    /// [`Context::stage_protect_rtp`] without the encryption: checks and commits the index of
    /// `buf[..len]` for an AES-CM suite and returns its stage (`Ok(None)` for AEAD); the
    /// caller encrypts the payload with this context's keystream at the stage's index.
    #[inline(always)]
    fn plan_protect_only(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Option<StagedRtp>, SrtpError> {
        if self.suite.is_aead() {
            return Ok(None);
        }
        // The burst path's checks and commit, in `protect_rtp`'s order.
        let mut plan = PacketPlan::default();
        self.plan_protect(buf, len, &mut plan)?;
        Ok(Some(StagedRtp {
            body_end: len,
            header: plan.header,
            index: plan.index,
            ssrc: plan.ssrc,
            tag_len: self.suite.srtp_tag_len() as u8,
        }))
    }
}
