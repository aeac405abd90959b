//! Master keys and their SDES form (RFC 4568 section 6.1: `inline:` key||salt, lifetime, MKI).

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Suite;

const MAX_KEY: usize = 32;
const MAX_SALT: usize = 14;

/// Why key material or an SDES attribute was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// key||salt has the wrong length for the suite.
    WrongLength {
        /// The suite's key plus salt length.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The key parameter does not start with `inline:`.
    NotInline,
    /// The key||salt is not valid base64.
    BadBase64,
    /// The lifetime is not `2^n` or a decimal number, or exceeds what the suite allows.
    BadLifetime,
    /// The MKI is not `value:length` with a length of 1 to 128 and a value that fits.
    BadMki,
    /// MKIs longer than 4 bytes are valid SDES but not supported here.
    UnsupportedMkiLength(u8),
    /// More than one key in one attribute (`;`-separated key parameters).
    MultipleKeys,
    /// The suite name is unknown (or a NULL suite, which is refused).
    UnknownSuite(String),
    /// A session parameter that weakens or changes protection in a way we refuse
    /// (`UNENCRYPTED_SRTP`, `UNAUTHENTICATED_SRTP`, a non-zero `KDR`, ...).
    RefusedParameter(String),
    /// The `a=crypto` value is not `tag suite key-params [session-params]`.
    BadAttribute,
    /// The operating system's random number generator failed.
    Rng,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::WrongLength { expected, got } => {
                write!(f, "key||salt is {got} bytes, the suite needs {expected}")
            }
            KeyError::NotInline => f.write_str("key parameter must start with \"inline:\""),
            KeyError::BadBase64 => f.write_str("key||salt is not valid base64"),
            KeyError::BadLifetime => {
                f.write_str("bad key lifetime (want 2^n or a number, at most 2^48 for SRTP)")
            }
            KeyError::BadMki => f.write_str("bad MKI (want value:length, length 1..128)"),
            KeyError::UnsupportedMkiLength(n) => {
                write!(f, "MKI of {n} bytes is not supported (at most 4)")
            }
            KeyError::MultipleKeys => {
                f.write_str("more than one master key in one crypto attribute is not supported")
            }
            KeyError::UnknownSuite(s) => write!(f, "unsupported crypto suite {s:?}"),
            KeyError::RefusedParameter(p) => write!(f, "refused SRTP session parameter {p:?}"),
            KeyError::BadAttribute => {
                f.write_str("crypto attribute is not \"tag suite inline:...\"")
            }
            KeyError::Rng => f.write_str("the system random number generator failed"),
        }
    }
}

impl std::error::Error for KeyError {}

/// A master key and master salt for one suite. Zeroised on drop; its `Debug` prints no key.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; MAX_KEY],
    salt: [u8; MAX_SALT],
    #[zeroize(skip)]
    suite: Suite,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, <redacted>)", self.suite)
    }
}

impl MasterKey {
    /// A master key from its key and salt parts.
    pub fn new(suite: Suite, key: &[u8], salt: &[u8]) -> Result<Self, KeyError> {
        let expected = suite.key_len() + suite.salt_len();
        if key.len() != suite.key_len() || salt.len() != suite.salt_len() {
            return Err(KeyError::WrongLength {
                expected,
                got: key.len() + salt.len(),
            });
        }
        let mut mk = MasterKey {
            key: [0; MAX_KEY],
            salt: [0; MAX_SALT],
            suite,
        };
        mk.key[..key.len()].copy_from_slice(key);
        mk.salt[..salt.len()].copy_from_slice(salt);
        Ok(mk)
    }

    /// A master key from key||salt, as carried in SDES.
    pub fn from_concatenated(suite: Suite, key_salt: &[u8]) -> Result<Self, KeyError> {
        let expected = suite.key_len() + suite.salt_len();
        if key_salt.len() != expected {
            return Err(KeyError::WrongLength {
                expected,
                got: key_salt.len(),
            });
        }
        let (key, salt) = key_salt.split_at(suite.key_len());
        Self::new(suite, key, salt)
    }

