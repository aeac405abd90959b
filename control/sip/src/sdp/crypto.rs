//! `a=crypto` (SDES, RFC 4568 section 9.1) as typed values. Key material is zeroised on
//! drop and never printed.

use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use zeroize::Zeroizing;

use super::Word;

/// Why an `a=crypto` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The fields are not `tag suite key-params [session-params]`.
    #[error("malformed crypto attribute")]
    Malformed,
    /// The tag is not 1 to 9 digits.
    #[error("bad crypto tag")]
    BadTag,
    /// The suite name is not `1*(ALPHA / DIGIT / "_")`.
    #[error("bad crypto suite")]
    BadSuite,
    /// A key method other than `inline`.
    #[error("key method not inline")]
    NotInline,
    /// More key-params than [`Crypto::MAX_KEYS`].
    #[error("too many keys")]
    TooManyKeys,
    /// The key and salt are not base64.
    #[error("key not base64")]
    BadBase64,
    /// The key and salt have the wrong length for the suite.
    #[error("wrong key length for suite")]
    WrongKeyLength,
    /// A lifetime that is not `["2^"] 1*DIGIT` within 2^48.
    #[error("bad key lifetime")]
    BadLifetime,
    /// An MKI that is not `value:length` with the value fitting in 1..=128 bytes.
    #[error("bad MKI")]
    BadMki,
    /// A session parameter that breaks its grammar (KDR, WSH, FEC_ORDER, FEC_KEY).
    #[error("bad session parameter")]
    BadSessionParam,
}

macro_rules! suites {
    ($($variant:ident => $name:literal, $len:literal;)*) => {
        /// An SRTP crypto suite.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types)]
        pub enum CryptoSuite {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
            /// A suite this crate does not know; kept so that a rewriter can drop it.
            Other(Word),
        }

        impl CryptoSuite {
            fn parse(s: &str) -> Result<CryptoSuite, CryptoError> {
                //= https://www.rfc-editor.org/rfc/rfc4568#section-9.1
                //# crypto-suite       = 1*(ALPHA / DIGIT / "_")
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(CryptoError::BadSuite);
                }
                Ok(match s {
                    $($name => CryptoSuite::$variant,)*
                    _ => CryptoSuite::Other(Word(s.to_owned())),
                })
            }

            /// The suite's name.
            pub fn name(&self) -> &str {
                match self {
                    $(CryptoSuite::$variant => $name,)*
                    CryptoSuite::Other(w) => w.as_str(),
                }
            }

            /// Bytes of master key plus master salt, for a known suite.
            pub fn key_salt_len(&self) -> Option<usize> {
                match self {
                    $(CryptoSuite::$variant => Some($len),)*
                    CryptoSuite::Other(_) => None,
                }
            }
        }
    };
}

// RFC 4568 section 6.2, RFC 6188 section 7, RFC 7714 section 14.2.
suites! {
    AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80", 30;
    AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32", 30;
    F8_128HmacSha1_80 => "F8_128_HMAC_SHA1_80", 30;
    Aes192CmHmacSha1_80 => "AES_192_CM_HMAC_SHA1_80", 38;
    Aes192CmHmacSha1_32 => "AES_192_CM_HMAC_SHA1_32", 38;
    Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80", 46;
    Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32", 46;
    AeadAes128Gcm => "AEAD_AES_128_GCM", 28;
    AeadAes256Gcm => "AEAD_AES_256_GCM", 44;
}

/// Master key and salt, concatenated. Zeroised on drop; `Debug` shows the length only.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySalt(Zeroizing<Vec<u8>>);

impl KeySalt {
    /// Longest key and salt accepted (the longest known suite needs 46).
    pub const MAX_LEN: usize = 64;

    /// Wraps key material.
    pub fn new(bytes: Vec<u8>) -> KeySalt {
        KeySalt(Zeroizing::new(bytes))
    }

    /// The key and salt bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeySalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySalt(<redacted {} bytes>)", self.0.len())
    }
}

