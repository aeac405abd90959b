//! ICMP echo over IPv4 (RFC 792) and ICMPv6 messages (RFC 4443): the echo replies the relay
//! sends for its own addresses, and the ICMPv6 framing neighbour discovery ([`super::ndisc`])
//! travels in.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum::{checksum_add, finish};
use super::ethernet::{L2Out, ETHERTYPE_IPV4, ETHERTYPE_IPV6, L2};
use super::ipv4::{ipv4_header, Ipv4Repr};
use super::ipv6::{ipv6_header, pseudo_sum6, v6, Ipv6Repr};
use super::{WireError, IPPROTO_ICMP, IPPROTO_ICMPV6};

/// ICMP type: echo reply.
pub const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP type: echo request.
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// ICMPv6 type: echo request.
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 type: echo reply.
pub const ICMPV6_ECHO_REPLY: u8 = 129;
/// The longest ICMPv6 echo message answered (the IPv6 minimum MTU): the request is copied to
/// the stack before the reply is written over it, and a longer one is answered cut to this.
pub const ICMPV6_ECHO_MAX: usize = 1280;

/// The ICMP message of an IPv4 frame whose type `accept`s (code 0), checksum checked:
/// (offset, length).
fn icmp4_message(
    frame: &[u8],
    l2: &L2,
    accept: impl Fn(u8) -> bool,
) -> Result<(usize, usize), WireError> {
    let (ihl, total, proto) = ipv4_header(frame, l2.l3)?;
    if proto != IPPROTO_ICMP {
        return Err(WireError::Unsupported);
    }
    let icmp_at = l2.l3 + ihl;
    let icmp_len = total - ihl;
    let icmp = frame
        .get(icmp_at..icmp_at + icmp_len)
        .ok_or(WireError::Truncated)?;
    if icmp_len < 8 || !accept(icmp[0]) || icmp[1] != 0 {
        return Err(WireError::Unsupported);
    }
    if checksum_add(0, icmp) != 0xffff {
        return Err(WireError::Malformed);
    }
    Ok((icmp_at, icmp_len))
}

/// If `frame` is an ICMP echo request (checked), turns it into the echo reply in place:
/// swaps MACs and addresses, sets type 0, fixes both checksums. Returns the reply length.
pub fn icmp_echo_reply_in_place(frame: &mut [u8], l2: &L2) -> Result<usize, WireError> {
    let (icmp_at, icmp_len) = icmp4_message(frame, l2, |t| t == ICMP_ECHO_REQUEST)?;
    let (dst, src): ([u8; 6], [u8; 6]) = (
        frame[0..6].try_into().expect("6"),
        frame[6..12].try_into().expect("6"),
    );
    frame[0..6].copy_from_slice(&src);
    frame[6..12].copy_from_slice(&dst);
    let ip = &mut frame[l2.l3..l2.l3 + 20];
    let (s, d): ([u8; 4], [u8; 4]) = (
        ip[12..16].try_into().expect("4"),
        ip[16..20].try_into().expect("4"),
    );
    ip[12..16].copy_from_slice(&d);
    ip[16..20].copy_from_slice(&s);
    ip[8] = 64;
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = finish(checksum_add(0, ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut frame[icmp_at..icmp_at + icmp_len];
    icmp[0] = ICMP_ECHO_REPLY;
    icmp[2..4].copy_from_slice(&[0, 0]);
    let c = finish(checksum_add(0, icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Ok(icmp_at + icmp_len)
}

/// An echo request or reply, ICMP or ICMPv6 alike: what follows type, code and checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo<'a> {
    /// A reply (else a request).
    pub reply: bool,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
    /// The data echoed.
    pub data: &'a [u8],
}

impl Echo<'_> {
    /// Writes the message (type `kind`, checksum zero) into `m`, exactly its length.
    fn write(&self, m: &mut [u8], kind: u8) {
        m[0..4].copy_from_slice(&[kind, 0, 0, 0]);
        m[4..6].copy_from_slice(&self.ident.to_be_bytes());
        m[6..8].copy_from_slice(&self.seq.to_be_bytes());
        m[8..].copy_from_slice(self.data);
    }

    /// The echo in a checked ICMP message.
    fn read(m: &[u8], reply: bool) -> Echo<'_> {
        Echo {
            reply,
            ident: u16::from_be_bytes([m[4], m[5]]),
            seq: u16::from_be_bytes([m[6], m[7]]),
            data: &m[8..],
        }
    }
}

/// Parses an ICMP echo request or reply over IPv4 (headers and checksums checked).
pub fn parse_echo4<'a>(frame: &'a [u8], l2: &L2) -> Result<(Ipv4Repr, Echo<'a>), WireError> {
    let (at, len) = icmp4_message(frame, l2, |t| {
        t == ICMP_ECHO_REQUEST || t == ICMP_ECHO_REPLY
    })?;
    let ip = Ipv4Repr::parse(frame, l2.l3)?;
    let m = &frame[at..at + len];
    Ok((ip, Echo::read(m, m[0] == ICMP_ECHO_REPLY)))
}

