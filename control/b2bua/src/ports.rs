//! The media port allocator: which local RTP ports a call's legs get, so that every port of
//! the call (RTP and RTCP, both legs, every m-line) reaches the data-plane worker that owns it.
//!
//! It places calls with the data plane's own function (`relay_proto::rss::Placement`, built
//! from the core map the data plane reports), hands out even ports only (RTP on `p`, RTCP on
//! `p + 1`, RFC 3550 section 11), spreads calls over the workers by their load, and keeps a
//! freed port out of use for a quarantine period, so that late packets of an ended call never
//! reach the next call given the same port.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

use relay_proto::rss::Placement;

/// Why no ports could be given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The address is not one of the data plane's.
    #[error("media address {0} is not an address of the data plane")]
    NotLocal(IpAddr),
    /// Every port of the range that reaches the worker is in use or in quarantine.
    #[error("no free media port on {ip} for worker {worker} in {first}-{last}")]
    Exhausted {
        /// The address.
        ip: IpAddr,
        /// The worker.
        worker: usize,
        /// The range's first port.
        first: u16,
        /// The range's last port.
        last: u16,
    },
}

/// Ports given to one media pair (an m-line): leg a's and leg b's RTP ports on their
/// addresses; RTCP is on each port plus one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortPair {
    /// The worker all four ports reach.
    pub worker: usize,
    /// Leg a's local RTP address.
    pub a: SocketAddr,
    /// Leg b's local RTP address.
    pub b: SocketAddr,
}

/// Hands out and takes back media ports.
#[derive(Debug)]
pub struct PortAllocator {
    placement: Placement,
    first: u16,
    last: u16,
    quarantine_ns: u64,
    in_use: HashSet<(IpAddr, u16)>,
    /// Freed ports with the time they may be given again, oldest first.
    quarantine: VecDeque<(u64, IpAddr, u16)>,
    quarantined: HashSet<(IpAddr, u16)>,
    /// Where the next search for (address, worker) starts.
    cursors: HashMap<(IpAddr, usize), u16>,
    /// Media pairs per worker.
    load: Vec<u32>,
}

impl PortAllocator {
    /// An allocator over the even ports of `first..=last` (at most 65534), placing by
    /// `placement`, keeping freed ports unused for `quarantine_ns`.
    pub fn new(placement: Placement, first: u16, last: u16, quarantine_ns: u64) -> PortAllocator {
        let workers = usize::from(placement.workers());
        PortAllocator {
            placement,
            first: first + first % 2,
            last: last.min(65_534),
            quarantine_ns,
            in_use: HashSet::new(),
            quarantine: VecDeque::new(),
            quarantined: HashSet::new(),
            cursors: HashMap::new(),
            load: vec![0; workers],
        }
    }

    /// The placement the allocator uses.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Ports in use (RTP ports; each also holds its RTCP port).
    pub fn in_use(&self) -> usize {
        self.in_use.len()
    }

