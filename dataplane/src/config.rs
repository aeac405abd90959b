//! What the command line configures before DPDK starts: `--port` options and the embedded
//! default EAL arguments.

use std::net::{Ipv4Addr, Ipv6Addr};

use relay_session::parse_mac;

/// EAL arguments used when none are given: two looping ring devices, no hugepages, no PCI.
pub const DEFAULT_EAL_ARGS: &[&str] = &[
    "--no-huge",
    "-m",
    "256",
    "--no-pci",
    "--no-shconf",
    "-l",
    "0",
    "--log-level=notice",
    "--vdev=net_ring0",
    "--vdev=net_ring1",
];

/// `eal`, or [`DEFAULT_EAL_ARGS`] if it is empty.
pub fn eal_args_or_default(eal: Vec<String>) -> Vec<String> {
    if eal.is_empty() {
        DEFAULT_EAL_ARGS.iter().map(|s| s.to_string()).collect()
    } else {
        eal
    }
}

/// One `--port` option:
/// `NAME,ipv4=A.B.C.D/LEN[,addrs=N][,gw=..][,ipv6=ADDR/LEN][,gw6=..][,vlan=ID][,mac=..][,csum=offload|software]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// The DPDK device name (a vdev name or a PCI address).
    pub name: String,
    /// The port's IPv4 address (unspecified if it has only IPv6).
    pub ipv4: Ipv4Addr,
    /// Its prefix length (default 24).
    pub prefix_len: u8,
    /// How many consecutive IPv4 addresses from `ipv4` the port owns (`addrs=N`, default
    /// 1): one address has 64,511 UDP ports, so more concurrent streams than that on one
    /// side take more addresses.
    pub ipv4_count: u16,
    /// The IPv4 gateway.
    pub gateway: Option<Ipv4Addr>,
    /// The IPv6 address and prefix length (default 64).
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// The IPv6 gateway.
    pub gateway6: Option<Ipv6Addr>,
    /// An 802.1Q tag for every frame.
    pub vlan: Option<u16>,
    /// A MAC address to use instead of the device's.
    pub mac: Option<[u8; 6]>,
    /// Let the NIC check and complete UDP checksums where it can (`csum=offload`, the
    /// default) or always do both in software (`csum=software`).
    pub checksum_offload: bool,
}

/// A `--port` option that cannot be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--port {spec}: {problem}")]
pub struct PortSpecError {
    /// The option as given.
    pub spec: String,
    /// What is wrong with it.
    pub problem: String,
}

impl PortSpec {
    /// Parses one `--port` option.
    pub fn parse(spec: &str) -> Result<PortSpec, PortSpecError> {
        let fail = |problem: String| PortSpecError {
            spec: spec.to_owned(),
            problem,
        };
        let mut parts = spec.split(',');
        let name = parts
            .next()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| fail("needs a device name first".into()))?
            .to_owned();
        let mut port = PortSpec {
            name,
            ipv4: Ipv4Addr::UNSPECIFIED,
            prefix_len: 24,
            ipv4_count: 1,
            gateway: None,
            ipv6: None,
            gateway6: None,
            vlan: None,
            mac: None,
            checksum_offload: true,
        };
        let mut has_ipv4 = false;
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| fail(format!("{kv:?} is not key=value")))?;
            match k {
                "ipv4" => {
                    let (a, p) = v.split_once('/').unwrap_or((v, "24"));
                    port.ipv4 = a.parse().map_err(|_| fail(format!("bad ipv4 {a:?}")))?;
                    port.prefix_len = p
                        .parse()
                        .ok()
                        .filter(|p| *p <= 32)
                        .ok_or_else(|| fail(format!("bad prefix {p:?}")))?;
                    has_ipv4 = true;
                }
                "ipv6" => {
                    let (a, p) = v.split_once('/').unwrap_or((v, "64"));
                    let addr = a.parse().map_err(|_| fail(format!("bad ipv6 {a:?}")))?;
                    let len = p
                        .parse()
                        .ok()
                        .filter(|p| *p <= 128)
                        .ok_or_else(|| fail(format!("bad prefix {p:?}")))?;
                    port.ipv6 = Some((addr, len));
                }
                "addrs" => {
                    port.ipv4_count = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=1024).contains(n))
                        .ok_or_else(|| fail(format!("addrs is 1 to 1024, not {v:?}")))?
                }
                "gw" => port.gateway = Some(v.parse().map_err(|_| fail(format!("bad gw {v:?}")))?),
                "gw6" => {
                    port.gateway6 = Some(v.parse().map_err(|_| fail(format!("bad gw6 {v:?}")))?)
                }
                "vlan" => {
                    port.vlan = Some(
                        v.parse()
                            .ok()
                            .filter(|v| (1..4095).contains(v))
                            .ok_or_else(|| fail(format!("bad vlan {v:?}")))?,
                    )
                }
                "mac" => port.mac = Some(parse_mac(v).map_err(|e| fail(e.to_string()))?),
                "csum" => {
                    port.checksum_offload = match v {
                        "offload" => true,
                        "software" => false,
                        _ => return Err(fail(format!("csum is offload or software, not {v:?}"))),
                    }
                }
                _ => {
                    return Err(fail(format!(
                        "unknown key {k:?} (ipv4, addrs, gw, ipv6, gw6, vlan, mac, csum)"
                    )))
                }
            }
        }
        if !has_ipv4 && port.ipv6.is_none() {
            return Err(fail(
                "needs ipv4=A.B.C.D/LEN and/or ipv6=ADDR/LEN".to_owned(),
            ));
        }
        if port.ipv4_count > 1 {
            let last = port.ipv4_addrs().last().unwrap_or(port.ipv4);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(port.prefix_len))
                .unwrap_or(0);
            if !has_ipv4 || u32::from(last) & mask != u32::from(port.ipv4) & mask {
                return Err(fail(format!(
                    "addrs={} from {} leaves its /{} prefix (or runs past 255.255.255.255)",
                    port.ipv4_count, port.ipv4, port.prefix_len
                )));
            }
        }
        Ok(port)
    }

    /// The port's IPv4 addresses: `ipv4` and the `ipv4_count - 1` after it.
    pub fn ipv4_addrs(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let first = u32::from(self.ipv4);
        (0..u32::from(self.ipv4_count))
            .map_while(move |i| first.checked_add(i))
            .map(Ipv4Addr::from)
    }
}

