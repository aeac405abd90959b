//! The flows of SIP over UDP: one per (our address, the peer's address), so that answers
//! and in-dialog requests go back where a request came from. A stream flow ends with its
//! connection; a UDP flow has no end, so the table is bounded instead: at most
//! `max_udp_flows` in all and `max_udp_flows_per_source` per IP address (`[limits]`).
//! A datagram that would need a flow past either bound is dropped and counted
//! (`udp_flows_refused`): forged source addresses and ports cannot grow relay-control's
//! memory. Flows that exist are never refused, so a trunk peer keeps its own.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use relay_b2bua::FlowId;

/// What [`UdpFlows::flow`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpFlow {
    /// A flow that existed.
    Known(FlowId),
    /// A new flow, just made (announce it to the event loop).
    New(FlowId),
    /// Over a bound: drop the datagram.
    Refused,
}

/// The UDP flow table; see the module docs.
#[derive(Debug)]
pub struct UdpFlows {
    flows: HashMap<(SocketAddr, SocketAddr), FlowId>,
    per_source: HashMap<IpAddr, usize>,
    max_total: usize,
    max_per_source: usize,
}

impl UdpFlows {
    /// An empty table with these bounds.
    pub fn new(max_total: usize, max_per_source: usize) -> UdpFlows {
        UdpFlows {
            flows: HashMap::new(),
            per_source: HashMap::new(),
            max_total,
            max_per_source,
        }
    }

    /// The flow of datagrams from `remote` to our `local`, made with `next_id` if new and
    /// within the bounds.
    pub fn flow(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        next_id: impl FnOnce() -> FlowId,
    ) -> UdpFlow {
        if let Some(&id) = self.flows.get(&(local, remote)) {
            return UdpFlow::Known(id);
        }
        let from_source = self.per_source.get(&remote.ip()).copied().unwrap_or(0);
        if self.flows.len() >= self.max_total || from_source >= self.max_per_source {
            return UdpFlow::Refused;
        }
        let id = next_id();
        self.flows.insert((local, remote), id);
        *self.per_source.entry(remote.ip()).or_default() += 1;
        UdpFlow::New(id)
    }

    /// How many flows there are.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_kept_and_bounded_per_source_and_in_all() {
        let local: SocketAddr = "198.18.0.1:5060".parse().unwrap();
        let mut next = 0;
        let mut id = || {
            next += 1;
            next
        };
        let mut t = UdpFlows::new(5, 2);
        let a1: SocketAddr = "198.18.1.1:5060".parse().unwrap();
        let a2: SocketAddr = "198.18.1.1:5062".parse().unwrap();
        let a3: SocketAddr = "198.18.1.1:5064".parse().unwrap();
        assert_eq!(t.flow(local, a1, &mut id), UdpFlow::New(1));
        assert_eq!(t.flow(local, a1, &mut id), UdpFlow::Known(1));
        assert_eq!(t.flow(local, a2, &mut id), UdpFlow::New(2));
        // A third port of the same address: over the per-source bound.
        assert_eq!(t.flow(local, a3, &mut id), UdpFlow::Refused);
        // Other addresses, up to the total.
        for i in 2..5 {
            let r: SocketAddr = format!("198.18.1.{i}:5060").parse().unwrap();
            assert!(matches!(t.flow(local, r, &mut id), UdpFlow::New(_)));
        }
        assert_eq!(t.len(), 5);
        let late: SocketAddr = "198.18.1.9:5060".parse().unwrap();
        assert_eq!(t.flow(local, late, &mut id), UdpFlow::Refused);
        // Existing flows still work when the table is full.
        assert_eq!(t.flow(local, a2, &mut id), UdpFlow::Known(2));
    }
}
