//! The session schema (version 1): what the control plane installs in the data plane, over
//! the control socket or from a `--sessions` file. JSON, documented in `docs/sessions.md`.
//!
//! A *call* has one or more *media* pairs; each pair joins leg `a` and leg `b`. For each leg:
//! the local address the relay receives on (and sends from), the peer's address if known
//! (learnt from the first authenticated packet otherwise), the crypto of what the leg sends
//! to us (`receive`) and of what we send to it (`send`): SRTP with an SDES key, or plain RTP.

use std::net::{IpAddr, SocketAddr};

use relay_srtp::{SdesKey, Suite};
use serde::{Deserialize, Serialize};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// A sessions file or a control message body.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionsFile {
    /// Must be [`SCHEMA_VERSION`].
    pub version: u32,
    /// Static neighbours (IPv4 address to MAC), for tests and pcap runs without ARP.
    #[serde(default)]
    pub neighbours: Vec<NeighbourSpec>,
    /// Calls to install.
    #[serde(default)]
    pub calls: Vec<CallSpec>,
}

/// A static neighbour entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NeighbourSpec {
    /// IPv4 or IPv6 address.
    pub ip: IpAddr,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
}

/// One call: its media pairs, installed and removed together.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// The control plane's identifier of the call.
    pub id: String,
    /// The media pairs (one per m= line).
    pub media: Vec<MediaSpec>,
}

/// Where RTCP travels.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RtcpMode {
    /// On the RTP port (RFC 5761), told apart by payload type.
    #[default]
    Mux,
    /// On the RTP port plus one.
    PortPlusOne,
}

/// One media pair: what leg `a` sends goes to leg `b` and the other way round.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MediaSpec {
    /// RTCP multiplexed or on port+1 (both legs alike).
    #[serde(default)]
    pub rtcp: RtcpMode,
    /// Leg a.
    pub a: LegSpec,
    /// Leg b.
    pub b: LegSpec,
}

/// One leg of a media pair.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LegSpec {
    /// The relay's address and port for this leg (IPv4 or IPv6).
    pub local: SocketAddr,
    /// The peer's address and port from SDP; latched from the first authenticated packet.
    #[serde(default)]
    pub remote: Option<SocketAddr>,
    /// After latching, drop packets from any other source.
    #[serde(default)]
    pub strict_source: bool,
    /// Crypto of packets this leg sends to the relay (none: plain RTP).
    #[serde(default)]
    pub receive: Option<CryptoSpec>,
    /// Crypto of packets the relay sends to this leg (none: plain RTP).
    #[serde(default)]
    pub send: Option<CryptoSpec>,
    /// RTP clock rate for jitter (default 8000).
    #[serde(default = "default_clock_rate")]
    pub clock_rate: u32,
    /// Where the streams this leg sends stood (from its `srtp_receive` counters), to
    /// continue them in a restarted data plane: their rollover counters survive the restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_receive: Vec<StreamPosition>,
    /// The same for the streams the relay sends to this leg.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_send: Vec<StreamPosition>,
}

/// Where one SRTP stream stands (RFC 3711 section 3.3.1): its SSRC, rollover counter,
/// highest sequence number and next SRTCP index. Added within schema version 1: absent in
/// older documents, which then start every stream afresh.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StreamPosition {
    /// The stream's SSRC.
    pub ssrc: u32,
    /// Its rollover counter.
    pub roc: u32,
    /// Its highest sequence number.
    pub seq: u16,
    /// The next SRTCP index sent for it.
    pub srtcp_next: u32,
}

impl From<relay_srtp::StreamPosition> for StreamPosition {
    fn from(p: relay_srtp::StreamPosition) -> Self {
        StreamPosition {
            ssrc: p.ssrc,
            roc: p.roc,
            seq: p.seq,
            srtcp_next: p.srtcp_next,
        }
    }
}