/// The device name of each `--port` option, in order (what `plan` needs of them).
pub fn port_names(ports: &[String]) -> Vec<String> {
    ports
        .iter()
        .map(|p| p.split(',').next().unwrap_or_default().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_port_option_parses() {
        let p = PortSpec::parse(
            "0000:03:00.0,ipv4=198.18.0.1/16,gw=198.18.0.254,ipv6=2001:2::1/48,gw6=2001:2::fe,vlan=100,mac=02:00:00:00:00:01,csum=software",
        )
        .unwrap();
        assert_eq!(p.name, "0000:03:00.0");
        assert_eq!(p.ipv4, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.prefix_len, 16);
        assert_eq!(p.gateway, Some(Ipv4Addr::new(198, 18, 0, 254)));
        assert_eq!(p.ipv6, Some(("2001:2::1".parse().unwrap(), 48)));
        assert_eq!(p.gateway6, Some("2001:2::fe".parse().unwrap()));
        assert_eq!(p.vlan, Some(100));
        assert_eq!(p.mac, Some([2, 0, 0, 0, 0, 1]));
        assert!(!p.checksum_offload);
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let p = PortSpec::parse("net_ring0,ipv4=198.18.0.1").unwrap();
        assert_eq!(p.prefix_len, 24);
        assert_eq!(p.ipv4_count, 1);
        assert!(p.checksum_offload);
        assert_eq!((p.gateway, p.ipv6, p.vlan, p.mac), (None, None, None, None));
        let v6 = PortSpec::parse("net_ring0,ipv6=2001:2::1").unwrap();
        assert_eq!(v6.ipv4, Ipv4Addr::UNSPECIFIED);
        assert_eq!(v6.ipv6.unwrap().1, 64);
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        for (spec, says) in [
            ("", "device name"),
            (",ipv4=198.18.0.1", "device name"),
            ("net_ring0", "needs ipv4"),
            ("net_ring0,ipv4", "not key=value"),
            ("net_ring0,ipv4=300.1.1.1", "bad ipv4"),
            ("net_ring0,ipv4=198.18.0.1/33", "bad prefix"),
            ("net_ring0,ipv6=2001::1/129", "bad prefix"),
            ("net_ring0,ipv4=198.18.0.1,vlan=4095", "bad vlan"),
            ("net_ring0,ipv4=198.18.0.1,vlan=0", "bad vlan"),
            ("net_ring0,ipv4=198.18.0.1,mac=02:00", "MAC"),
            (
                "net_ring0,ipv4=198.18.0.1,csum=maybe",
                "csum is offload or software",
            ),
            (
                "net_ring0,ipv4=198.18.0.1,speed=10G",
                "unknown key \"speed\"",
            ),
            ("net_ring0,ipv4=198.18.0.1,gw=x", "bad gw"),
            ("net_ring0,ipv4=198.18.0.1,addrs=0", "addrs is 1 to 1024"),
            (
                "net_ring0,ipv4=198.18.0.250,addrs=8",
                "leaves its /24 prefix",
            ),
            ("net_ring0,ipv6=2001::1,addrs=2", "leaves its"),
        ] {
            let e = PortSpec::parse(spec).unwrap_err();
            assert!(e.to_string().contains(says), "{spec}: {e}");
            assert!(e.to_string().starts_with("--port "), "{e}");
        }
    }

    #[test]
    fn a_port_can_own_consecutive_addresses() {
        let p = PortSpec::parse("net_memif0,ipv4=198.18.0.1/16,addrs=300").unwrap();
        let all: Vec<Ipv4Addr> = p.ipv4_addrs().collect();
        assert_eq!(all.len(), 300);
        assert_eq!(all[0], Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(all[299], Ipv4Addr::new(198, 18, 1, 44));
    }

    #[test]
    fn names_come_first() {
        assert_eq!(
            port_names(&["0000:03:00.0,ipv4=1.2.3.4".into(), "net_ring1".into()]),
            ["0000:03:00.0", "net_ring1"]
        );
        assert_eq!(
            eal_args_or_default(Vec::new()).len(),
            DEFAULT_EAL_ARGS.len()
        );
        assert_eq!(eal_args_or_default(vec!["-l".into()]), ["-l"]);
    }
}