/// A key's lifetime, in the form it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lifetime {
    /// `2^n` packets.
    PowerOfTwo(u8),
    /// A packet count in decimal.
    Packets(u64),
}

/// A master key identifier: its value and its length in bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mki {
    /// The MKI value.
    pub value: u64,
    /// Its length in bytes, 1 to 128.
    pub len: u8,
}

/// One `inline:` key-param.
///
//= https://www.rfc-editor.org/rfc/rfc4568#section-9.2
//# srtp-key-info      = key-salt ["|" lifetime] ["|" mki]
//# key-salt           = 1*(base64)   ; binary key and salt values
//#                                   ; concatenated together, and then
//#                                   ; base64 encoded [section 3 of
//#                                   ; RFC3548
//# lifetime           = ["2^"] 1*(DIGIT)   ; see section 6.1 for "2^"
//# mki                = mki-value ":" mki-length
//# mki-value          = 1*DIGIT
//# mki-length         = 1*3DIGIT   ; range 1..128.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyParam {
    /// Master key and salt.
    pub key_salt: KeySalt,
    /// Key lifetime.
    pub lifetime: Option<Lifetime>,
    /// Master key identifier.
    pub mki: Option<Mki>,
}

const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl KeyParam {
    fn parse(s: &str) -> Result<KeyParam, CryptoError> {
        let (method, info) = s.split_once(':').ok_or(CryptoError::Malformed)?;
        //= https://www.rfc-editor.org/rfc/rfc4568#section-6.1
        //# The "inline" key method is the only key method defined here
        if !method.eq_ignore_ascii_case("inline") {
            return Err(CryptoError::NotInline);
        }
        let mut parts = info.split('|');
        let b64 = parts.next().unwrap_or_default();
        if b64.is_empty() || b64.len() > KeySalt::MAX_LEN.div_ceil(3) * 4 {
            return Err(CryptoError::BadBase64);
        }
        let key_salt = KeySalt::new(B64.decode(b64).map_err(|_| CryptoError::BadBase64)?);
        let (mut lifetime, mut mki) = (None, None);
        for part in parts {
            if mki.is_some() {
                return Err(CryptoError::Malformed);
            }
            if let Some((v, l)) = part.split_once(':') {
                mki = Some(parse_mki(v, l)?);
            } else if lifetime.is_none() {
                lifetime = Some(parse_lifetime(part)?);
            } else {
                return Err(CryptoError::Malformed);
            }
        }
        Ok(KeyParam {
            key_salt,
            lifetime,
            mki,
        })
    }

    fn parse_list(s: &str) -> Result<Vec<KeyParam>, CryptoError> {
        //= https://www.rfc-editor.org/rfc/rfc4568#section-9.1
        //# key-params         = key-param *(";" key-param)
        let keys = s
            .split(';')
            .map(KeyParam::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.len() > Crypto::MAX_KEYS {
            return Err(CryptoError::TooManyKeys);
        }
        Ok(keys)
    }
}

fn digits(s: &str, max_len: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_lifetime(s: &str) -> Result<Lifetime, CryptoError> {
    //= https://www.rfc-editor.org/rfc/rfc3711#section-9.2
    //# For each master key, a packet counter is maintained
    // Both SRTP (2^48) and SRTCP (2^31) lifetimes are at most 2^48 for every suite here.
    const MAX_LOG2: u64 = 48;
    if let Some(n) = s.strip_prefix("2^") {
        let n = digits(n, 2)
            .filter(|&n| n <= MAX_LOG2)
            .ok_or(CryptoError::BadLifetime)?;
        Ok(Lifetime::PowerOfTwo(n as u8))
    } else {
        let n = digits(s, 15)
            .filter(|&n| n > 0 && n <= 1 << MAX_LOG2)
            .ok_or(CryptoError::BadLifetime)?;
        Ok(Lifetime::Packets(n))
    }
}

fn parse_mki(value: &str, len: &str) -> Result<Mki, CryptoError> {
    let len = digits(len, 3)
        .filter(|l| (1..=128).contains(l))
        .ok_or(CryptoError::BadMki)? as u8;
    let value = digits(value, 20).ok_or(CryptoError::BadMki)?;
    if len < 8 && value >> (8 * u32::from(len)) != 0 {
        return Err(CryptoError::BadMki);
    }
    Ok(Mki { value, len })
}

impl fmt::Display for KeyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(self.key_salt.expose()),
        );
        write!(f, "inline:{}", encoded.as_str())?;
        match self.lifetime {
            Some(Lifetime::PowerOfTwo(n)) => write!(f, "|2^{n}")?,
            Some(Lifetime::Packets(n)) => write!(f, "|{n}")?,
            None => {}
        }
        if let Some(m) = self.mki {
            write!(f, "|{}:{}", m.value, m.len)?;
        }
        Ok(())
    }
}