    /// A fresh random master key from the operating system's CSPRNG.
    pub fn random(suite: Suite) -> Result<Self, KeyError> {
        let mut mk = MasterKey {
            key: [0; MAX_KEY],
            salt: [0; MAX_SALT],
            suite,
        };
        getrandom::getrandom(&mut mk.key[..suite.key_len()]).map_err(|_| KeyError::Rng)?;
        getrandom::getrandom(&mut mk.salt[..suite.salt_len()]).map_err(|_| KeyError::Rng)?;
        Ok(mk)
    }

    /// The suite this key is for.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The master key bytes.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.suite.key_len()]
    }

    /// The master salt bytes.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..self.suite.salt_len()]
    }
}

/// A master key identifier carried in every packet (RFC 3711 section 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mki {
    /// The identifier's value.
    pub value: u32,
    /// Its length on the wire, 1 to 4 bytes.
    pub len: u8,
}

impl Mki {
    /// The MKI as it appears on the wire (big-endian, `len` bytes).
    pub fn to_bytes(self) -> ([u8; 4], usize) {
        let len = usize::from(self.len);
        let mut out = [0u8; 4];
        out[..len].copy_from_slice(&self.value.to_be_bytes()[4 - len..]);
        (out, len)
    }
}

/// The key parameters of one SDES `inline:` key: master key, optional lifetime and MKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdesKey {
    /// Master key and salt.
    pub master: MasterKey,
    /// Maximum number of packets protected with this key, as `2^n` (`|2^31`).
    pub lifetime_log2: Option<u8>,
    /// The MKI, if one is carried in packets.
    pub mki: Option<Mki>,
}

impl SdesKey {
    /// A key without lifetime or MKI.
    pub fn new(master: MasterKey) -> Self {
        SdesKey {
            master,
            lifetime_log2: None,
            mki: None,
        }
    }

    /// Parses RFC 4568 key-params: `inline:<base64 key||salt>[|lifetime][|mki:len]`.
    //= https://www.rfc-editor.org/rfc/rfc4568#section-6.1
    //# key-info = key-salt ["|" lifetime] ["|" mki]
    pub fn parse_inline(suite: Suite, params: &str) -> Result<Self, KeyError> {
        if params.contains(';') {
            return Err(KeyError::MultipleKeys);
        }
        let info = params.strip_prefix("inline:").ok_or(KeyError::NotInline)?;
        let mut parts = info.split('|');
        let b64 = parts.next().unwrap_or_default();
        let mut raw = zeroize::Zeroizing::new([0u8; 64]);
        let n = STANDARD
            .decode_slice(b64, &mut raw[..])
            .or_else(|_| STANDARD_NO_PAD.decode_slice(b64, &mut raw[..]))
            .map_err(|_| KeyError::BadBase64)?;
        let master = MasterKey::from_concatenated(suite, &raw[..n])?;

        let mut key = SdesKey::new(master);
        for part in parts {
            if part.contains(':') {
                if key.mki.is_some() {
                    return Err(KeyError::BadMki);
                }
                key.mki = Some(parse_mki(part)?);
            } else {
                if key.lifetime_log2.is_some() || key.mki.is_some() {
                    return Err(KeyError::BadLifetime);
                }
                key.lifetime_log2 = Some(parse_lifetime(part)?);
            }
        }
        Ok(key)
    }

    /// Formats as RFC 4568 key-params (padded base64), e.g. `inline:...|2^31|1:1`.
    pub fn to_inline(&self) -> String {
        let mut raw = zeroize::Zeroizing::new(Vec::with_capacity(46));
        raw.extend_from_slice(self.master.key());
        raw.extend_from_slice(self.master.salt());
        let mut out = format!("inline:{}", STANDARD.encode(&raw[..]));
        if let Some(n) = self.lifetime_log2 {
            out.push_str(&format!("|2^{n}"));
        }
        if let Some(mki) = self.mki {
            out.push_str(&format!("|{}:{}", mki.value, mki.len));
        }
        out
    }

