use std::fmt;

/// Why a packet was not protected or unprotected. Small and `Copy`: the data plane keeps one
/// drop counter per variant ([`SrtpError::index`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpError {
    /// Shorter than its fixed header plus trailer (tag, MKI, SRTCP index).
    Truncated,
    /// RTP/RTCP version is not 2.
    BadVersion,
    /// CSRC list or header extension runs past the packet.
    BadHeader,
    /// The authentication tag did not verify.
    AuthFailed,
    /// The packet index was already accepted.
    Replayed,
    /// The packet index is below the replay window (or before the stream began).
    TooOld,
    /// The MKI in the packet is not this context's.
    MkiMismatch,
    /// No room in the buffer for the tag (and MKI, SRTCP index).
    BufferTooSmall,
    /// The master key reached its lifetime (or the index space ran out): re-key.
    KeyExpired,
}

impl SrtpError {
    /// Every variant, in [`SrtpError::index`] order.
    pub const ALL: [SrtpError; 9] = [
        SrtpError::Truncated,
        SrtpError::BadVersion,
        SrtpError::BadHeader,
        SrtpError::AuthFailed,
        SrtpError::Replayed,
        SrtpError::TooOld,
        SrtpError::MkiMismatch,
        SrtpError::BufferTooSmall,
        SrtpError::KeyExpired,
    ];

    /// A dense index for per-reason counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short name for counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            SrtpError::Truncated => "truncated",
            SrtpError::BadVersion => "bad_version",
            SrtpError::BadHeader => "bad_header",
            SrtpError::AuthFailed => "auth_failed",
            SrtpError::Replayed => "replayed",
            SrtpError::TooOld => "too_old",
            SrtpError::MkiMismatch => "mki_mismatch",
            SrtpError::BufferTooSmall => "buffer_too_small",
            SrtpError::KeyExpired => "key_expired",
        }
    }
}

impl fmt::Display for SrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for SrtpError {}
