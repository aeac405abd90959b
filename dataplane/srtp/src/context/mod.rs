//! SRTP and SRTCP crypto contexts: protect and unprotect in place (RFC 3711, 6188, 7714).

use crate::ct::tags_match;
use aes::cipher::KeyInit;
use aes::Block;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use smallvec::SmallVec;
use zeroize::Zeroizing;

use crate::hmac_sha1::HmacSha1;
use crate::kdf::{derive, Label};
use crate::replay::{ReplayWindow, RtpIndex};
use crate::simd::{AesKeys, GcmKeys};
use crate::{MasterKey, SdesKey, SrtpError, Suite};

mod burst;
mod gcm_rekey;
mod staged;
pub use burst::rekey_rtp_burst;
pub use staged::{finish_rekey_rtp, staged_tags, StagedRtp};

/// RTP fixed header length.
const RTP_HEADER: usize = 12;
/// RTCP header plus sender SSRC, the part of an SRTCP packet that is never encrypted.
const RTCP_HEADER: usize = 8;
/// The SRTCP E flag and 31-bit index.
const SRTCP_INDEX_LEN: usize = 4;
const E_FLAG: u32 = 0x8000_0000;
const GCM_TAG: usize = 16;
/// RFC 3711 section 9.2: at most 2^48 SRTP and 2^31 SRTCP packets per master key.
const MAX_SRTP_PACKETS: u64 = 1 << 48;
const MAX_SRTCP_INDEX: u32 = (1 << 31) - 1;

/// Tunables of a context.
#[derive(Clone, Debug)]
pub struct ContextConfig {
    /// Replay window size in packets (RFC 3711 section 3.3.2 requires at least 64).
    pub replay_window: u32,
    /// How many SSRCs one context tracks at once; the least recently used is forgotten when
    /// a new one authenticates.
    pub max_ssrcs: u32,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            replay_window: 128,
            max_ssrcs: 4,
        }
    }
}

/// An AES-CM suite's cipher: the key expanded once (AES-NI round keys where the CPU has
/// them, see `simd`).
type CmCipher = AesKeys;

/// An AEAD suite's cipher: our own AES-GCM where the CPU has AES-NI and PCLMULQDQ (see
/// `simd`: the hash key's powers computed once, up to 16 blocks per GHASH reduction), else
/// the `aes-gcm` crate. Boxed either way: the keys with the powers of H are 497 bytes, and
/// inline they would make every context (AES-CM ones too) that much larger.
enum GcmCipher {
    Ni(Box<GcmKeys>),
    G128(Box<Aes128Gcm>),
    G256(Box<Aes256Gcm>),
}

impl GcmCipher {
    fn new(key: &[u8]) -> Self {
        if let Some(keys) = GcmKeys::new(key) {
            return GcmCipher::Ni(Box::new(keys));
        }
        GcmCipher::portable(key)
    }

    /// The `aes-gcm` crate's implementation regardless of the CPU.
    fn portable(key: &[u8]) -> Self {
        match key.len() {
            16 => GcmCipher::G128(Box::new(Aes128Gcm::new(key.into()))),
            _ => GcmCipher::G256(Box::new(Aes256Gcm::new(key.into()))),
        }
    }

    fn encrypt(&self, iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; GCM_TAG] {
        let tag = match self {
            GcmCipher::Ni(k) => return k.seal(iv, aad, data),
            GcmCipher::G128(c) => c.encrypt_in_place_detached(iv.into(), aad, data),
            GcmCipher::G256(c) => c.encrypt_in_place_detached(iv.into(), aad, data),
        };
        // Encryption fails only for plaintexts over 2^36 bytes.
        tag.expect("packet far below the GCM length limit").into()
    }

    /// Checks the tag and decrypts in place; on failure `data` is left as it was.
    fn decrypt(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), SrtpError> {
        let ok = match self {
            GcmCipher::Ni(k) => k.open(iv, aad, data, tag).is_ok(),
            GcmCipher::G128(c) => c
                .decrypt_in_place_detached(iv.into(), aad, data, tag.into())
                .is_ok(),
            GcmCipher::G256(c) => c
                .decrypt_in_place_detached(iv.into(), aad, data, tag.into())
                .is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(SrtpError::AuthFailed)
        }
    }
}

/// The session keys of one direction of SRTP or SRTCP.
// The AES-CM variant stays inline for the same reason as `CmCipher`; GCM is boxed.
// `repr(C)`, fields in this order: the MAC state and salt sit next to the start of the key
// schedule, so a packet's keys span few cache lines (see `Context::hot_memory`).
#[allow(clippy::large_enum_variant)]
#[repr(C)]
enum Transform {
    Cm {
        auth: HmacSha1,
        salt: Zeroizing<[u8; 14]>,
        cipher: CmCipher,
    },
    Gcm {
        cipher: GcmCipher,
        salt: Zeroizing<[u8; 12]>,
    },
}