/// Which comes first when SRTP and FEC are combined (RFC 4568 section 6.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FecOrder {
    /// `FEC_SRTP`: FEC applied before SRTP.
    FecSrtp,
    /// `SRTP_FEC`: SRTP applied before FEC.
    SrtpFec,
}

/// An SRTP session parameter (RFC 4568 section 6.3).
///
//= https://www.rfc-editor.org/rfc/rfc4568#section-9.2
//# srtp-session-param = kdr /
//#                      "UNENCRYPTED_SRTCP" /
//#                      "UNENCRYPTED_SRTP" /
//#                      "UNAUTHENTICATED_SRTP" /
//#                      fec-order /
//#                      fec-key /
//#                      wsh /
//#                      srtp-session-extension
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionParam {
    /// `KDR=n`: key derivation rate 2^n, n in 0..=24.
    Kdr(u8),
    /// `UNENCRYPTED_SRTCP`.
    UnencryptedSrtcp,
    /// `UNENCRYPTED_SRTP`.
    UnencryptedSrtp,
    /// `UNAUTHENTICATED_SRTP`.
    UnauthenticatedSrtp,
    /// `FEC_ORDER=`.
    FecOrder(FecOrder),
    /// `FEC_KEY=`: keys for the FEC stream.
    FecKey(Vec<KeyParam>),
    /// `WSH=n`: replay window size hint, at least 64.
    Wsh(u32),
    /// Any other parameter, as written (`-` first marks it as ignorable).
    Extension(Word),
}

impl SessionParam {
    fn parse(s: &str) -> Result<SessionParam, CryptoError> {
        let bad = CryptoError::BadSessionParam;
        Ok(match s.split_once('=') {
            //# kdr                = "KDR=" 1*2(DIGIT)    ; range 0..24, power of two
            Some(("KDR", n)) => {
                SessionParam::Kdr(digits(n, 2).filter(|&n| n <= 24).ok_or(bad)? as u8)
            }
            //# fec-order          = "FEC_ORDER=" fec-type
            //# fec-type           = "FEC_SRTP" / "SRTP_FEC"
            Some(("FEC_ORDER", "FEC_SRTP")) => SessionParam::FecOrder(FecOrder::FecSrtp),
            Some(("FEC_ORDER", "SRTP_FEC")) => SessionParam::FecOrder(FecOrder::SrtpFec),
            Some(("FEC_ORDER", _)) => return Err(bad),
            //# fec-key            = "FEC_KEY=" key-params
            Some(("FEC_KEY", k)) => SessionParam::FecKey(KeyParam::parse_list(k)?),
            //# wsh                = "WSH=" 2*DIGIT       ; minimum value is 64
            Some(("WSH", n)) => SessionParam::Wsh(
                digits(n, 10)
                    .filter(|&n| (64..=u64::from(u32::MAX)).contains(&n))
                    .ok_or(bad)? as u32,
            ),
            _ => match s {
                "UNENCRYPTED_SRTCP" => SessionParam::UnencryptedSrtcp,
                "UNENCRYPTED_SRTP" => SessionParam::UnencryptedSrtp,
                "UNAUTHENTICATED_SRTP" => SessionParam::UnauthenticatedSrtp,
                //# srtp-session-extension = ["-"] 1*(VCHAR)  ;visible chars [RFC2234]
                _ => SessionParam::Extension(Word::new(s).map_err(|_| bad)?),
            },
        })
    }
}