    /// The lifetime as a packet count, if one was given.
    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime_log2.map(|n| 1u64 << n)
    }
}

fn parse_lifetime(s: &str) -> Result<u8, KeyError> {
    // RFC 3711 section 9.2: at most 2^48 SRTP packets (2^31 SRTCP) per master key.
    let log2 = if let Some(exp) = s.strip_prefix("2^") {
        exp.parse::<u8>().map_err(|_| KeyError::BadLifetime)?
    } else {
        let n: u64 = s.parse().map_err(|_| KeyError::BadLifetime)?;
        if n == 0 {
            return Err(KeyError::BadLifetime);
        }
        // Round a decimal lifetime down to a power of two: never protect more than allowed.
        63 - n.leading_zeros() as u8
    };
    if log2 > 48 {
        return Err(KeyError::BadLifetime);
    }
    Ok(log2)
}

fn parse_mki(s: &str) -> Result<Mki, KeyError> {
    let (value, len) = s.split_once(':').ok_or(KeyError::BadMki)?;
    let len: u8 = len.parse().map_err(|_| KeyError::BadMki)?;
    if !(1..=128).contains(&len) {
        return Err(KeyError::BadMki);
    }
    if len > 4 {
        return Err(KeyError::UnsupportedMkiLength(len));
    }
    let value: u32 = value.parse().map_err(|_| KeyError::BadMki)?;
    if len < 4 && value >> (8 * u32::from(len)) != 0 {
        return Err(KeyError::BadMki);
    }
    Ok(Mki { value, len })
}

/// An SDP `a=crypto` attribute value (RFC 4568 section 9.1): `tag suite key-params
/// [session-params...]`, e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:...|2^31`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The attribute's tag, echoed in the answer.
    pub tag: u32,
    /// The crypto suite.
    pub suite: Suite,
    /// The key.
    pub key: SdesKey,
    /// Replay window size from a `WSH=` session parameter, if any.
    pub window_size_hint: Option<u32>,
}