impl Transform {
    /// Derives the session keys with the given labels (RFC 3711 section 4.3).
    fn derive(master: &MasterKey, labels: [Label; 3]) -> Self {
        let suite = master.suite();
        let mut key = Zeroizing::new([0u8; 32]);
        let key = &mut key[..suite.key_len()];
        derive(master, labels[0], key);
        if suite.is_aead() {
            let mut salt = Zeroizing::new([0u8; 12]);
            derive(master, labels[2], &mut salt[..]);
            Transform::Gcm {
                cipher: GcmCipher::new(key),
                salt,
            }
        } else {
            let mut salt = Zeroizing::new([0u8; 14]);
            derive(master, labels[2], &mut salt[..]);
            let mut auth_key = Zeroizing::new([0u8; 20]);
            derive(master, labels[1], &mut auth_key[..suite.auth_key_len()]);
            Transform::Cm {
                cipher: CmCipher::new(key),
                salt,
                auth: HmacSha1::new(&auth_key[..]),
            }
        }
    }

    /// Session keys given directly, for the RFC 7714 vectors (which skip the KDF).
    #[cfg(test)]
    fn from_session_keys(key: &[u8], salt: &[u8], auth: &[u8]) -> Self {
        if salt.len() == 12 {
            let mut s = Zeroizing::new([0u8; 12]);
            s.copy_from_slice(salt);
            Transform::Gcm {
                cipher: GcmCipher::new(key),
                salt: s,
            }
        } else {
            let mut s = Zeroizing::new([0u8; 14]);
            s.copy_from_slice(salt);
            Transform::Cm {
                cipher: CmCipher::new(key),
                salt: s,
                auth: HmacSha1::new(auth),
            }
        }
    }
}

/// AES-CM IV: (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16).
//= https://www.rfc-editor.org/rfc/rfc3711#section-4.1.1
//# IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)
#[inline]
fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}