    /// Ports for a new call's first media pair: leg a on `a_ip`, leg b on `b_ip`, both on the
    /// least loaded worker that has free ports on both addresses.
    pub fn allocate(
        &mut self,
        a_ip: IpAddr,
        b_ip: IpAddr,
        now_ns: u64,
    ) -> Result<PortPair, PortError> {
        self.expire(now_ns);
        for ip in [a_ip, b_ip] {
            self.placement
                .worker_for(SocketAddr::new(ip, self.first))
                .ok_or(PortError::NotLocal(ip))?;
        }
        let mut workers: Vec<usize> = (0..self.load.len()).collect();
        workers.sort_by_key(|&w| (self.load[w], w));
        let mut last_error = None;
        for w in workers {
            match self.allocate_on(w, a_ip, b_ip, now_ns) {
                Ok(pair) => return Ok(pair),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(PortError::NotLocal(a_ip)))
    }

    /// Ports for a call's next media pair: on the least loaded worker for its first
    /// (`worker` `None`), on the call's worker for the others.
    pub fn allocate_for(
        &mut self,
        worker: Option<usize>,
        a_ip: IpAddr,
        b_ip: IpAddr,
        now_ns: u64,
    ) -> Result<PortPair, PortError> {
        match worker {
            None => self.allocate(a_ip, b_ip, now_ns),
            Some(w) => self.allocate_on(w, a_ip, b_ip, now_ns),
        }
    }

    /// Ports for a further media pair of a call already on `worker`.
    pub fn allocate_on(
        &mut self,
        worker: usize,
        a_ip: IpAddr,
        b_ip: IpAddr,
        now_ns: u64,
    ) -> Result<PortPair, PortError> {
        self.expire(now_ns);
        let a = self.find(worker, a_ip)?;
        self.in_use.insert((a_ip, a));
        let b = match self.find(worker, b_ip) {
            Ok(b) => b,
            Err(e) => {
                self.in_use.remove(&(a_ip, a));
                return Err(e);
            }
        };
        self.in_use.insert((b_ip, b));
        self.load[worker] += 1;
        Ok(PortPair {
            worker,
            a: SocketAddr::new(a_ip, a),
            b: SocketAddr::new(b_ip, b),
        })
    }

    /// Takes back a media pair's ports; they are given again only after the quarantine.
    pub fn release(&mut self, pair: PortPair, now_ns: u64) {
        for addr in [pair.a, pair.b] {
            if self.in_use.remove(&(addr.ip(), addr.port())) {
                let key = (addr.ip(), addr.port());
                self.quarantined.insert(key);
                self.quarantine
                    .push_back((now_ns + self.quarantine_ns, key.0, key.1));
            }
        }
        if let Some(l) = self.load.get_mut(pair.worker) {
            *l = l.saturating_sub(1);
        }
    }

    /// Marks `pair` as in use (a call recovered after a restart).
    pub fn claim(&mut self, pair: PortPair) {
        for addr in [pair.a, pair.b] {
            self.in_use.insert((addr.ip(), addr.port()));
        }
        if let Some(l) = self.load.get_mut(pair.worker) {
            *l += 1;
        }
    }

    fn expire(&mut self, now_ns: u64) {
        while let Some(&(until, ip, port)) = self.quarantine.front() {
            if until > now_ns {
                break;
            }
            self.quarantine.pop_front();
            self.quarantined.remove(&(ip, port));
        }
    }

    /// A free even port on `ip` whose RTP and RTCP ports reach `worker`.
    fn find(&mut self, worker: usize, ip: IpAddr) -> Result<u16, PortError> {
        let span = u32::from(self.last - self.first) / 2 + 1;
        let start = *self.cursors.get(&(ip, worker)).unwrap_or(&self.first);
        let mut port = start;
        for _ in 0..span {
            let free =
                !self.in_use.contains(&(ip, port)) && !self.quarantined.contains(&(ip, port));
            let reaches =
                |p: u16| self.placement.worker_for(SocketAddr::new(ip, p)) == Some(worker);
            if free && reaches(port) && reaches(port + 1) {
                let next = if port + 2 > self.last {
                    self.first
                } else {
                    port + 2
                };
                self.cursors.insert((ip, worker), next);
                return Ok(port);
            }
            port = if port + 2 > self.last {
                self.first
            } else {
                port + 2
            };
        }
        Err(PortError::Exhausted {
            ip,
            worker,
            first: self.first,
            last: self.last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_proto::rss::SOFTWARE_RETA_SIZE;
    use relay_session::{CallSpec, LegSpec, MediaSpec, RtcpMode};

    fn allocator(workers: u16, first: u16, last: u16) -> PortAllocator {
        let mut placement = Placement::new(workers);
        placement.add_address("198.18.0.1".parse().unwrap(), SOFTWARE_RETA_SIZE);
        placement.add_address("2001:2::1".parse().unwrap(), 512);
        PortAllocator::new(placement, first, last, 1_000)
    }

    fn leg(local: SocketAddr) -> LegSpec {
        LegSpec {
            local,
            remote: None,
            strict_source: false,
            receive: None,
            send: None,
            clock_rate: 8000,
        }
    }

    #[test]
    fn every_pair_is_placeable_with_rtcp_on_port_plus_one_and_calls_spread() {
        let mut ports = allocator(4, 20_000, 60_000);
        let (v4, v6) = ("198.18.0.1".parse().unwrap(), "2001:2::1".parse().unwrap());
        let mut per_worker = [0; 4];
        for i in 0..400 {
            let pair = ports
                .allocate(v4, if i % 2 == 0 { v4 } else { v6 }, 0)
                .unwrap();
            assert_eq!(pair.a.port() % 2, 0);
            let call = CallSpec {
                id: format!("c{i}"),
                media: vec![MediaSpec {
                    rtcp: RtcpMode::PortPlusOne,
                    a: leg(pair.a),
                    b: leg(pair.b),
                }],
            };
            assert_eq!(ports.placement().place(&call), Ok(pair.worker));
            per_worker[pair.worker] += 1;
        }
        assert_eq!(per_worker, [100; 4], "calls spread by load");
        assert_eq!(ports.in_use(), 800);
    }

    #[test]
    fn freed_ports_wait_out_the_quarantine() {
        let mut ports = allocator(1, 30_000, 30_006);
        let v4 = "198.18.0.1".parse().unwrap();
        let a = ports.allocate(v4, v4, 0).unwrap();
        let b = ports.allocate(v4, v4, 0).unwrap();
        assert!(matches!(
            ports.allocate(v4, v4, 0),
            Err(PortError::Exhausted { .. })
        ));
        ports.release(a, 10);
        assert!(ports.allocate(v4, v4, 500).is_err(), "still in quarantine");
        let again = ports.allocate(v4, v4, 1_010).unwrap();
        let mut given = [again.a.port(), again.b.port()];
        given.sort();
        let mut freed = [a.a.port(), a.b.port()];
        freed.sort();
        assert_eq!(given, freed);
        ports.release(b, 2_000);
        ports.release(again, 2_000);
        assert_eq!(ports.in_use(), 0);
    }

    #[test]
    fn unknown_addresses_are_refused() {
        let mut ports = allocator(2, 20_000, 30_000);
        let v4 = "198.18.0.1".parse().unwrap();
        let other: IpAddr = "198.18.7.7".parse().unwrap();
        assert_eq!(
            ports.allocate(v4, other, 0),
            Err(PortError::NotLocal(other))
        );
        assert_eq!(ports.in_use(), 0);
    }
}