impl From<StreamPosition> for relay_srtp::StreamPosition {
    fn from(p: StreamPosition) -> Self {
        relay_srtp::StreamPosition {
            ssrc: p.ssrc,
            roc: p.roc,
            seq: p.seq,
            srtcp_next: p.srtcp_next,
        }
    }
}

fn default_clock_rate() -> u32 {
    8000
}

/// SRTP suite and SDES key.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CryptoSpec {
    /// SDES suite name, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub suite: String,
    /// SDES key parameter, `inline:...[|lifetime][|mki:len]`.
    pub key: String,
}

impl std::fmt::Debug for CryptoSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CryptoSpec({}, <key redacted>)", self.suite)
    }
}

impl Drop for CryptoSpec {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// Why a session spec was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum SessionError {
    /// Unsupported schema version.
    #[error("unsupported session schema version {0} (this build reads version {SCHEMA_VERSION})")]
    Version(u32),
    /// A crypto spec is invalid.
    #[error("call {call}: {detail}")]
    Crypto {
        /// The call.
        call: String,
        /// What is wrong (never the key).
        detail: String,
    },
    /// A local address is already used by another leg.
    #[error("local address {0} is already in use by another leg")]
    AddressInUse(SocketAddr),
    /// A local address does not belong to any port.
    #[error("local address {0} is not an address of any relay port")]
    NotLocal(IpAddr),
    /// Same call id twice.
    #[error("call {0} already exists")]
    CallExists(String),
    /// Unknown call id.
    #[error("no call {0}")]
    NoSuchCall(String),
    /// The worker holds as many media pairs as its flow table can name (about a billion:
    /// memory runs out long before).
    #[error("call {0}: the worker's media table is full")]
    WorkerFull(String),
    /// A MAC address is malformed.
    #[error("bad MAC address {0:?}")]
    BadMac(String),
    /// The JSON is not a valid document of the schema.
    #[error("invalid session document: {0}")]
    Json(String),
    /// The sessions file cannot be read.
    #[error("cannot read sessions file {path}: {detail}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// The sessions file holds SRTP keys but others may read it.
    #[error(
        "sessions file {path} holds SRTP keys but is readable by group or others (mode {mode:o}): \
         run `chmod 600 {path}`"
    )]
    KeysExposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

impl CryptoSpec {
    /// The parsed key.
    pub fn parse(&self, call: &str) -> Result<SdesKey, SessionError> {
        let suite: Suite =
            self.suite
                .parse()
                .map_err(|e: relay_srtp::UnknownSuite| SessionError::Crypto {
                    call: call.to_owned(),
                    detail: e.to_string(),
                })?;
        SdesKey::parse_inline(suite, &self.key).map_err(|e| SessionError::Crypto {
            call: call.to_owned(),
            detail: format!("{}: {e}", self.suite),
        })
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], SessionError> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(SessionError::BadMac(s.to_owned()));
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| SessionError::BadMac(s.to_owned()))?;
    }
    Ok(mac)
}

impl SessionsFile {
    /// Whether any leg carries an SRTP key.
    pub fn has_keys(&self) -> bool {
        self.calls.iter().any(|c| {
            c.media.iter().any(|m| {
                [&m.a, &m.b]
                    .iter()
                    .any(|l| l.receive.is_some() || l.send.is_some())
            })
        })
    }

    /// Reads a sessions file (`run --sessions`). A file that holds SRTP keys must be readable
    /// by its owner only, as the CDR key is: it is refused otherwise, with the fix.
    pub fn load(path: &std::path::Path) -> Result<SessionsFile, SessionError> {
        use std::os::unix::fs::PermissionsExt;
        let unreadable = |e: std::io::Error| SessionError::Unreadable {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let mode = std::fs::metadata(path)
            .map_err(unreadable)?
            .permissions()
            .mode();
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(unreadable)?);
        let doc = SessionsFile::from_json(&text)?;
        if doc.has_keys() && mode & 0o077 != 0 {
            return Err(SessionError::KeysExposed {
                path: path.display().to_string(),
                mode: mode & 0o777,
            });
        }
        Ok(doc)
    }

