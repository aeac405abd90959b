//! The neighbour table and next hops: learning MACs from ARP and neighbour discovery, routing
//! an outgoing leg to a port and next hop, and queueing an ARP request (IPv4) or neighbour
//! solicitation (IPv6) for a next hop whose MAC is unknown.

use rustc_hash::FxHashMap as HashMap;
use std::net::{IpAddr, SocketAddr};

use super::{DropReason, PortAddr, Relay, TxCache, MAX_PENDING_ARP, STATIC};
use crate::wire::arp::OP_REQUEST;
use crate::wire::{self, Arp, Ndisc, TxHeader};

impl PortAddr {
    /// Whether `ip` is this port's address.
    pub(super) fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4 == self.ipv4 && !v4.is_unspecified(),
            IpAddr::V6(v6) => Some(v6) == self.ipv6,
        }
    }

    /// The next hop towards `dst`: itself if on link, else the gateway of its family.
    pub(super) fn next_hop(&self, dst: IpAddr) -> Option<IpAddr> {
        match dst {
            IpAddr::V4(d) => {
                let mask = if self.prefix_len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
                };
                if u32::from(d) & mask == u32::from(self.ipv4) & mask {
                    Some(dst)
                } else {
                    self.gateway.map(IpAddr::V4)
                }
            }
            IpAddr::V6(d) => {
                let ours = self.ipv6?;
                let bits = u32::from(self.prefix6_len.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                if u128::from(d) & mask == u128::from(ours) & mask {
                    Some(dst)
                } else {
                    self.gateway6.map(IpAddr::V6)
                }
            }
        }
    }
}

impl Relay {
    /// Learns a neighbour from a received ARP or neighbour discovery message, and remembers
    /// it for [`Relay::drain_learnt`]: with several workers, the one that receives ARP and ND
    /// (RSS sends them to queue 0) tells the others.
    pub(super) fn learn_from_wire(&mut self, ip: IpAddr, mac: [u8; 6], now_ns: u64) {
        self.learn(ip, mac, now_ns);
        if self.learnt.len() < MAX_PENDING_ARP {
            self.learnt.push((ip, mac));
        }
    }

    /// Queues an ARP request (or neighbour solicitation) for the next hop from `local` to
    /// `remote` if its MAC is not known yet: a call's peers are resolved while the call is
    /// set up, so its first packets are not dropped waiting for them.
    pub(super) fn resolve_ahead(&mut self, local: SocketAddr, remote: IpAddr) {
        let Some(port) = self.ports.iter().find(|p| p.owns(local.ip())) else {
            return;
        };
        let Some(next_hop) = port.next_hop(remote) else {
            return;
        };
        if remote.is_ipv4() != local.is_ipv4() || self.neighbours.contains_key(&next_hop) {
            return;
        }
        let key = (port.port, next_hop);
        if self.pending_arp.len() < MAX_PENDING_ARP && !self.pending_arp.contains(&key) {
            self.pending_arp.push(key);
        }
    }

    /// The MAC of neighbour `ip`, if known (stale or not): for the I/O shell, to complete
    /// the frames it holds for a [`Verdict::Hold`](super::Verdict::Hold).
    pub fn neighbour_mac(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.neighbours.get(&ip).map(|&(mac, _)| mac)
    }

    /// Calls `f` with each neighbour learnt from the wire since the last call.
    pub fn drain_learnt(&mut self, mut f: impl FnMut(IpAddr, [u8; 6])) {
        for (ip, mac) in self.learnt.drain(..) {
            f(ip, mac);
        }
    }

    /// Learns (or refreshes) a neighbour, evicting expired entries when full.
    pub fn learn(&mut self, ip: IpAddr, mac: [u8; 6], now_ns: u64) {
        if let Some(e) = self.neighbours.get_mut(&ip) {
            if e.1 != STATIC {
                if e.0 != mac {
                    self.neighbour_gen += 1;
                }
                *e = (mac, now_ns.saturating_add(self.config.neighbour_ttl_ns));
            }
            return;
        }
        if self.neighbours.len() >= self.config.max_neighbours {
            self.neighbours.retain(|_, (_, exp)| *exp > now_ns);
            if self.neighbours.len() >= self.config.max_neighbours {
                return;
            }
        }
        self.neighbours.insert(
            ip,
            (mac, now_ns.saturating_add(self.config.neighbour_ttl_ns)),
        );
        self.neighbour_gen += 1;
    }

