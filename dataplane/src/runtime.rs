//! Building the relay's topology on a running EAL and running it: ports opened with their
//! queues and steering (RSS or software dispatch), one [`Relay`] per worker with the calls of a
//! sessions file placed on their owners, the control socket, the dispatch rings, and the
//! workers launched on their lcores. Returns the final counters when the workers stop.
//!
//! The binary (`main.rs`) parses the command line and prints; everything that touches DPDK to
//! run the relay is here.

use std::path::Path;
use std::sync::Arc;

use relay_session::stats::{
    CoreMap, CorePort, CoreWorker, FinalCounters, Steering, WorkerCounters,
};

use crate::config::PortSpec;
use crate::control_socket;
use crate::cores::RxMap;
use crate::dpdk::{DpdkError, Eal, MacAddr, MbufRing, PktMbufPool, Port, PortConfig};
use crate::relay::{PortAddr, Relay, RelayConfig};
use crate::rss;
use crate::session::SessionsFile;
use crate::worker;

/// Why the relay could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A configuration that cannot work here, and what to do.
    #[error("{0}")]
    Refused(String),
    /// A DPDK call failed while doing `what`.
    #[error("{what}")]
    Dpdk {
        /// What was being done.
        what: String,
        /// DPDK's error.
        #[source]
        source: DpdkError,
    },
    /// The control socket could not be served.
    #[error("control socket {path}")]
    ControlSocket {
        /// Its path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Some workers failed.
    #[error("the workers on lcores {0:?} failed")]
    Workers(Vec<u32>),
}

fn dpdk(what: impl Into<String>) -> impl FnOnce(DpdkError) -> RunError {
    let what = what.into();
    move |source| RunError::Dpdk { what, source }
}

/// What to run.
pub struct RunOptions<'a> {
    /// The ports, in `--port` order.
    pub ports: &'a [PortSpec],
    /// Which worker polls which receive queue (`--map`), if given.
    pub map: Option<&'a RxMap>,
    /// Neighbours and calls to install before the first packet.
    pub sessions: Option<&'a SessionsFile>,
    /// Where to serve the control socket.
    pub control: Option<&'a Path>,
    /// When the workers stop.
    pub limits: worker::Limits<'a>,
}