/// Writes an Ethernet/IPv4/ICMP echo frame (TTL 64); returns its length, or `None` if
/// `frame` is too short.
pub fn write_echo4(
    frame: &mut [u8],
    l2: &L2Out,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    echo: &Echo,
) -> Option<usize> {
    let len = 8 + echo.data.len();
    let l3 = l2.emit(frame, ETHERTYPE_IPV4)?;
    let ip = Ipv4Repr {
        src,
        dst,
        protocol: IPPROTO_ICMP,
        payload_len: len,
        ttl: 64,
    };
    let at = ip.emit(frame, l3)?;
    let m = frame.get_mut(at..at + len)?;
    let kind = if echo.reply {
        ICMP_ECHO_REPLY
    } else {
        ICMP_ECHO_REQUEST
    };
    echo.write(m, kind);
    let c = finish(checksum_add(0, m));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    Some(at + len)
}

/// An ICMPv6 message inside an IPv6 frame: offsets, addresses, type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmp6 {
    /// Offset of the ICMPv6 header.
    pub at: usize,
    /// ICMPv6 length.
    pub len: usize,
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// ICMPv6 type.
    pub kind: u8,
    /// IPv6 hop limit.
    pub hop_limit: u8,
}

/// Parses an ICMPv6 message and checks its checksum.
pub fn parse_icmp6(frame: &[u8], l2: &L2) -> Result<Icmp6, WireError> {
    let (plen, next) = ipv6_header(frame, l2.l3)?;
    if next != IPPROTO_ICMPV6 {
        return Err(WireError::Unsupported);
    }
    let ip = &frame[l2.l3..l2.l3 + 40];
    let (src, dst) = (v6(&ip[8..24]), v6(&ip[24..40]));
    let at = l2.l3 + 40;
    let icmp = frame.get(at..at + plen).ok_or(WireError::Truncated)?;
    if plen < 8 || checksum_add(pseudo_sum6(&src, &dst, plen, IPPROTO_ICMPV6), icmp) != 0xffff {
        return Err(WireError::Malformed);
    }
    Ok(Icmp6 {
        at,
        len: plen,
        src,
        dst,
        kind: icmp[0],
        hop_limit: ip[7],
    })
}

/// Writes an IPv6 + ICMPv6 frame whose ICMPv6 body (`body`, from the type byte on, checksum
/// zero) is placed after the headers; returns the frame length.
pub fn write_icmp6(
    frame: &mut [u8],
    l2: &L2Out,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    body: &[u8],
) -> Option<usize> {
    write_icmp6_with(frame, l2, src, dst, hop_limit, body.len(), |m| {
        m.copy_from_slice(body)
    })
}

/// [`write_icmp6`] with the `len`-byte message written in place by `fill` (type on; the
/// checksum field is then computed).
pub(crate) fn write_icmp6_with(
    frame: &mut [u8],
    l2: &L2Out,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Option<usize> {
    let l3 = l2.header_len();
    let at = l3 + 40;
    let end = at + len;
    let out = frame.get_mut(..end)?;
    l2.emit(out, ETHERTYPE_IPV6)?;
    let ip = Ipv6Repr {
        src,
        dst,
        next_header: IPPROTO_ICMPV6,
        payload_len: len,
        hop_limit,
    };
    ip.emit(out, l3)?;
    fill(&mut out[at..end]);
    out[at + 2..at + 4].copy_from_slice(&[0, 0]);
    let c = finish(checksum_add(
        pseudo_sum6(&src, &dst, len, IPPROTO_ICMPV6),
        &out[at..end],
    ));
    out[at + 2..at + 4].copy_from_slice(&c.to_be_bytes());
    Some(end)
}

/// Parses an ICMPv6 echo request or reply (headers and checksum checked).
pub fn parse_echo6<'a>(frame: &'a [u8], l2: &L2) -> Result<(Icmp6, Echo<'a>), WireError> {
    let icmp = parse_icmp6(frame, l2)?;
    let m = &frame[icmp.at..icmp.at + icmp.len];
    if !matches!(icmp.kind, ICMPV6_ECHO_REQUEST | ICMPV6_ECHO_REPLY) || m[1] != 0 {
        return Err(WireError::Unsupported);
    }
    Ok((icmp, Echo::read(m, icmp.kind == ICMPV6_ECHO_REPLY)))
}