impl fmt::Display for SessionParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionParam::Kdr(n) => write!(f, "KDR={n}"),
            SessionParam::UnencryptedSrtcp => f.write_str("UNENCRYPTED_SRTCP"),
            SessionParam::UnencryptedSrtp => f.write_str("UNENCRYPTED_SRTP"),
            SessionParam::UnauthenticatedSrtp => f.write_str("UNAUTHENTICATED_SRTP"),
            SessionParam::FecOrder(FecOrder::FecSrtp) => f.write_str("FEC_ORDER=FEC_SRTP"),
            SessionParam::FecOrder(FecOrder::SrtpFec) => f.write_str("FEC_ORDER=SRTP_FEC"),
            SessionParam::FecKey(keys) => {
                f.write_str("FEC_KEY=")?;
                write_keys(f, keys)
            }
            SessionParam::Wsh(n) => write!(f, "WSH={n}"),
            SessionParam::Extension(w) => f.write_str(w.as_str()),
        }
    }
}

fn write_keys(f: &mut fmt::Formatter<'_>, keys: &[KeyParam]) -> fmt::Result {
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            f.write_str(";")?;
        }
        write!(f, "{k}")?;
    }
    Ok(())
}

/// An `a=crypto` attribute value.
///
//= https://www.rfc-editor.org/rfc/rfc4568#section-9.1
//# a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto {
    /// The tag (1 to 9 digits), echoed by the answer.
    pub tag: u32,
    /// The crypto suite.
    pub suite: CryptoSuite,
    /// The keys, at least one.
    pub keys: Vec<KeyParam>,
    /// The session parameters, in order.
    pub session_params: Vec<SessionParam>,
}

impl Crypto {
    /// Most key-params accepted in one attribute.
    pub const MAX_KEYS: usize = 8;
    /// Most session parameters accepted in one attribute.
    pub const MAX_SESSION_PARAMS: usize = 16;