/// Builds the topology for `options` on `eal`, runs the workers until `options.limits` stops
/// them, and returns the final counters. Start-up lines (ports, steering, calls installed)
/// go to `report`.
pub fn run(
    eal: &Eal,
    options: &RunOptions<'_>,
    report: &mut dyn FnMut(String),
) -> Result<FinalCounters, RunError> {
    let port_opts = options.ports;
    let map = options.map;
    let doc = options.sessions;
    let control_path = options.control;
    let limits = &options.limits;
    // Workers: the planned cores, else the EAL's worker lcores (`-l`/`--lcores` passed
    // through), else the main lcore itself.
    let worker_lcores: Vec<u32> = match eal.worker_lcores() {
        w if w.is_empty() => vec![eal.lcore_id()],
        w => w,
    };
    let on_main = worker_lcores == [eal.lcore_id()];
    let nw = worker_lcores.len();
    if let Some(map) = &map {
        for core in map.cores() {
            if !worker_lcores.contains(&core) {
                return Err(RunError::Refused(format!(
                    "--map names core {core}, which is not a worker lcore of the EAL (workers: {:?}); with --lcores, every CORE in --map must be one of its worker lcores",
                    worker_lcores
                )));
            }
        }
    }
    let pool = PktMbufPool::create(
        eal,
        "relay",
        16383 * nw as u32,
        256,
        PktMbufPool::default_data_room(),
        -1,
    )
    .map_err(dpdk("creating the mbuf pool (try a larger -m)"))?;
    let mut opened = Vec::new();
    let mut addrs = Vec::new();
    let mut placement = rss::Placement::new(nw as u16);
    let mut reta_sizes = Vec::new();
    // Per port: the receive queues each worker polls, and whether the workers that
    // receive hand packets over (software dispatch) rather than the NIC steering them.
    let mut rx_of: Vec<Vec<Vec<u16>>> = Vec::new();
    let mut dispatched: Vec<bool> = Vec::new();
    for (pi, p) in port_opts.iter().enumerate() {
        let id = Port::id_by_name(eal, &p.name).map_err(dpdk(format!(
            "port {}: pass it with --vdev or bind the NIC",
            p.name
        )))?;
        // Several workers: RSS on the UDP destination port if the port has it, else
        // software dispatch (see worker::Handoff): a receive queue per worker where the
        // port has enough (however it spreads packets over them), else one, and the
        // workers that receive hand each frame to its owner. An explicit --map says
        // which worker polls which queue; unless that is queue i on worker i of a port
        // with RSS, its ports are shared by dispatch.
        let caps = Port::caps(eal, id).map_err(dpdk(format!("querying {}", p.name)))?;
        if usize::from(caps.max_tx_queues) < nw {
            return Err(RunError::Refused(format!(
                "port {}: {nw} workers need {nw} transmit queues, it has {}; use fewer workers",
                p.name, caps.max_tx_queues
            )));
        }
        let polls: Vec<Vec<u16>> = match &map {
            Some(map) => worker_lcores
                .iter()
                .map(|&l| map.queues_of(pi, l))
                .collect(),
            None if usize::from(caps.max_rx_queues) >= nw => {
                (0..nw as u16).map(|q| vec![q]).collect()
            }
            None => (0..nw)
                .map(|w| if w == 0 { vec![0] } else { Vec::new() })
                .collect(),
        };
        let rx_queues = polls.iter().map(Vec::len).sum::<usize>() as u16;
        if rx_queues > caps.max_rx_queues {
            return Err(RunError::Refused(format!(
                "port {}: --map gives it {rx_queues} receive queues, it has {}",
                p.name, caps.max_rx_queues
            )));
        }
        let rss = nw > 1 && caps.rss_udp && rx_queues > 1;
        let one_each = polls
            .iter()
            .enumerate()
            .all(|(w, q)| q.as_slice() == [w as u16]);
        let dispatch = nw > 1 && !(rss && one_each);
        let config = PortConfig {
            promiscuous: true,
            rx_queues,
            tx_queues: nw as u16,
            rss_udp_dst_port: rss,
            // Enabled only if the device has them (the port says which it enabled).
            udp_checksum_check: p.checksum_offload,
            udp_checksum_offload: p.checksum_offload,
            ..PortConfig::default()
        };
        let port =
            Port::open(eal, id, &config, pool).map_err(dpdk(format!("opening {}", p.name)))?;
        let mac = p.mac.unwrap_or_else(|| match port.mac() {
            MacAddr([0, 0, 0, 0, 0, 0]) => [0x02, 0, 0, 0, 0, id as u8],
            m => m.0,
        });
        let udp_checksum_offload = port.completes_udp_checksums();
        let udp_checksum_check = port.checks_udp_checksums();
        // The first address carries the IPv6 one; the others are IPv4 aliases on the
        // same port (ARP answered for each, streams on each).
        for (i, ipv4) in p.ipv4_addrs().enumerate() {
            addrs.push(PortAddr {
                port: id,
                mac,
                ipv4,
                prefix_len: p.prefix_len,
                gateway: p.gateway,
                vlan: p.vlan,
                ipv6: p.ipv6.filter(|_| i == 0).map(|(a, _)| a),
                prefix6_len: p.ipv6.map_or(64, |(_, l)| l),
                gateway6: p.gateway6.filter(|_| i == 0),
                udp_checksum_offload,
            });
        }
        let v6 = p.ipv6.map_or(String::new(), |(a, l)| format!(", {a}/{l}"));
        let steering = match (nw, dispatch) {
            (1, _) => String::new(),
            (_, false) => ", RSS on the UDP destination port".into(),
            (_, true) => {
                let receivers: Vec<String> = polls
                    .iter()
                    .enumerate()
                    .filter(|(_, q)| !q.is_empty())
                    .map(|(w, _)| w.to_string())
                    .collect();
                let (who, verbs) = match receivers.as_slice() {
                    [one] => (format!("worker {one}"), "receives and hands"),
                    many => (format!("workers {}", many.join(",")), "receive and hand"),
                };
                format!(
                    ", {}software dispatch: {who} {verbs} packets to their workers",
                    if rss {
                        "RSS over the queues, "
                    } else {
                        "no RSS, "
                    },
                )
            }
        };
        report(format!(
            "port {}: id {id}, {}/{}{}{v6}, mac {}, {rx_queues} rx / {nw} tx queue(s){steering}, UDP checksums {} in, {} out",
            p.name,
            p.ipv4,
            p.prefix_len,
            if p.ipv4_count > 1 {
                format!(" and the {} addresses after it", p.ipv4_count - 1)
            } else {
                String::new()
            },
            MacAddr(mac),
            if udp_checksum_check {
                "checked by the NIC"
            } else {
                "checked in software"
            },
            if udp_checksum_offload {
                "completed by the NIC"
            } else {
                "summed in software"
            }
        ));
        // The table the owner of a destination port is computed with: the NIC's
        // where it steers, else the software dispatch's (worker::hand_over).
        let reta_size = if dispatch {
            rss::SOFTWARE_RETA_SIZE
        } else {
            port.reta_size()
        };
        reta_sizes.push(if nw == 1 { 0 } else { reta_size });
        for ipv4 in p.ipv4_addrs() {
            placement.add_address(std::net::IpAddr::V4(ipv4), reta_size);
        }
        if let Some((v6, _)) = p.ipv6 {
            placement.add_address(std::net::IpAddr::V6(v6), reta_size);
        }
        rx_of.push(polls);
        dispatched.push(dispatch);
        opened.push(port);
    }
    // A call belongs to the worker all its local ports, RTP and RTCP, map to (RSS or
    // software dispatch on the UDP destination port); see relay_proto::rss.
    let steer = move |call: &crate::session::CallSpec| -> Result<usize, String> {
        placement.place(call).map_err(|e| e.to_string())
    };
    let mut relays: Vec<Relay> = (0..nw)
        .map(|_| Relay::new(addrs.clone(), RelayConfig::default()))
        .collect();
    let channels: Vec<_> = (0..nw)
        .map(|_| crossbeam_channel::bounded::<worker::ControlMsg>(1024))
        .collect();
    let mut owners = Vec::new();
    if let Some(doc) = &doc {
        let neighbours = SessionsFile {
            version: doc.version,
            neighbours: doc.neighbours.clone(),
            calls: Vec::new(),
        };
        for r in &mut relays {
            r.install(&neighbours)
                .map_err(|e| RunError::Refused(format!("installing the static neighbours: {e}")))?;
        }
        for call in &doc.calls {
            let w = steer(call).map_err(|e| RunError::Refused(format!("sessions file: {e}")))?;
            relays[w]
                .add_call(call)
                .map_err(|e| RunError::Refused(format!("sessions file: call {}: {e}", call.id)))?;
            owners.push((call.id.clone(), w));
        }
        report(format!(
            "installed {} calls from the sessions file",
            doc.calls.len()
        ));
    }
    let router = Arc::new(control_socket::Router::new(
        channels.iter().map(|(tx, _)| tx.clone()).collect(),
        steer,
    ));
    for (id, w) in &owners {
        router.register(id, *w);
    }
    // How packets reach each worker: the only worker, RSS, or software dispatch
    // (workers receive on the queues they poll and hand packets to their owners).
    let core_map = CoreMap {
        main_lcore: eal.lcore_id(),
        workers: worker_lcores
            .iter()
            .enumerate()
            .map(|(i, &lcore)| CoreWorker {
                lcore,
                ports: port_opts
                    .iter()
                    .enumerate()
                    .map(|(pi, p)| CorePort {
                        name: p.name.clone(),
                        queue: i as u16,
                        rx_queues: rx_of[pi][i].clone(),
                        steering: match (nw, dispatched[pi]) {
                            (1, _) => Steering::Single,
                            (_, false) => Steering::Rss,
                            (_, true) => Steering::Dispatch,
                        },
                        addresses: std::iter::once(std::net::IpAddr::V4(p.ipv4))
                            .filter(|a| !a.is_unspecified())
                            .chain(p.ipv6.map(|(a, _)| std::net::IpAddr::V6(a)))
                            .collect(),
                        reta_size: reta_sizes[pi],
                    })
                    .collect(),
            })
            .collect(),
    };
    if let Some(path) = &control_path {
        control_socket::serve(path, router.clone(), core_map).map_err(|source| {
            RunError::ControlSocket {
                path: path.display().to_string(),
                source,
            }
        })?;
        report(format!("control socket {}", path.display()));
    }
    {
        // Transmit queue w of every port, and the receive queues the map gives it, go
        // to worker w.
        let port_ids: Vec<u16> = opened.iter().map(Port::id).collect();
        let mut handles: Vec<_> = Vec::new();
        for (port, polls) in opened.iter_mut().zip(&rx_of) {
            let name = port.id();
            handles.push(
                port.queue_handles_with(polls)
                    .map_err(dpdk(format!("port {name}: receive queues")))?
                    .into_iter(),
            );
        }
        let mut per_worker: Vec<Vec<_>> = (0..nw)
            .map(|_| handles.iter_mut().filter_map(Iterator::next).collect())
            .collect();
        // Per worker, the ports on which it receives for others (software dispatch).
        let dispatch_ports: Vec<Vec<u16>> = (0..nw)
            .map(|w| {
                port_ids
                    .iter()
                    .enumerate()
                    .filter(|&(pi, _)| dispatched[pi] && !rx_of[pi][w].is_empty())
                    .map(|(_, &id)| id)
                    .collect()
            })
            .collect();
        // Software dispatch rings, one per (receiving worker, owning worker) pair.
        let mut rings = Vec::new();
        for from in (0..nw).filter(|&w| !dispatch_ports[w].is_empty()) {
            for to in (0..nw).filter(|&to| to != from) {
                let ring = MbufRing::create(eal, &format!("handoff{from}to{to}"), 4096)
                    .map_err(dpdk("creating the dispatch rings (try a larger -m)"))?;
                rings.push((from, to, ring));
            }
        }
        let mut handoffs: Vec<worker::Handoff<'_, '_>> = (0..nw)
            .map(|w| worker::Handoff {
                me: w,
                workers: nw as u16,
                dispatch_ports: dispatch_ports[w].clone(),
                to: (0..nw).map(|_| None).collect(),
                from: Vec::new(),
                peers: channels
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != w)
                    .map(|(_, (tx, _))| tx.clone())
                    .collect(),
            })
            .collect();
        for (from, to, ring) in &mut rings {
            let (producer, consumer) = ring.ends();
            handoffs[*from].to[*to] = Some(producer);
            handoffs[*to].from.push(consumer);
        }
        if on_main {
            worker::run(
                eal,
                pool,
                &mut per_worker[0],
                &mut relays[0],
                Some(&channels[0].1),
                &mut handoffs[0],
                limits,
            );
        } else {
            let eal_ref = eal;
            let limits_ref = limits;
            let ((), failed) = eal.scope(|scope| {
                for ((((queues, relay), (_, rx)), handoff), &lcore) in per_worker
                    .iter_mut()
                    .zip(relays.iter_mut())
                    .zip(channels.iter())
                    .zip(handoffs.iter_mut())
                    .zip(&worker_lcores)
                {
                    if let Err(e) = scope.launch(lcore, move || {
                        worker::run(eal_ref, pool, queues, relay, Some(rx), handoff, limits_ref)
                    }) {
                        eprintln!("relay-dataplane: cannot start the worker on lcore {lcore}: {e}");
                    }
                }
            });
            if !failed.is_empty() {
                return Err(RunError::Workers(failed));
            }
        }
    }
    let summary = FinalCounters {
        worker: WorkerCounters::sum(
            relays
                .iter()
                .map(|r| control_socket::worker_counters(&r.stats))
                .collect(),
        ),
        workers: relays
            .iter()
            .map(|r| control_socket::worker_counters(&r.stats))
            .collect(),
        calls: relays
            .iter()
            .flat_map(|r| r.call_ids().into_iter().filter_map(|id| r.call_stats(&id)))
            .map(|c| control_socket::call_counters(&c))
            .collect(),
    };
    drop(opened);
    if let Some(path) = control_path {
        let _ = std::fs::remove_file(path);
    }
    Ok(summary)
}

