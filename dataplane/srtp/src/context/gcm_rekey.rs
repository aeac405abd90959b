//! The re-key of an SRTP packet from one AEAD_AES_GCM context to another in one pass (our
//! AES-GCM, `simd::GcmKeys::rekey`): the inbound tag checked and the payload XORed with both
//! keystreams together, the new tag computed in the same loop. The outcome is that of
//! [`Context::unprotect_rtp`] then [`Context::protect_rtp`] (RFC 7714 sections 8-9.1): the
//! same checks in the same order, and the same state changes.

use super::{gcm_rtp_iv, Context, GcmCipher, Located, Transform, GCM_TAG};
use crate::SrtpError;

/// Re-keys `buf[..len]` from `inbound` to `outbound` when both are GCM contexts with our
/// AES-GCM and the outbound side would take the packet; `None` otherwise (the caller then
/// unprotects and protects, which gives the outcome the outbound side's refusal would).
pub(super) fn rekey_rtp_gcm(
    inbound: &mut Context,
    outbound: &mut Context,
    buf: &mut [u8],
    len: usize,
) -> Option<Result<usize, SrtpError>> {
    let (
        Transform::Gcm {
            cipher: GcmCipher::Ni(keys_in),
            salt: salt_in,
        },
        Transform::Gcm {
            cipher: GcmCipher::Ni(keys_out),
            salt: salt_out,
        },
    ) = (&inbound.srtp, &outbound.srtp)
    else {
        return None;
    };
    let packet = buf.get(..len)?;
    // The inbound checks, as `unprotect_rtp` makes them (its errors are the outcome).
    let mki_in = inbound.mki_len();
    let Located {
        header,
        body_end,
        ssrc,
        seq,
        roc,
        index,
    } = match inbound.admit_srtp(packet, GCM_TAG, mki_in) {
        Ok(at) => at,
        Err(e) => return Some(Err(e)),
    };
    if !inbound.mki_matches(&packet[len - mki_in..]) {
        return Some(Err(SrtpError::MkiMismatch));
    }
    // The outbound checks `protect_rtp` would make on the `body_end` bytes of plaintext (the
    // header is the same); any refusal is left to the two-step path.
    let out_len = body_end + GCM_TAG + outbound.mki_len();
    if out_len > buf.len() || outbound.srtp_count >= outbound.srtp_limit {
        return None;
    }
    let (roc_out, index_out) = outbound.rtp_index(ssrc, seq).ok()?;

    let iv_in = gcm_rtp_iv(salt_in, ssrc, roc, seq);
    let iv_out = gcm_rtp_iv(salt_out, ssrc, roc_out, seq);
    let (aad, rest) = buf.split_at_mut(header);
    let (text, trailer) = rest.split_at_mut(body_end - header);
    let tag_in: [u8; GCM_TAG] = trailer[..GCM_TAG].try_into().expect("located");
    let Ok(tag_out) = keys_in.rekey(&iv_in, &tag_in, keys_out, &iv_out, aad, text) else {
        return Some(Err(SrtpError::AuthFailed));
    };
    // header | ciphertext | tag | MKI, as `protect_rtp` writes it.
    buf[body_end..body_end + GCM_TAG].copy_from_slice(&tag_out);
    outbound.write_mki(&mut buf[body_end + GCM_TAG..out_len]);

    let slot = inbound.slot(ssrc);
    inbound.ssrcs[slot].rtp.commit(roc, index);
    inbound.srtp_count += 1;
    let slot = outbound.slot(ssrc);
    outbound.ssrcs[slot].rtp.commit(roc_out, index_out);
    outbound.srtp_count += 1;
    Some(Ok(out_len))
}