/// GCM IV for SRTP: (0x0000 || SSRC || ROC || SEQ) XOR salt.
//= https://www.rfc-editor.org/rfc/rfc7714#section-8.1
//# The 12-octet IV used by AES-GCM SRTP is formed by first concatenating
//# 2 octets of zeroes, the 4-octet SSRC, the 4-octet rollover counter
//# (ROC), and the 2-octet sequence number (SEQ).
#[inline]
fn gcm_rtp_iv(salt: &[u8; 12], ssrc: u32, roc: u32, seq: u16) -> [u8; 12] {
    let mut iv = *salt;
    for (b, s) in iv[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[6..10].iter_mut().zip(roc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[10..12].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    iv
}

/// GCM IV for SRTCP: (0x0000 || SSRC || 0x0000 || 0 || SRTCP index) XOR salt.
//= https://www.rfc-editor.org/rfc/rfc7714#section-9.1
//# The 12-octet IV used by AES-GCM SRTCP is formed by first
//# concatenating 2 octets of zeroes, the 4-octet SSRC identifier,
//# 2 octets of zeroes, a single "0" bit, and the 31-bit SRTCP index.
#[inline]
fn gcm_rtcp_iv(salt: &[u8; 12], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = *salt;
    for (b, s) in iv[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[8..12].iter_mut().zip(index.to_be_bytes()) {
        *b ^= s;
    }
    iv
}

/// The length of an RTP header with its CSRCs and extension (RFC 3550 section 5.1,
/// RFC 8285). They are authenticated but not encrypted.
#[inline]
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < RTP_HEADER {
        return Err(SrtpError::Truncated);
    }
    if packet[0] >> 6 != 2 {
        return Err(SrtpError::BadVersion);
    }
    let mut len = RTP_HEADER + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(len + 2..len + 4).ok_or(SrtpError::BadHeader)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if len > packet.len() {
        return Err(SrtpError::BadHeader);
    }
    Ok(len)
}

#[inline]
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Bytes from the start of a [`Context`] that cover its fields and the SRTP transform (MAC
/// state, salt and AES-128 key schedule inline; AES-256's and GCM's are boxed, see
/// [`Context::hot_memory`]).
const HOT_FIELDS: usize = {
    let wanted = std::mem::offset_of!(Context, srtp) + size_of::<Transform>();
    if wanted < size_of::<Context>() {
        wanted
    } else {
        size_of::<Context>()
    }
};

/// What one context remembers about one SSRC.
struct SsrcState {
    ssrc: u32,
    rtp: RtpIndex,
    rtcp: ReplayWindow,
    rtcp_tx_next: u32,
    last_used: u64,
}

/// A received SRTP packet located by [`Context::locate_srtp`].
#[derive(Clone, Copy)]
pub(super) struct Located {
    /// Where the payload starts.
    pub(super) header: usize,
    /// Where the authenticated portion ends.
    pub(super) body_end: usize,
    pub(super) ssrc: u32,
    pub(super) seq: u16,
    pub(super) roc: u32,
    pub(super) index: u64,
}

/// Where one SRTP stream of a context stands: enough to continue it in a new context with
/// the same key ([`Context::resume`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamPosition {
    /// The stream.
    pub ssrc: u32,
    /// Its rollover counter.
    pub roc: u32,
    /// The highest sequence number seen or sent.
    pub seq: u16,
    /// The next SRTCP index this context sends for it.
    pub srtcp_next: u32,
}

/// One direction's SRTP and SRTCP crypto context for a master key: inbound contexts
/// unprotect, outbound contexts protect. Session keys are derived once, at creation.
///
/// State per SSRC (rollover counter, replay windows, SRTCP index) lives inside; it changes
/// only when a packet has authenticated (unprotect) or been protected.
// `repr(C)`, hot first: what every SRTP packet reads (counters, SSRC states, the SRTP keys)
// comes before the SRTCP keys.
#[repr(C)]
pub struct Context {
    suite: Suite,
    /// The MKI's bytes and length (1 to 4; see [`Context::mki`]).
    mki: Option<([u8; 4], u8)>,
    srtp_limit: u64,
    srtp_count: u64,
    tick: u64,
    /// Inline room for one SSRC, the usual case: no allocation of its own.
    ssrcs: SmallVec<[SsrcState; 1]>,
    config: ContextConfig,
    srtp: Transform,
    /// The SRTCP keys, derived from `master` when the first RTCP packet needs them: keys are
    /// most of a stream's memory, and a stream without RTCP never pays for these.
    srtcp: Option<Box<Transform>>,
    /// The master key and salt, kept for the SRTCP keys and to tell whether a renegotiated
    /// key is this one ([`Context::is_for`]; `None` for contexts given session keys). The
    /// SDES key's MKI and lifetime are in `mki` and `srtp_limit`.
    master: Option<MasterKey>,
}

/// The MKI an SDES key's packets carry, as a context keeps it: bytes and length.
fn wire_mki(key: &SdesKey) -> Option<([u8; 4], u8)> {
    key.mki.map(|m| {
        let (bytes, len) = m.to_bytes();
        (bytes, len as u8)
    })
}

/// How many SRTP packets an SDES key may protect (RFC 3711 section 9.2: its lifetime, and
/// never more than the 48-bit index allows).
fn packet_limit(key: &SdesKey) -> u64 {
    key.lifetime()
        .map_or(MAX_SRTP_PACKETS, |l| l.min(MAX_SRTP_PACKETS))
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("suite", &self.suite)
            .field("ssrcs", &self.ssrcs.len())
            .field("keys", &"<redacted>")
            .finish()
    }
}

impl Context {
    /// A context for an SDES key (master key, lifetime, MKI).
    pub fn new(key: &SdesKey, config: ContextConfig) -> Context {
        let master = &key.master;
        let mut ctx = Context::from_transforms(
            master.suite(),
            Transform::derive(
                master,
                [Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt],
            ),
            None,
            config,
        );
        ctx.master = Some(master.clone());
        ctx.mki = wire_mki(key);
        ctx.srtp_limit = packet_limit(key);
        ctx
    }

    /// Whether this context was made for `key`: the same master key and salt, MKI and
    /// packet limit (a lifetime beyond what SRTP's 48-bit index allows limits nothing more).
    /// A holder of contexts compares a renegotiated key with it rather than keep a copy.
    /// Always false for contexts given session keys.
    pub fn is_for(&self, key: &SdesKey) -> bool {
        self.master.as_ref() == Some(&key.master)
            && self.mki == wire_mki(key)
            && self.srtp_limit == packet_limit(key)
    }

    /// A context for a bare master key with the default configuration.
    pub fn from_master(master: &MasterKey) -> Context {
        Context::new(&SdesKey::new(master.clone()), ContextConfig::default())
    }

    /// A context from session keys given directly (the RFC 7714 vectors skip the KDF).
    #[cfg(test)]
    pub(crate) fn from_session_keys(suite: Suite, key: &[u8], salt: &[u8], auth: &[u8]) -> Context {
        Context::from_transforms(
            suite,
            Transform::from_session_keys(key, salt, auth),
            Some(Box::new(Transform::from_session_keys(key, salt, auth))),
            ContextConfig::default(),
        )
    }

    /// Sets the next SRTCP index this context sends for `ssrc` (tests only).
    #[cfg(test)]
    pub(crate) fn set_srtcp_index(&mut self, ssrc: u32, index: u32) {
        let slot = self.slot(ssrc);
        self.ssrcs[slot].rtcp_tx_next = index;
    }

    /// XORs the AES-CM keystream of the SRTP session key at `iv` into `data` (tests only).
    #[cfg(test)]
    pub(crate) fn keystream_for_test(key: &[u8], iv: &[u8; 16], data: &mut [u8]) {
        CmCipher::new(key).xor_keystream(iv, data);
    }

    fn from_transforms(
        suite: Suite,
        srtp: Transform,
        srtcp: Option<Box<Transform>>,
        config: ContextConfig,
    ) -> Context {
        Context {
            suite,
            srtp,
            srtcp,
            master: None,
            mki: None,
            config,
            srtp_limit: MAX_SRTP_PACKETS,
            srtp_count: 0,
            ssrcs: SmallVec::new(),
            tick: 0,
        }
    }

    /// The context's suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Bytes `protect_rtp` adds to a packet (tag and MKI).
    pub fn srtp_overhead(&self) -> usize {
        self.suite.srtp_tag_len() + self.mki_len()
    }

    /// Bytes `protect_rtcp` adds to a packet (tag, E flag and index, MKI).
    pub fn srtcp_overhead(&self) -> usize {
        self.suite.srtcp_tag_len() + SRTCP_INDEX_LEN + self.mki_len()
    }

    /// The context's own bytes an SRTP packet reads, as (address, length), found without
    /// reading the context: its fields, then (`repr(C)`) the SRTP MAC state, salt and AES-CM
    /// key schedule. For prefetching a burst's contexts; the address is only ever a hint.
    pub fn hot_fields(&self) -> (*const u8, usize) {
        let this: *const Context = self;
        (this.cast(), HOT_FIELDS)
    }

    /// The other memory an SRTP packet reads, as (address, length) ranges: the per-SSRC
    /// states and the boxed key schedule (AES-256, GCM). Reads the context (call it once
    /// [`Context::hot_fields`] has been prefetched); the addresses are only ever hints.
    pub fn hot_memory(&self) -> [(*const u8, usize); 2] {
        let boxed: (*const u8, usize) = match &self.srtp {
            Transform::Cm { cipher, .. } => cipher.boxed_schedule(),
            Transform::Gcm { cipher, .. } => match cipher {
                GcmCipher::Ni(k) => ((&**k as *const GcmKeys).cast(), size_of::<GcmKeys>()),
                GcmCipher::G128(c) => ((&**c as *const Aes128Gcm).cast(), size_of::<Aes128Gcm>()),
                GcmCipher::G256(c) => ((&**c as *const Aes256Gcm).cast(), size_of::<Aes256Gcm>()),
            },
        };
        // The first SSRC's state is inline, among the hot fields; more spill to the heap.
        let ssrcs: (*const u8, usize) = if self.ssrcs.spilled() {
            (
                self.ssrcs.as_ptr().cast(),
                size_of_val(self.ssrcs.as_slice()),
            )
        } else {
            (std::ptr::null(), 0)
        };
        [ssrcs, boxed]
    }

    /// Where each stream of this context stands (the SSRCs it has seen), to carry the context
    /// over a restart of the process that holds it ([`Context::resume`]).
    pub fn positions(&self) -> Vec<StreamPosition> {
        self.ssrcs
            .iter()
            .filter_map(|s| {
                Some(StreamPosition {
                    ssrc: s.ssrc,
                    roc: s.rtp.roc(),
                    seq: s.rtp.highest_seq()?,
                    srtcp_next: s.rtcp_tx_next,
                })
            })
            .collect()
    }

    /// Continues stream `p.ssrc` where [`Context::positions`] left it: its rollover counter
    /// and highest sequence number (so a stream past the 16-bit wrap keeps authenticating),
    /// and the next SRTCP index it sends.
    //= https://www.rfc-editor.org/rfc/rfc3711#section-3.3.1
    //# the receiver MUST
    //# maintain the ROC and the highest received sequence number
    pub fn resume(&mut self, p: StreamPosition) {
        let slot = self.slot(p.ssrc);
        self.ssrcs[slot].rtp.resume(p.roc, p.seq);
        self.ssrcs[slot].rtcp_tx_next = p.srtcp_next.max(1);
    }

    /// Derives the SRTCP keys if this context has not yet (at its first RTCP packet). A
    /// context given session keys directly has them from the start.
    fn derive_srtcp(&mut self) -> Result<(), SrtpError> {
        if self.srtcp.is_none() {
            // (Always there when the keys are not: `Context::new` keeps it.)
            let master = self.master.as_ref().ok_or(SrtpError::KeyExpired)?;
            self.srtcp = Some(Box::new(Transform::derive(
                master,
                [Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt],
            )));
        }
        Ok(())
    }

    /// Whether the SRTCP keys have been derived yet (tests).
    #[cfg(test)]
    pub(crate) fn has_srtcp_keys(&self) -> bool {
        self.srtcp.is_some()
    }

    /// The rollover counter this context holds for `ssrc`, if it has seen it.
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        self.find(ssrc).map(|i| self.ssrcs[i].rtp.roc())
    }

    /// The MKI packets carry: its bytes and length.
    #[inline]
    fn mki(&self) -> Option<([u8; 4], usize)> {
        self.mki.map(|(bytes, len)| (bytes, usize::from(len)))
    }

    fn mki_len(&self) -> usize {
        self.mki().map_or(0, |(_, len)| len)
    }

    fn mki_matches(&self, wire: &[u8]) -> bool {
        match self.mki() {
            None => true,
            Some((bytes, len)) => wire == &bytes[..len],
        }
    }

    fn write_mki(&self, out: &mut [u8]) {
        if let Some((bytes, len)) = self.mki() {
            out[..len].copy_from_slice(&bytes[..len]);
        }
    }

    #[inline]
    fn find(&self, ssrc: u32) -> Option<usize> {
        self.ssrcs.iter().position(|s| s.ssrc == ssrc)
    }

    /// The state slot for `ssrc`, made (or taken from the least recently used SSRC) if new.
    #[inline]
    fn slot(&mut self, ssrc: u32) -> usize {
        self.tick += 1;
        let i = match self.find(ssrc) {
            Some(i) => i,
            None => self.new_slot(ssrc),
        };
        self.ssrcs[i].last_used = self.tick;
        i
    }

    /// A state slot for an SSRC not seen yet: a new one, or the least recently used one's.
    #[cold]
    fn new_slot(&mut self, ssrc: u32) -> usize {
        let fresh = SsrcState {
            ssrc,
            rtp: RtpIndex::new(self.config.replay_window),
            rtcp: ReplayWindow::new(self.config.replay_window),
            rtcp_tx_next: 1,
            last_used: 0,
        };
        if self.ssrcs.len() < self.config.max_ssrcs.max(1) as usize {
            self.ssrcs.push(fresh);
            self.ssrcs.len() - 1
        } else {
            let lru = (0..self.ssrcs.len())
                .min_by_key(|&i| self.ssrcs[i].last_used)
                .unwrap_or(0);
            self.ssrcs[lru] = fresh;
            lru
        }
    }

    /// The packet index of an SRTP packet and whether it may be accepted, without changing
    /// any state.
    #[inline]
    fn rtp_index(&self, ssrc: u32, seq: u16) -> Result<(u32, u64), SrtpError> {
        match self.find(ssrc) {
            Some(i) => {
                let st = &self.ssrcs[i].rtp;
                let (roc, index) = st.estimate(seq)?;
                st.window.check(index)?;
                Ok((roc, index))
            }
            None => Ok((0, u64::from(seq))),
        }
    }

    /// Protects the RTP packet in `buf[..len]` in place and returns the SRTP length. `buf`
    /// must have room for [`Context::srtp_overhead`] more bytes.
    ///
    /// A sequence number this context already protected is refused ([`SrtpError::Replayed`]):
    /// protecting it again would reuse keystream.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        let header = rtp_header_len(packet)?;
        let tag_len = self.suite.srtp_tag_len();
        let out_len = len + tag_len + self.mki_len();
        if out_len > buf.len() {
            return Err(SrtpError::BufferTooSmall);
        }
        if self.srtp_count >= self.srtp_limit {
            return Err(SrtpError::KeyExpired);
        }
        let ssrc = be32(&buf[8..12]);
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let (roc, index) = self.rtp_index(ssrc, seq)?;

        match &self.srtp {
            Transform::Cm { cipher, salt, auth } => {
                cipher.xor_keystream(&cm_iv(salt, ssrc, index), &mut buf[header..len]);
                //= https://www.rfc-editor.org/rfc/rfc3711#section-4.2
                //# M = Authenticated Portion || ROC
                let tag = auth.mac(&buf[..len], &roc.to_be_bytes());
                let mki_len = self.mki_len();
                self.write_mki(&mut buf[len..len + mki_len]);
                buf[len + mki_len..out_len].copy_from_slice(&tag[..tag_len]);
            }
            Transform::Gcm { cipher, salt } => {
                let iv = gcm_rtp_iv(salt, ssrc, roc, seq);
                let (aad, rest) = buf.split_at_mut(header);
                let tag = cipher.encrypt(&iv, aad, &mut rest[..len - header]);
                buf[len..len + GCM_TAG].copy_from_slice(&tag);
                self.write_mki(&mut buf[len + GCM_TAG..out_len]);
            }
        }
        let slot = self.slot(ssrc);
        self.ssrcs[slot].rtp.commit(roc, index);
        self.srtp_count += 1;
        Ok(out_len)
    }

    /// [`Context::locate_srtp`], then the key's lifetime (RFC 3711 section 3.3.1): the
    /// checks an unprotect makes before its MKI and tag.
    #[inline]
    pub(super) fn admit_srtp(
        &self,
        packet: &[u8],
        tag_len: usize,
        mki_len: usize,
    ) -> Result<Located, SrtpError> {
        let at = self.locate_srtp(packet, tag_len, mki_len)?;
        if self.srtp_count >= self.srtp_limit {
            return Err(SrtpError::KeyExpired);
        }
        Ok(at)
    }

    /// The parse every unprotect path begins with: where the header ends and the
    /// authenticated portion ends (`tag_len` and `mki_len` bytes before the end), and the
    /// packet's index estimated and checked against the replay window (RFC 3711 section
    /// 3.3, steps 1-2). Changes nothing.
    #[inline]
    pub(super) fn locate_srtp(
        &self,
        packet: &[u8],
        tag_len: usize,
        mki_len: usize,
    ) -> Result<Located, SrtpError> {
        let len = packet.len();
        if len < RTP_HEADER + tag_len + mki_len {
            return Err(SrtpError::Truncated);
        }
        let body_end = len - tag_len - mki_len;
        let header = rtp_header_len(&packet[..body_end])?;
        let ssrc = be32(&packet[8..12]);
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let (roc, index) = self.rtp_index(ssrc, seq)?;
        Ok(Located {
            header,
            body_end,
            ssrc,
            seq,
            roc,
            index,
        })
    }

    /// Authenticates and decrypts the SRTP packet `packet` in place and returns the RTP
    /// length. On any error nothing in the context has changed.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.srtp_tag_len();
        let mki_len = self.mki_len();
        let len = packet.len();
        let Located {
            header,
            body_end,
            ssrc,
            seq,
            roc,
            index,
        } = self.admit_srtp(packet, tag_len, mki_len)?;

        match &self.srtp {
            Transform::Cm { cipher, salt, auth } => {
                // header | payload | MKI | tag
                if !self.mki_matches(&packet[body_end..body_end + mki_len]) {
                    return Err(SrtpError::MkiMismatch);
                }
                let tag = auth.mac(&packet[..body_end], &roc.to_be_bytes());
                if !tags_match(&tag[..tag_len], &packet[len - tag_len..]) {
                    return Err(SrtpError::AuthFailed);
                }
                cipher.xor_keystream(&cm_iv(salt, ssrc, index), &mut packet[header..body_end]);
            }
            Transform::Gcm { cipher, salt } => {
                // header | ciphertext | tag | MKI
                if !self.mki_matches(&packet[len - mki_len..]) {
                    return Err(SrtpError::MkiMismatch);
                }
                let iv = gcm_rtp_iv(salt, ssrc, roc, seq);
                let (aad, rest) = packet.split_at_mut(header);
                let (ciphertext, trailer) = rest.split_at_mut(body_end - header);
                cipher.decrypt(&iv, aad, ciphertext, &trailer[..GCM_TAG])?;
            }
        }
        let slot = self.slot(ssrc);
        self.ssrcs[slot].rtp.commit(roc, index);
        self.srtp_count += 1;
        Ok(body_end)
    }

    /// Protects the RTCP compound packet in `buf[..len]` in place (encrypted, E=1) and
    /// returns the SRTCP length; `buf` needs [`Context::srtcp_overhead`] more bytes.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len > buf.len() {
            return Err(SrtpError::BufferTooSmall);
        }
        if len < RTCP_HEADER {
            return Err(SrtpError::Truncated);
        }
        if buf[0] >> 6 != 2 {
            return Err(SrtpError::BadVersion);
        }
        let out_len = len + self.srtcp_overhead();
        if out_len > buf.len() {
            return Err(SrtpError::BufferTooSmall);
        }
        let ssrc = be32(&buf[4..8]);
        let slot = self.slot(ssrc);
        let index = self.ssrcs[slot].rtcp_tx_next;
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::KeyExpired);
        }
        let e_index = (E_FLAG | index).to_be_bytes();
        let mki_len = self.mki_len();
        self.derive_srtcp()?;
        match self.srtcp.as_deref().ok_or(SrtpError::KeyExpired)? {
            Transform::Cm { cipher, salt, auth } => {
                // header | encrypted | E+index | MKI | tag
                cipher.xor_keystream(
                    &cm_iv(salt, ssrc, u64::from(index)),
                    &mut buf[RTCP_HEADER..len],
                );
                buf[len..len + 4].copy_from_slice(&e_index);
                let tag = auth.mac(&buf[..len + 4], &[]);
                self.write_mki(&mut buf[len + 4..len + 4 + mki_len]);
                buf[len + 4 + mki_len..out_len].copy_from_slice(&tag[..10]);
            }
            Transform::Gcm { cipher, salt } => {
                // header | ciphertext | tag | E+index | MKI
                //= https://www.rfc-editor.org/rfc/rfc7714#section-9.2
                //# the AAD is the 8-octet RTCP header followed by the 4-octet
                //# E flag and SRTCP index
                let mut aad = [0u8; RTCP_HEADER + 4];
                aad[..RTCP_HEADER].copy_from_slice(&buf[..RTCP_HEADER]);
                aad[RTCP_HEADER..].copy_from_slice(&e_index);
                let iv = gcm_rtcp_iv(salt, ssrc, index);
                let tag = cipher.encrypt(&iv, &aad, &mut buf[RTCP_HEADER..len]);
                buf[len..len + GCM_TAG].copy_from_slice(&tag);
                buf[len + GCM_TAG..len + GCM_TAG + 4].copy_from_slice(&e_index);
                self.write_mki(&mut buf[len + GCM_TAG + 4..out_len]);
            }
        }
        self.ssrcs[slot].rtcp_tx_next = index + 1;
        Ok(out_len)
    }

    /// Authenticates (and, if its E flag is set, decrypts) the SRTCP packet in place and
    /// returns the RTCP length. On any error nothing in the context has changed.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.srtcp_tag_len();
        let mki_len = self.mki_len();
        let len = packet.len();
        if len < RTCP_HEADER + SRTCP_INDEX_LEN + tag_len + mki_len {
            return Err(SrtpError::Truncated);
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::BadVersion);
        }
        let ssrc = be32(&packet[4..8]);
        let (index_at, body_end) = if self.suite.is_aead() {
            let index_at = len - mki_len - SRTCP_INDEX_LEN;
            (index_at, index_at - tag_len)
        } else {
            let index_at = len - tag_len - mki_len - SRTCP_INDEX_LEN;
            (index_at, index_at)
        };
        if body_end < RTCP_HEADER {
            return Err(SrtpError::Truncated);
        }
        let e_index = be32(&packet[index_at..index_at + 4]);
        let (encrypted, index) = (e_index & E_FLAG != 0, e_index & !E_FLAG);
        if let Some(i) = self.find(ssrc) {
            self.ssrcs[i].rtcp.check(u64::from(index))?;
        }
        self.derive_srtcp()?;
        match self.srtcp.as_deref().ok_or(SrtpError::KeyExpired)? {
            Transform::Cm { cipher, salt, auth } => {
                if !self.mki_matches(&packet[index_at + 4..index_at + 4 + mki_len]) {
                    return Err(SrtpError::MkiMismatch);
                }
                let tag = auth.mac(&packet[..index_at + 4], &[]);
                if !tags_match(&tag[..tag_len], &packet[len - tag_len..]) {
                    return Err(SrtpError::AuthFailed);
                }
                if encrypted {
                    cipher.xor_keystream(
                        &cm_iv(salt, ssrc, u64::from(index)),
                        &mut packet[RTCP_HEADER..body_end],
                    );
                }
            }
            Transform::Gcm { cipher, salt } => {
                if !self.mki_matches(&packet[len - mki_len..]) {
                    return Err(SrtpError::MkiMismatch);
                }
                let iv = gcm_rtcp_iv(salt, ssrc, index);
                if encrypted {
                    let mut aad = [0u8; RTCP_HEADER + 4];
                    aad[..RTCP_HEADER].copy_from_slice(&packet[..RTCP_HEADER]);
                    aad[RTCP_HEADER..].copy_from_slice(&e_index.to_be_bytes());
                    let (head, rest) = packet.split_at_mut(body_end);
                    cipher.decrypt(&iv, &aad, &mut head[RTCP_HEADER..], &rest[..GCM_TAG])?;
                } else {
                    // Unencrypted SRTCP: the whole packet and E+index are AAD.
                    let mut aad = [0u8; 1500];
                    let aad = aad.get_mut(..body_end + 4).ok_or(SrtpError::BadHeader)?;
                    aad[..body_end].copy_from_slice(&packet[..body_end]);
                    aad[body_end..].copy_from_slice(&e_index.to_be_bytes());
                    cipher.decrypt(&iv, aad, &mut [], &packet[body_end..body_end + GCM_TAG])?;
                }
            }
        }
        let slot = self.slot(ssrc);
        self.ssrcs[slot].rtcp.commit(u64::from(index));
        Ok(body_end)
    }
}