    /// Parses the value after `a=crypto:`.
    pub fn parse(value: &str) -> Result<Crypto, CryptoError> {
        let mut fields = value.split(' ');
        //# tag                = 1*9DIGIT
        let tag = fields
            .next()
            .and_then(|t| digits(t, 9))
            .ok_or(CryptoError::BadTag)? as u32;
        let suite = CryptoSuite::parse(fields.next().ok_or(CryptoError::Malformed)?)?;
        let keys = KeyParam::parse_list(fields.next().ok_or(CryptoError::Malformed)?)?;
        if let Some(want) = suite.key_salt_len() {
            for k in &keys {
                if k.key_salt.expose().len() != want {
                    return Err(CryptoError::WrongKeyLength);
                }
            }
        }
        let session_params = fields
            .map(SessionParam::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if session_params.len() > Self::MAX_SESSION_PARAMS {
            return Err(CryptoError::BadSessionParam);
        }
        Ok(Crypto {
            tag,
            suite,
            keys,
            session_params,
        })
    }

    /// The first key (the one without an MKI, or the first listed).
    pub fn key(&self) -> &KeyParam {
        &self.keys[0]
    }
}

impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.tag, self.suite.name())?;
        write_keys(f, &self.keys)?;
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_30: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn rfc4568_example() {
        //= https://www.rfc-editor.org/rfc/rfc4568#section-9.2
        //= type=test
        //# a=crypto:1 AES_CM_128_HMAC_SHA1_80
        //#     inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4
        //#     FEC_ORDER=FEC_SRTP
        let v = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_30}|2^20|1:4 FEC_ORDER=FEC_SRTP");
        let c = Crypto::parse(&v).unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(
            c.key().key_salt.expose(),
            b"YS___semctl () {\t220;}\n}\nunles"
        );
        assert_eq!(c.key().lifetime, Some(Lifetime::PowerOfTwo(20)));
        assert_eq!(c.key().mki, Some(Mki { value: 1, len: 4 }));
        assert_eq!(
            c.session_params,
            [SessionParam::FecOrder(FecOrder::FecSrtp)]
        );
        assert_eq!(c.to_string(), v);
        assert_eq!(Crypto::parse(&c.to_string()).unwrap(), c);
    }

    #[test]
    fn debug_redacts_keys() {
        let c = Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_30}")).unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("redacted 30 bytes"), "{dbg}");
        assert!(!dbg.contains("89, 83") && !dbg.contains(KEY_30), "{dbg}");
    }

    #[test]
    fn several_keys_and_params() {
        let v = format!(
            "7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_30}|1048576|1:1;inline:{KEY_30}|2:1 KDR=0 WSH=128 UNENCRYPTED_SRTCP -x-ext FEC_KEY=inline:{KEY_30}"
        );
        let c = Crypto::parse(&v).unwrap();
        assert_eq!(c.keys.len(), 2);
        assert_eq!(c.keys[0].lifetime, Some(Lifetime::Packets(1 << 20)));
        assert_eq!(c.session_params.len(), 5);
        assert_eq!(Crypto::parse(&c.to_string()).unwrap(), c);
        // Unpadded base64 (46 bytes is 62 characters) is accepted and written padded.
        let k46 = base64::engine::general_purpose::STANDARD_NO_PAD.encode([7u8; 46]);
        let c = Crypto::parse(&format!("2 AES_256_CM_HMAC_SHA1_80 inline:{k46}")).unwrap();
        assert!(c.to_string().ends_with("=="));
        let c = Crypto::parse(&format!("3 SOME_FUTURE_SUITE inline:{KEY_30}")).unwrap();
        assert!(matches!(c.suite, CryptoSuite::Other(_)));
    }

    #[test]
    fn refusals() {
        let k = format!("inline:{KEY_30}");
        for (v, e) in [
            (
                format!("x AES_CM_128_HMAC_SHA1_80 {k}"),
                CryptoError::BadTag,
            ),
            (
                format!("1234567890 AES_CM_128_HMAC_SHA1_80 {k}"),
                CryptoError::BadTag,
            ),
            (format!("1 AES-CM {k}"), CryptoError::BadSuite),
            (
                "1 AES_CM_128_HMAC_SHA1_80".to_owned(),
                CryptoError::Malformed,
            ),
            (
                format!("1  AES_CM_128_HMAC_SHA1_80 {k}"),
                CryptoError::BadSuite,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 uri:x".to_owned(),
                CryptoError::NotInline,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!".to_owned(),
                CryptoError::BadBase64,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:".to_owned(),
                CryptoError::BadBase64,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", "A".repeat(200)),
                CryptoError::BadBase64,
            ),
            (
                format!("1 AES_256_CM_HMAC_SHA1_80 {k}"),
                CryptoError::WrongKeyLength,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}|2^49"),
                CryptoError::BadLifetime,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}|0"),
                CryptoError::BadLifetime,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}|2^x"),
                CryptoError::BadLifetime,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}|1:0"),
                CryptoError::BadMki,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}|1:129"),
                CryptoError::BadMki,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}|256:1"),
                CryptoError::BadMki,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}|1:4|2^20"),
                CryptoError::Malformed,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}|2^20|2^20"),
                CryptoError::Malformed,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k} KDR=25"),
                CryptoError::BadSessionParam,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k} WSH=63"),
                CryptoError::BadSessionParam,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k} FEC_ORDER=X"),
                CryptoError::BadSessionParam,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}  KDR=1"),
                CryptoError::BadSessionParam,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {}", [k.as_str(); 9].join(";")),
                CryptoError::TooManyKeys,
            ),
        ] {
            assert_eq!(Crypto::parse(&v), Err(e), "{v}");
        }
    }
}