    /// Writes the document to a new file readable by its owner only (mode 0600); refuses to
    /// replace an existing file.
    pub fn write_private(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = zeroize::Zeroizing::new(
            serde_json::to_string_pretty(self).map_err(std::io::Error::other)?,
        );
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    }

    /// Parses and checks the version.
    pub fn from_json(text: &str) -> Result<SessionsFile, SessionError> {
        let f: SessionsFile =
            serde_json::from_str(text).map_err(|e| SessionError::Json(e.to_string()))?;
        if f.version != SCHEMA_VERSION {
            return Err(SessionError::Version(f.version));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn keyed_call() -> CallSpec {
        let key = SdesKey::new(relay_srtp::MasterKey::random(Suite::AesCm128HmacSha1_80).unwrap());
        let leg = |port: u16, crypto: Option<CryptoSpec>| LegSpec {
            local: SocketAddr::new("198.18.0.1".parse().unwrap(), port),
            remote: None,
            strict_source: false,
            receive: crypto.clone(),
            send: crypto,
            clock_rate: default_clock_rate(),
            resume_receive: Vec::new(),
            resume_send: Vec::new(),
        };
        let crypto = CryptoSpec {
            suite: "AES_CM_128_HMAC_SHA1_80".into(),
            key: key.to_inline(),
        };
        CallSpec {
            id: "c1".into(),
            media: vec![MediaSpec {
                rtcp: RtcpMode::PortPlusOne,
                a: leg(40_000, Some(crypto)),
                b: leg(40_002, None),
            }],
        }
    }

    #[test]
    fn documents_round_trip_and_keys_parse() {
        let doc = SessionsFile {
            version: SCHEMA_VERSION,
            neighbours: vec![NeighbourSpec {
                ip: "198.18.1.20".parse().unwrap(),
                mac: "02:00:00:00:00:20".into(),
            }],
            calls: vec![keyed_call()],
        };
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(SessionsFile::from_json(&text).unwrap(), doc);
        assert!(doc.has_keys());
        let crypto = doc.calls[0].media[0].a.receive.as_ref().unwrap();
        assert!(crypto.parse("c1").is_ok());
        assert_eq!(parse_mac(&doc.neighbours[0].mac), Ok([2, 0, 0, 0, 0, 0x20]));
    }

    #[test]
    fn keys_never_appear_in_debug_output() {
        let call = keyed_call();
        let key = call.media[0].a.receive.as_ref().unwrap().key.clone();
        let debug = format!("{call:?}");
        assert!(!debug.contains(&key[7..]), "{debug}");
        assert!(debug.contains("<key redacted>"));
    }

    #[test]
    fn bad_documents_are_refused_with_the_reason() {
        assert_eq!(
            SessionsFile::from_json(r#"{"version":2}"#),
            Err(SessionError::Version(2))
        );
        assert!(matches!(
            SessionsFile::from_json(r#"{"version":1,"calls":[{"id":"x","media":[],"extra":1}]}"#),
            Err(SessionError::Json(_))
        ));
        let bad_suite = CryptoSpec {
            suite: "ROT13".into(),
            key: "inline:AAAA".into(),
        };
        assert!(
            matches!(bad_suite.parse("c9"), Err(SessionError::Crypto { call, .. }) if call == "c9")
        );
        assert_eq!(
            parse_mac("02:00:00"),
            Err(SessionError::BadMac("02:00:00".into()))
        );
    }

    #[test]
    fn a_sessions_file_with_keys_must_be_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.json");
        let doc = SessionsFile {
            version: SCHEMA_VERSION,
            neighbours: Vec::new(),
            calls: vec![keyed_call()],
        };
        doc.write_private(&path).unwrap();
        assert_eq!(SessionsFile::load(&path).unwrap(), doc);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = SessionsFile::load(&path).unwrap_err();
        assert!(matches!(err, SessionError::KeysExposed { mode: 0o640, .. }));
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(doc.write_private(&path).is_err(), "never replaces a file");
    }
}
