//! Answers for the relay's own addresses: ARP (RFC 826), ICMP echo (RFC 792, RFC 4443) and
//! neighbour discovery (RFC 4861). The frames are built by `wire`; this file decides what to
//! answer and learns the neighbours the messages reveal.

use std::net::IpAddr;

use super::{DropReason, Relay, Verdict};
use crate::wire::arp::{OP_REPLY, OP_REQUEST};
use crate::wire::icmp::ICMPV6_ECHO_REQUEST;
use crate::wire::ipv6::multicast_mac;
use crate::wire::ndisc::{self, ADVERT_OVERRIDE, ADVERT_SOLICITED, ALL_NODES};
use crate::wire::{self, Arp, Ndisc, ETHERTYPE_IPV4};

impl Relay {
    /// ARP: learn the sender; answer a request for one of the receiving port's addresses.
    pub(super) fn arp(
        &mut self,
        rx_port: u16,
        frame: &mut [u8],
        len: usize,
        l2: &wire::L2,
        now_ns: u64,
    ) -> Verdict {
        let arp = match wire::parse_arp(&frame[..len], l2) {
            Ok(a) => a,
            Err(e) => return self.drop(e.into()),
        };
        let Some(port) = self
            .ports
            .iter()
            .find(|p| p.port == rx_port && p.ipv4 == arp.tpa)
            .cloned()
        else {
            return self.drop(DropReason::NotForUs);
        };
        //= https://www.rfc-editor.org/rfc/rfc826
        //# If the pair <protocol type, sender protocol address> is already in my translation
        //# table, update the sender hardware address field of the entry with the new
        //# information in the packet
        self.learn_from_wire(IpAddr::V4(arp.spa), arp.sha, now_ns);
        if arp.op != OP_REQUEST {
            return Verdict::Consumed;
        }
        let reply = Arp {
            op: OP_REPLY,
            sha: port.mac,
            spa: port.ipv4,
            tha: arp.sha,
            tpa: arp.spa,
        };
        self.reply(wire::write_arp(frame, arp.sha, l2.vlan, &reply))
    }

    /// A reply of `len` bytes written in place, or a drop if it did not fit.
    fn reply(&mut self, len: Option<usize>) -> Verdict {
        match len {
            Some(len) => {
                self.stats.replies += 1;
                Verdict::Reply { len }
            }
            None => self.drop(DropReason::TooBig),
        }
    }

    fn is_ours(&self, rx_port: u16, ip: IpAddr) -> bool {
        self.ports.iter().any(|p| p.port == rx_port && p.owns(ip))
    }

    /// ICMP echo (v4 and v6) and IPv6 neighbour discovery for our addresses.
    pub(super) fn icmp(
        &mut self,
        rx_port: u16,
        frame: &mut [u8],
        len: usize,
        l2: &wire::L2,
        now_ns: u64,
    ) -> Verdict {
        if l2.ethertype == ETHERTYPE_IPV4 {
            let ours = wire::peek_ipv4_dst(&frame[..len], l2.l3).map(IpAddr::V4);
            if !ours.is_some_and(|ip| self.is_ours(rx_port, ip)) {
                // Not UDP and not to us (say, the kernel's own TCP on a link it shares with
                // the relay): not for us, whatever the protocol.
                return self.drop(DropReason::NotForUs);
            }
            return match wire::icmp_echo_reply_in_place(&mut frame[..len], l2) {
                Ok(n) => {
                    self.stats.replies += 1;
                    Verdict::Reply { len: n }
                }
                Err(e) => self.drop(e.into()),
            };
        }
        let icmp = match wire::parse_icmp6(&frame[..len], l2) {
            Ok(i) => i,
            Err(e) => return self.drop(e.into()),
        };
        let Some(port) = self
            .ports
            .iter()
            .find(|p| p.port == rx_port && p.ipv6.is_some())
            .cloned()
        else {
            return self.drop(DropReason::NotForUs);
        };
        let ours = port.ipv6.expect("checked");
        let out_l2 = l2.answer_from(port.mac);
        match icmp.kind {
            // Echo request to our address: echo reply with the same identifier, sequence, data.
            ICMPV6_ECHO_REQUEST if icmp.dst == ours => {
                self.reply(wire::write_echo6_reply(frame, &icmp, &out_l2, ours))
            }
            _ if icmp.hop_limit == ndisc::HOP_LIMIT => {
                match Ndisc::parse(&frame[icmp.at..icmp.at + icmp.len]) {
                    //= https://www.rfc-editor.org/rfc/rfc4861#section-7.2.4
                    //# If the Source Address is not the unspecified address and, on link layers
                    //# that have addresses, the solicitation includes a Source Link-Layer Address
                    //# option, then the recipient SHOULD create or update the Neighbor Cache entry
                    Ok(Ndisc::Solicit { target, lladdr }) if target == ours => {
                        let unspecified = icmp.src.is_unspecified();
                        if let Some(mac) = lladdr {
                            if !unspecified {
                                self.learn_from_wire(IpAddr::V6(icmp.src), mac, now_ns);
                            }
                        }
                        //= https://www.rfc-editor.org/rfc/rfc4861#section-7.2.4
                        //# If the source of the solicitation is the unspecified address, the
                        //# node MUST set the Solicited flag to zero and multicast the
                        //# advertisement to the all-nodes address.
                        // Otherwise solicited, to the solicitor; always override, with our
                        // link-layer address as the target option.
                        let (dst, dst_mac, flags) = if unspecified {
                            (ALL_NODES, multicast_mac(&ALL_NODES), ADVERT_OVERRIDE)
                        } else {
                            (icmp.src, l2.src, ADVERT_SOLICITED | ADVERT_OVERRIDE)
                        };
                        let na = Ndisc::Advert {
                            flags,
                            target: ours,
                            lladdr: Some(port.mac),
                        };
                        let out_l2 = wire::L2Out {
                            dst: dst_mac,
                            ..out_l2
                        };
                        self.reply(na.emit(frame, &out_l2, ours, dst))
                    }
                    Ok(Ndisc::Advert {
                        target,
                        lladdr: Some(mac),
                        ..
                    }) => {
                        self.learn_from_wire(IpAddr::V6(target), mac, now_ns);
                        Verdict::Consumed
                    }
                    Ok(Ndisc::Advert { lladdr: None, .. }) => self.drop(DropReason::Malformed),
                    _ => self.drop(DropReason::NotForUs),
                }
            }
            _ => self.drop(DropReason::NotForUs),
        }
    }
}