impl CryptoAttribute {
    /// Parses the value of an `a=crypto:` line (without the `a=crypto:` prefix).
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields
            .next()
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|t| *t < 1_000_000_000)
            .ok_or(KeyError::BadAttribute)?;
        let suite_name = fields.next().ok_or(KeyError::BadAttribute)?;
        let suite: Suite = suite_name
            .parse()
            .map_err(|_| KeyError::UnknownSuite(suite_name.to_owned()))?;
        let key = SdesKey::parse_inline(suite, fields.next().ok_or(KeyError::BadAttribute)?)?;
        let mut window_size_hint = None;
        for param in fields {
            match param.split_once('=') {
                Some(("WSH", n)) => {
                    // RFC 4568 section 6.3.7: at least 64.
                    let n: u32 = n
                        .parse()
                        .map_err(|_| KeyError::RefusedParameter(param.to_owned()))?;
                    if n < 64 {
                        return Err(KeyError::RefusedParameter(param.to_owned()));
                    }
                    window_size_hint = Some(n);
                }
                // Key derivation rate 0 is the only one we derive with (KDR=0 means "0").
                Some(("KDR", "0")) => {}
                Some(("FEC_ORDER", _)) | Some(("FEC_KEY", _)) => {}
                _ => return Err(KeyError::RefusedParameter(param.to_owned())),
            }
        }
        Ok(CryptoAttribute {
            tag,
            suite,
            key,
            window_size_hint,
        })
    }

    /// Formats the attribute value (without `a=crypto:`).
    pub fn to_value(&self) -> String {
        format!(
            "{} {} {}",
            self.tag,
            self.suite.name(),
            self.key.to_inline()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B64_30: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"; // RFC 4568 section 9.2

    #[test]
    fn rfc4568_example_parses() {
        //= https://www.rfc-editor.org/rfc/rfc4568#section-9.2
        //= type=test
        //# a=crypto:1 AES_CM_128_HMAC_SHA1_80
        //#     inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4
        //#     FEC_ORDER=FEC_SRTP
        let a = CryptoAttribute::parse(&format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{B64_30}|2^20|1:4 FEC_ORDER=FEC_SRTP"
        ))
        .unwrap();
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, Suite::AesCm128HmacSha1_80);
        assert_eq!(a.key.lifetime_log2, Some(20));
        assert_eq!(a.key.mki, Some(Mki { value: 1, len: 4 }));
        assert_eq!(a.key.master.key(), &b"YS___semctl () {"[..]);
        assert_eq!(
            a.to_value(),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{B64_30}|2^20|1:4")
        );
    }

    #[test]
    fn formats_with_padding_and_parses_back() {
        for suite in Suite::ALL {
            let key = SdesKey {
                master: MasterKey::random(suite).unwrap(),
                lifetime_log2: Some(31),
                mki: Some(Mki { value: 7, len: 2 }),
            };
            let s = key.to_inline();
            let b64 = s.trim_start_matches("inline:").split('|').next().unwrap();
            assert_eq!(b64.len() % 4, 0, "padded base64 for {suite}");
            assert_eq!(SdesKey::parse_inline(suite, &s).unwrap(), key);
        }
    }

    #[test]
    fn refusals() {
        let ok = format!("inline:{B64_30}");
        let s = Suite::AesCm128HmacSha1_80;
        assert_eq!(SdesKey::parse_inline(s, B64_30), Err(KeyError::NotInline));
        assert_eq!(
            SdesKey::parse_inline(s, "inline:!!!"),
            Err(KeyError::BadBase64)
        );
        assert!(matches!(
            SdesKey::parse_inline(Suite::AesCm256HmacSha1_80, &ok),
            Err(KeyError::WrongLength {
                expected: 46,
                got: 30
            })
        ));
        assert_eq!(
            SdesKey::parse_inline(s, &format!("{ok}|2^49")),
            Err(KeyError::BadLifetime)
        );
        assert_eq!(
            SdesKey::parse_inline(s, &format!("{ok}|1:0")),
            Err(KeyError::BadMki)
        );
        assert_eq!(
            SdesKey::parse_inline(s, &format!("{ok}|256:1")),
            Err(KeyError::BadMki)
        );
        assert_eq!(
            SdesKey::parse_inline(s, &format!("{ok}|1:5")),
            Err(KeyError::UnsupportedMkiLength(5))
        );
        assert_eq!(
            SdesKey::parse_inline(s, &format!("{ok};{ok}")),
            Err(KeyError::MultipleKeys)
        );
        assert_eq!(
            SdesKey::parse_inline(s, &format!("{ok}|1048576"))
                .unwrap()
                .lifetime_log2,
            Some(20)
        );
        let attr = |extra: &str| {
            CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {ok} {extra}"))
        };
        assert!(matches!(
            attr("UNENCRYPTED_SRTP"),
            Err(KeyError::RefusedParameter(_))
        ));
        assert!(matches!(
            attr("UNAUTHENTICATED_SRTP"),
            Err(KeyError::RefusedParameter(_))
        ));
        assert!(matches!(attr("KDR=24"), Err(KeyError::RefusedParameter(_))));
        assert_eq!(attr("WSH=256").unwrap().window_size_hint, Some(256));
        assert!(matches!(
            CryptoAttribute::parse(&format!("1 NULL_HMAC_SHA1_80 {ok}")),
            Err(KeyError::UnknownSuite(_))
        ));
        assert_eq!(
            CryptoAttribute::parse("x AES_CM_128_HMAC_SHA1_80"),
            Err(KeyError::BadAttribute)
        );
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let mk = MasterKey::new(Suite::AesCm128HmacSha1_80, &[0xab; 16], &[0xcd; 14]).unwrap();
        let dbg = format!("{:?} {:?}", mk, SdesKey::new(mk.clone()));
        assert!(
            !dbg.to_lowercase().contains("ab, ") && !dbg.contains("171"),
            "{dbg}"
        );
        assert!(dbg.contains("redacted"));
    }
}
