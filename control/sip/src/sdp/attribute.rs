//! The `a=` lines the relay reads: direction (RFC 3264), `a=rtcp` (RFC 3605), `a=rtcp-mux`
//! (RFC 5761), ICE (RFC 8839, recognised so a rewriter can remove it) and `a=crypto`
//! (RFC 4568); any other attribute is kept as written.

use std::fmt;

use super::*;

/// Media direction (RFC 3264 section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv`, the default.
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, if not the media one.
    pub address: Option<Address>,
}

impl Rtcp {
    //= https://www.rfc-editor.org/rfc/rfc3605#section-2.1
    //# rtcp-attribute =  "a=rtcp:" port  [nettype space addrtype space
    //#                      connection-address] CRLF
    fn parse(v: &str) -> Option<Rtcp> {
        let f: Vec<&str> = v.split(' ').collect();
        let port = u16::try_from(number(f[0])?).ok()?;
        let address = match f[1..] {
            [] => None,
            [net, ty, addr] => Some(net_address(net, ty, addr)?),
            _ => return None,
        };
        Some(Rtcp { port, address })
    }
}

/// The ICE attributes of RFC 8839.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IceKind {
    /// `a=candidate`.
    Candidate,
    /// `a=remote-candidates`.
    RemoteCandidates,
    /// `a=end-of-candidates`.
    EndOfCandidates,
    /// `a=ice-lite`.
    IceLite,
    /// `a=ice-mismatch`.
    IceMismatch,
    /// `a=ice-ufrag`.
    IceUfrag,
    /// `a=ice-pwd`.
    IcePwd,
    /// `a=ice-options`.
    IceOptions,
    /// `a=ice-pacing`.
    IcePacing,
}

impl IceKind {
    const ALL: [(&'static str, IceKind, bool); 9] = [
        ("candidate", IceKind::Candidate, true),
        ("remote-candidates", IceKind::RemoteCandidates, true),
        ("end-of-candidates", IceKind::EndOfCandidates, false),
        ("ice-lite", IceKind::IceLite, false),
        ("ice-mismatch", IceKind::IceMismatch, false),
        ("ice-ufrag", IceKind::IceUfrag, true),
        ("ice-pwd", IceKind::IcePwd, true),
        ("ice-options", IceKind::IceOptions, true),
        ("ice-pacing", IceKind::IcePacing, true),
    ];

    fn lookup(name: &str) -> Option<(IceKind, bool)> {
        Self::ALL
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|&(_, k, v)| (k, v))
    }

    /// The attribute name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k, _)| *k == self)
            .map_or("", |(n, _, _)| n)
    }
}

/// An ICE attribute. `Debug` hides the value of `a=ice-pwd`, a credential.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IceAttribute {
    /// Which one.
    pub kind: IceKind,
    /// Its value, for those that take one.
    pub value: Option<Text>,
}

impl fmt::Debug for IceAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("IceAttribute");
        d.field("kind", &self.kind);
        if self.kind == IceKind::IcePwd {
            d.field("value", &"<redacted>");
        } else {
            d.field("value", &self.value);
        }
        d.finish()
    }
}

/// An `a=` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attribute {
    /// `a=crypto`.
    Crypto(Crypto),
    /// `a=rtcp`.
    Rtcp(Rtcp),
    /// `a=rtcp-mux`.
    RtcpMux,
    /// A direction attribute.
    Direction(Direction),
    /// An ICE attribute.
    Ice(IceAttribute),
    /// Any other attribute, as written.
    Other {
        /// The name (`att-field`).
        name: Word,
        /// The value, if any.
        value: Option<Text>,
    },
}

impl Attribute {
    /// Whether this is an ICE attribute, which a relaying SBC removes.
    pub fn is_ice(&self) -> bool {
        matches!(self, Attribute::Ice(_))
    }

    /// The attribute's name.
    pub fn name(&self) -> &str {
        match self {
            Attribute::Crypto(_) => "crypto",
            Attribute::Rtcp(_) => "rtcp",
            Attribute::RtcpMux => "rtcp-mux",
            Attribute::Direction(d) => d.name(),
            Attribute::Ice(i) => i.kind.name(),
            Attribute::Other { name, .. } => name.as_str(),
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc4566#section-9
    //# attribute =           (att-field ":" att-value) / att-field
    pub(super) fn parse(v: &str) -> Result<Attribute, SdpError> {
        let (name, value) = match v.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (v, None),
        };
        let generic = SdpError::BadAttribute(AttributeKind::Generic);
        let name = token(name).ok_or(generic)?;
        let value = value
            .map(|v| Text::new(v).map_err(|_| generic))
            .transpose()?;
        let none = |kind, a: Attribute| {
            if value.is_none() {
                Ok(a)
            } else {
                Err(SdpError::BadAttribute(kind))
            }
        };
        Ok(match (name.as_str(), &value) {
            ("crypto", Some(v)) => {
                Attribute::Crypto(Crypto::parse(v.as_str()).map_err(SdpError::BadCrypto)?)
            }
            ("crypto", None) => return Err(SdpError::BadCrypto(CryptoError::Malformed)),
            ("rtcp", Some(v)) => Attribute::Rtcp(
                Rtcp::parse(v.as_str()).ok_or(SdpError::BadAttribute(AttributeKind::Rtcp))?,
            ),
            ("rtcp", None) => return Err(SdpError::BadAttribute(AttributeKind::Rtcp)),
            ("rtcp-mux", _) => none(AttributeKind::RtcpMux, Attribute::RtcpMux)?,
            ("sendrecv", _) => none(
                AttributeKind::Direction,
                Attribute::Direction(Direction::SendRecv),
            )?,
            ("sendonly", _) => none(
                AttributeKind::Direction,
                Attribute::Direction(Direction::SendOnly),
            )?,
            ("recvonly", _) => none(
                AttributeKind::Direction,
                Attribute::Direction(Direction::RecvOnly),
            )?,
            ("inactive", _) => none(
                AttributeKind::Direction,
                Attribute::Direction(Direction::Inactive),
            )?,
            (n, _) => match IceKind::lookup(n) {
                Some((kind, takes_value)) => {
                    if takes_value != value.is_some() {
                        return Err(SdpError::BadAttribute(AttributeKind::Ice));
                    }
                    Attribute::Ice(IceAttribute { kind, value })
                }
                None => Attribute::Other { name, value },
            },
        })
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self {
            Attribute::Crypto(c) => write!(f, ":{c}"),
            Attribute::Rtcp(r) => {
                write!(f, ":{}", r.port)?;
                match &r.address {
                    Some(a) => write!(f, " {a}"),
                    None => Ok(()),
                }
            }
            Attribute::Ice(IceAttribute { value: Some(v), .. })
            | Attribute::Other { value: Some(v), .. } => write!(f, ":{v}"),
            _ => Ok(()),
        }
    }
}