/// Re-keys one SRTP packet in place: unprotects with `inbound`, protects with `outbound`
/// (whose tag may be longer or shorter). `buf[..len]` holds the packet; `buf` needs room for
/// the outbound overhead. Returns the new length.
pub fn rekey_rtp(
    inbound: &mut Context,
    outbound: &mut Context,
    buf: &mut [u8],
    len: usize,
) -> Result<usize, SrtpError> {
    if let Some(done) = gcm_rekey::rekey_rtp_gcm(inbound, outbound, buf, len) {
        return done;
    }
    let plain = inbound.unprotect_rtp(buf.get_mut(..len).ok_or(SrtpError::BufferTooSmall)?)?;
    outbound.protect_rtp(buf, plain)
}

/// Re-keys one SRTCP packet in place, as [`rekey_rtp`] does for SRTP.
pub fn rekey_rtcp(
    inbound: &mut Context,
    outbound: &mut Context,
    buf: &mut [u8],
    len: usize,
) -> Result<usize, SrtpError> {
    let plain = inbound.unprotect_rtcp(buf.get_mut(..len).ok_or(SrtpError::BufferTooSmall)?)?;
    outbound.protect_rtcp(buf, plain)
}

/// XORs keystream block `k` into `d` (16 bytes, or fewer at a payload's end): a whole block
/// as one 128-bit word, not byte by byte.
#[inline(always)]
fn xor_block(d: &mut [u8], k: &Block) {
    if let Ok(whole) = <&mut [u8; 16]>::try_from(&mut *d) {
        let x = u128::from_ne_bytes(*whole) ^ u128::from_ne_bytes((*k).into());
        *whole = x.to_ne_bytes();
    } else {
        for (d, k) in d.iter_mut().zip(k) {
            *d ^= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SRTCP keys are derived at the first RTCP packet, not at creation, and then work both
    /// ways (the SRTCP vectors and libsrtp interop cover their values).
    #[test]
    fn srtcp_keys_are_derived_at_the_first_rtcp_packet() {
        let master = MasterKey::new(Suite::AesCm128HmacSha1_80, &[7; 16], &[9; 14]).unwrap();
        let (mut tx, mut rx) = (Context::from_master(&master), Context::from_master(&master));
        assert!(!tx.has_srtcp_keys() && !rx.has_srtcp_keys());
        let mut rtp = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4];
        rtp.resize(64, 0);
        let n = tx.protect_rtp(&mut rtp, 16).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut rtp[..n]), Ok(16));
        assert!(
            !tx.has_srtcp_keys() && !rx.has_srtcp_keys(),
            "RTP needs no SRTCP keys"
        );
        // A receiver report with one report block: the header stays clear, the rest is
        // encrypted.
        let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 5];
        rr.extend((0u8..24).map(|i| i * 3));
        let mut buf = rr.clone();
        buf.resize(64, 0);
        let n = tx.protect_rtcp(&mut buf, rr.len()).unwrap();
        assert!(tx.has_srtcp_keys());
        assert_ne!(buf[8..rr.len()], rr[8..], "encrypted");
        assert_eq!(rx.unprotect_rtcp(&mut buf[..n]), Ok(rr.len()));
        assert!(rx.has_srtcp_keys());
        assert_eq!(buf[..rr.len()], rr[..]);
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// A context is most of an SRTP stream's memory (issue 14); growing it should be a
    /// decision, not an accident. The first SSRC's state, replay windows included, is inline.
    #[test]
    fn context_stays_compact() {
        assert!(
            size_of::<Context>() <= 440,
            "Context: {} bytes",
            size_of::<Context>()
        );
        assert!(
            size_of::<SsrcState>() <= 88,
            "SsrcState: {} bytes",
            size_of::<SsrcState>()
        );
    }
}