    /// Builds the ARP requests (IPv4) and neighbour solicitations (IPv6) queued for
    /// unresolved next hops, calling `emit(port, frame)`.
    pub fn drain_arp_requests(&mut self, mut emit: impl FnMut(u16, &[u8])) {
        let mut buf = [0u8; 128];
        for (port, target) in std::mem::take(&mut self.pending_arp) {
            let Some(p) = self
                .ports
                .iter()
                .find(|p| p.port == port && (target.is_ipv4() || p.ipv6.is_some()))
            else {
                continue;
            };
            let n = match target {
                IpAddr::V4(t) => {
                    let arp = Arp {
                        op: OP_REQUEST,
                        sha: p.mac,
                        spa: p.ipv4,
                        tha: [0; 6],
                        tpa: t,
                    };
                    wire::write_arp(&mut buf, [0xff; 6], p.vlan, &arp)
                }
                IpAddr::V6(t) => {
                    //= https://www.rfc-editor.org/rfc/rfc4861#section-7.2.2
                    //# the solicitation is sent to the solicited-node multicast address
                    //# corresponding to the target address
                    let (group, group_mac) = wire::solicited_node(&t);
                    let ns = Ndisc::Solicit {
                        target: t,
                        lladdr: Some(p.mac),
                    };
                    let l2 = wire::L2Out {
                        src: p.mac,
                        dst: group_mac,
                        vlan: p.vlan,
                    };
                    ns.emit(&mut buf, &l2, p.ipv6.expect("checked"), group)
                }
            };
            if let Some(n) = n {
                emit(port, &buf[..n]);
            }
        }
    }
}

/// How soon headers built from a stale neighbour entry are built again (and the neighbour
/// asked again if no answer came).
const STALE_RETRY_NS: u64 = 1_000_000_000;

/// Builds the headers for packets sent from `local` to a leg's peer (`remote`, `remote_rtcp`),
/// RTP or RTCP port: route by the port that owns the local address, next hop on link or the
/// gateway, its MAC from the neighbour table (a stale entry is used while it is asked again).
/// A next hop whose MAC is unknown is asked for (ARP request / neighbour solicitation queued)
/// and returned beside headers whose destination MAC is all zeros, to be filled in when the
/// answer comes: such headers are for one packet, never kept.
pub(super) fn build_tx(
    local: SocketAddr,
    (remote, remote_rtcp): (Option<SocketAddr>, Option<SocketAddr>),
    rtcp_port: bool,
    ports: &[PortAddr],
    neighbours: &HashMap<IpAddr, ([u8; 6], u64)>,
    now_ns: u64,
    pending_arp: &mut Vec<(u16, IpAddr)>,
) -> Result<(TxCache, Option<IpAddr>), DropReason> {
    let plus_one = |a: SocketAddr| SocketAddr::new(a.ip(), a.port().wrapping_add(1));
    let (src, dst) = if rtcp_port {
        (
            plus_one(local),
            remote_rtcp.or_else(|| remote.map(plus_one)),
        )
    } else {
        (local, remote)
    };
    let dst = dst.ok_or(DropReason::NoDestination)?;
    if dst.is_ipv4() != src.is_ipv4() {
        return Err(DropReason::NoRoute);
    }
    let port = ports
        .iter()
        .find(|p| p.owns(src.ip()))
        .ok_or(DropReason::NoRoute)?;
    let next_hop = port.next_hop(dst.ip()).ok_or(DropReason::NoRoute)?;
    let ask = |pending_arp: &mut Vec<(u16, IpAddr)>| {
        if pending_arp.len() < MAX_PENDING_ARP && !pending_arp.contains(&(port.port, next_hop)) {
            pending_arp.push((port.port, next_hop));
        }
    };
    let (dst_mac, mut expires_ns, unresolved) = match neighbours.get(&next_hop) {
        Some(&(mac, expires_ns)) => (mac, expires_ns, None),
        None => {
            ask(pending_arp);
            ([0; 6], 0, Some(next_hop))
        }
    };
    if unresolved.is_none() && expires_ns <= now_ns {
        // Stale: keep sending to the MAC we know while asking again, as a host's neighbour
        // cache does (RFC 4861 section 7.3.3's STALE state), instead of dropping a long
        // call's packets each time the entry ages out. The headers are rebuilt soon, with
        // the answer or without it.
        ask(pending_arp);
        expires_ns = now_ns.saturating_add(STALE_RETRY_NS);
    }
    let l2 = wire::L2Out {
        src: port.mac,
        dst: dst_mac,
        vlan: port.vlan,
    };
    let cache = TxCache {
        header: TxHeader::new(&l2, src, dst).ok_or(DropReason::NoRoute)?,
        port: port.port,
        offload: port.udp_checksum_offload,
        neighbour_gen: 0,
        expires_ns,
    };
    Ok((cache, unresolved))
}