/// Writes an Ethernet/IPv6/ICMPv6 echo frame (hop limit 64); returns its length, or `None`
/// if `frame` is too short.
pub fn write_echo6(
    frame: &mut [u8],
    l2: &L2Out,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    echo: &Echo,
) -> Option<usize> {
    let kind = if echo.reply {
        ICMPV6_ECHO_REPLY
    } else {
        ICMPV6_ECHO_REQUEST
    };
    write_icmp6_with(frame, l2, src, dst, 64, 8 + echo.data.len(), |m| {
        echo.write(m, kind)
    })
}

/// Answers the ICMPv6 echo request `request` (parsed from `frame`) over it: the reply from
/// `src` behind `l2`, with the request's identifier, sequence number and data (RFC 4443
/// section 4.2), hop limit 64. Returns the reply's length, or `None` if it does not fit.
pub fn write_echo6_reply(
    frame: &mut [u8],
    request: &Icmp6,
    l2: &L2Out,
    src: Ipv6Addr,
) -> Option<usize> {
    let mut copy = [0u8; ICMPV6_ECHO_MAX];
    let len = request.len.min(ICMPV6_ECHO_MAX);
    copy[..len].copy_from_slice(frame.get(request.at..request.at + len)?);
    copy[0] = ICMPV6_ECHO_REPLY;
    write_icmp6(frame, l2, src, request.src, 64, &copy[..len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::parse_l2;

    fn l2() -> L2Out {
        L2Out {
            src: [2, 0, 0, 0, 0, 0x10],
            dst: [2, 0, 0, 0, 0, 1],
            vlan: None,
        }
    }

    #[test]
    fn echo4_request_answered_in_place() {
        let echo = Echo {
            reply: false,
            ident: 7,
            seq: 1,
            data: b"pingpong",
        };
        let (a, b) = (Ipv4Addr::new(198, 18, 0, 10), Ipv4Addr::new(198, 18, 0, 1));
        let mut f = [0u8; 64];
        let n = write_echo4(&mut f, &l2(), a, b, &echo).unwrap();
        assert_eq!(n, 50);
        let l2_in = parse_l2(&f[..n]).unwrap();
        let (ip, got) = parse_echo4(&f[..n], &l2_in).unwrap();
        assert_eq!((ip.src, ip.dst, got), (a, b, echo));
        assert_eq!(icmp_echo_reply_in_place(&mut f[..n], &l2_in), Ok(50));
        let (ip, got) = parse_echo4(&f[..n], &l2_in).unwrap();
        assert_eq!(
            (ip.src, ip.dst, got),
            (
                b,
                a,
                Echo {
                    reply: true,
                    ..echo
                }
            )
        );
        assert_eq!(
            icmp_echo_reply_in_place(&mut f[..n], &l2_in),
            Err(WireError::Unsupported),
            "a reply is not answered"
        );
        f[n - 1] ^= 1;
        assert_eq!(parse_echo4(&f[..n], &l2_in), Err(WireError::Malformed));
    }

    #[test]
    fn echo6_request_answered() {
        let echo = Echo {
            reply: false,
            ident: 0x1234,
            seq: 1,
            data: b"ping6",
        };
        let (a, b): (Ipv6Addr, Ipv6Addr) =
            ("2001:2::77".parse().unwrap(), "2001:2::1".parse().unwrap());
        let mut f = [0u8; 128];
        let n = write_echo6(&mut f, &l2(), a, b, &echo).unwrap();
        let l2_in = parse_l2(&f[..n]).unwrap();
        let (icmp, got) = parse_echo6(&f[..n], &l2_in).unwrap();
        assert_eq!((icmp.src, icmp.dst, icmp.hop_limit, got), (a, b, 64, echo));
        let m = write_echo6_reply(&mut f, &icmp, &l2_in.answer_from([2, 0, 0, 0, 0, 1]), b);
        let m = m.unwrap();
        let l2_out = parse_l2(&f[..m]).unwrap();
        let (icmp, got) = parse_echo6(&f[..m], &l2_out).unwrap();
        assert_eq!(
            (icmp.src, icmp.dst, got),
            (
                b,
                a,
                Echo {
                    reply: true,
                    ..echo
                }
            )
        );
        assert_eq!(l2_out.dst, [2, 0, 0, 0, 0, 0x10]);
    }
}