/// A packet pool and the two looping ring ports `net_ring0` and `net_ring1` (demo, bench).
pub fn ring_pair<'eal>(
    eal: &'eal Eal,
    pool_name: &str,
    mbufs: u32,
) -> Result<(PktMbufPool<'eal>, Port<'eal>, Port<'eal>), RunError> {
    port_pair(
        eal,
        pool_name,
        mbufs,
        ["net_ring0", "net_ring1"],
        ["net_ring0", "net_ring1"],
    )
}

/// A packet pool of `mbufs` and two distinct ports opened with the default configuration;
/// `roles` name them in errors (e.g. "port A (net_ring9): pass it with --vdev").
pub fn port_pair<'eal>(
    eal: &'eal Eal,
    pool_name: &str,
    mbufs: u32,
    roles: [&str; 2],
    names: [&str; 2],
) -> Result<(PktMbufPool<'eal>, Port<'eal>, Port<'eal>), RunError> {
    let pool = PktMbufPool::create(
        eal,
        pool_name,
        mbufs,
        256,
        PktMbufPool::default_data_room(),
        -1,
    )
    .map_err(dpdk("creating the mbuf pool (try a larger -m)"))?;
    let ids = [0, 1].map(|i| {
        let what = if roles[i] == names[i] {
            format!(
                "{}: pass --vdev={} in the EAL arguments",
                names[i], names[i]
            )
        } else {
            format!("port {} ({}): pass it with --vdev", roles[i], names[i])
        };
        Port::id_by_name(eal, names[i]).map_err(dpdk(what))
    });
    let [a, b] = ids;
    let (a, b) = (a?, b?);
    if a == b {
        return Err(RunError::Refused(format!(
            "port {} and port {} are the same device ({})",
            roles[0], roles[1], names[0]
        )));
    }
    let open = |id: u16, name: &str| {
        Port::open(eal, id, &PortConfig::default(), pool).map_err(dpdk(format!("opening {name}")))
    };
    Ok((pool, open(a, names[0])?, open(b, names[1])?))
}
