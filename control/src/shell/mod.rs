//! The I/O shell of `relay-control`: listeners, connections, timers, the data plane's
//! control socket and the CDR store around the sans-I/O B2BUA (`relay-b2bua`). One tokio
//! task (current-thread runtime) owns the B2BUA; transport tasks and the data-plane thread
//! talk to it by message.

pub mod conn;
pub mod dataplane;
pub mod limits;
pub mod records;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay_b2bua::ids::OsIds;
use relay_b2bua::media::OsKeys;
use relay_b2bua::ports::PortAllocator;
use relay_b2bua::{Action, B2bua, Destination, Flow, FlowId, TimerKey};
use relay_proto::rss::Placement;
use relay_session::stats::CallCounters;
use relay_sip::{Limits, Transport};
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::cdr::{CdrConfig, CdrStore, SystemClock};
use crate::config::{Settings, SipTransport};
use conn::ConnEvent;
use dataplane::{Dataplane, ProgramDone, ProgramRequest};

/// Why the shell could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShellError {
    /// A listener could not be opened.
    #[error("listen on {address}: {source}")]
    Listen {
        /// Where.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// The data plane did not answer.
    #[error("data plane control socket {path}: {detail}")]
    Dataplane {
        /// The socket.
        path: String,
        /// Why.
        detail: String,
    },
    /// The CDR store could not be opened.
    #[error("CDR store: {0}")]
    Cdr(String),
    /// Something else of the operating system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

enum FlowHandle {
    Stream(mpsc::UnboundedSender<Vec<u8>>),
    Udp {
        socket: mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>,
        remote: SocketAddr,
    },
}

struct FlowInfo {
    handle: FlowHandle,
    transport: Transport,
    remote: SocketAddr,
}

enum Event {
    Conn(ConnEvent),
    Timer(TimerKey),
    Program(ProgramDone),
    Connected {
        trunk: usize,
        peer: usize,
        flow: FlowId,
        info: Result<FlowInfo, String>,
    },
}

/// Runs `relay-control` until `stop` resolves.
pub async fn run(
    settings: Settings,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ShellError> {
    let file = &settings.file;
    // [limits]: connection, handshake, timeout and INVITE-rate limits (shell/limits.rs).
    let shield = limits::Shield::new(&file.limits, Limits::default(), &file.sbc.fqdn);
    limits::spawn_reporter(shield.clone(), Duration::from_secs(60));
    let start = Instant::now();
    let epoch_ms_at_zero = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let now_ns = move || start.elapsed().as_nanos() as u64;

    // The data plane first: its core map decides where media ports go.
    let dp_path = file.sbc.dataplane_socket.clone();
    let map = tokio::task::spawn_blocking({
        let p = dp_path.clone();
        move || dataplane::core_map(&p, Duration::from_secs(30))
    })
    .await
    .map_err(|e| ShellError::Dataplane {
        path: dp_path.display().to_string(),
        detail: e.to_string(),
    })?
    .map_err(|e| ShellError::Dataplane {
        path: dp_path.display().to_string(),
        detail: e.to_string(),
    })?;
    let mut placement = Placement::new(map.workers.len() as u16);
    if let Some(first) = map.workers.first() {
        for port in &first.ports {
            for a in &port.addresses {
                placement.add_address(*a, port.reta_size);
            }
        }
    }
    for t in &settings.b2bua.trunks {
        if placement
            .worker_for(SocketAddr::new(t.media_address, settings.media_ports.0))
            .is_none()
        {
            return Err(ShellError::Dataplane {
                path: dp_path.display().to_string(),
                detail: format!(
                    "trunk {}: media_address {} is not an address of the data plane",
                    t.name, t.media_address
                ),
            });
        }
    }
    let ports = PortAllocator::new(
        placement,
        settings.media_ports.0,
        settings.media_ports.1,
        file.sbc.port_quarantine_s * 1_000_000_000,
    );
    let mut b2bua = B2bua::new(
        settings.b2bua.clone(),
        ports,
        Box::new(OsIds),
        Box::new(OsKeys),
    );

    let cdr = match &file.cdr {
        Some(c) => Some(
            CdrStore::open(CdrConfig::new(&c.dir, &c.kek), Arc::new(SystemClock))
                .map_err(|e| ShellError::Cdr(e.to_string()))?,
        ),
        None => None,
    };

    // TLS: our identity, the union of the trunks' trust stores for client certificates,
    // and per trunk a client configuration.
    let identity = match &file.tls {
        Some(t) => Some(tls::Identity::load(&t.certificate, &t.private_key)?),
        None => None,
    };
    let mut client_roots = rustls::RootCertStore::empty();
    let mut connectors: HashMap<usize, TlsConnector> = HashMap::new();
    for (i, t) in file.trunk.iter().enumerate() {
        if let (Some(store), Some(id)) = (&t.trust_store, &identity) {
            let roots = tls::trust_store(store)?;
            if t.verify_client {
                for r in roots.roots.iter() {
                    client_roots.roots.push(r.clone());
                }
            }
            connectors.insert(i, TlsConnector::from(tls::client_config(id, roots)?));
        }
    }
    let acceptor = match &identity {
        Some(id) => Some(TlsAcceptor::from(tls::server_config(
            id,
            (!client_roots.is_empty()).then_some(client_roots),
        )?)),
        None => None,
    };

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
    let (conn_tx, mut conn_rx) = mpsc::unbounded_channel::<ConnEvent>();
    let (dp_tx, mut dp_rx) = mpsc::unbounded_channel::<ProgramDone>();
    let dataplane = Dataplane::start(dp_path, dp_tx)?;
    let next_flow = Arc::new(AtomicU64::new(1));
    let mut flows: HashMap<FlowId, FlowInfo> = HashMap::new();
    let mut udp_sockets: HashMap<SocketAddr, mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>> =
        HashMap::new();
    let udp_flows: Arc<std::sync::Mutex<HashMap<(SocketAddr, SocketAddr), FlowId>>> =
        Arc::default();
    let (new_flow_tx, mut new_flow_rx) = mpsc::unbounded_channel::<(FlowId, FlowInfo)>();

    for l in &file.listen {
        match l.transport {
            SipTransport::Udp => {
                let socket =
                    UdpSocket::bind(l.address)
                        .await
                        .map_err(|source| ShellError::Listen {
                            address: l.address,
                            source,
                        })?;
                let (tx, rx) = mpsc::unbounded_channel();
                udp_sockets.insert(l.address, tx.clone());
                let local = l.address;
                let flows_map = udp_flows.clone();
                let next = next_flow.clone();
                let new_flow = new_flow_tx.clone();
                let events = conn_tx.clone();
                tokio::spawn(conn::udp_task(
                    socket,
                    shield.clone(),
                    events,
                    rx,
                    move |remote| {
                        let mut m = flows_map.lock().expect("not poisoned");
                        *m.entry((local, remote)).or_insert_with(|| {
                            let id = next.fetch_add(1, Ordering::Relaxed);
                            let _ = new_flow.send((
                                id,
                                FlowInfo {
                                    handle: FlowHandle::Udp {
                                        socket: tx.clone(),
                                        remote,
                                    },
                                    transport: Transport::Udp,
                                    remote,
                                },
                            ));
                            id
                        })
                    },
                ));
            }
            SipTransport::Tcp | SipTransport::Tls => {
                let listener =
                    TcpListener::bind(l.address)
                        .await
                        .map_err(|source| ShellError::Listen {
                            address: l.address,
                            source,
                        })?;
                let tls = l.transport == SipTransport::Tls;
                let transport = l.transport.sip();
                let next = next_flow.clone();
                let new_flow = new_flow_tx.clone();
                let register = move |remote| {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    let (tx, rx) = mpsc::unbounded_channel();
                    let _ = new_flow.send((
                        id,
                        FlowInfo {
                            handle: FlowHandle::Stream(tx),
                            transport: transport.clone(),
                            remote,
                        },
                    ));
                    (id, rx)
                };
                tokio::spawn(conn::accept_task(
                    listener,
                    tls,
                    acceptor.clone(),
                    shield.clone(),
                    conn_tx.clone(),
                    register,
                ));
            }
        }
    }
    tracing::info!(
        listeners = file.listen.len(),
        trunks = file.trunk.len(),
        workers = map.workers.len(),
        "relay-control ready"
    );

    // Outbound connections per trunk peer, and what waits for them.
    let mut peer_flows: HashMap<(usize, usize), FlowId> = HashMap::new();
    let mut pending: HashMap<(usize, usize), Vec<Vec<u8>>> = HashMap::new();
    let mut counters_of: HashMap<u64, CallCounters> = HashMap::new();
    tokio::pin!(stop);

    loop {
        let event = tokio::select! {
            _ = &mut stop => break,
            Some(e) = ev_rx.recv() => e,
            Some(e) = conn_rx.recv() => Event::Conn(e),
            Some(d) = dp_rx.recv() => Event::Program(d),
            Some((id, info)) = new_flow_rx.recv() => {
                flows.insert(id, info);
                continue;
            }
        };
        // New flows are announced before their first message; take them all first.
        while let Ok((id, info)) = new_flow_rx.try_recv() {
            flows.insert(id, info);
        }
        let now = now_ns();
        // The call whose data-plane change these actions follow (for its final counters).
        let mut origin = None;
        let actions = match event {
            Event::Conn(ConnEvent::Message {
                flow,
                remote,
                message,
            }) => {
                let Some(info) = flows.get(&flow) else {
                    continue;
                };
                let f = Flow {
                    id: flow,
                    transport: info.transport.clone(),
                    remote,
                };
                b2bua.on_message(&f, *message, now)
            }
            Event::Conn(ConnEvent::Closed { flow, why }) => {
                tracing::debug!(flow, why, remote = ?flows.get(&flow).map(|f| f.remote), "connection closed");
                flows.remove(&flow);
                peer_flows.retain(|_, f| *f != flow);
                continue;
            }
            Event::Timer(key) => b2bua.on_timer(key, now),
            Event::Program(done) => match done.result {
                Ok(counters) => {
                    if let Some(c) = counters {
                        counters_of.insert(done.call, c);
                    }
                    origin = Some(done.call);
                    done.then
                }
                Err(why) => {
                    tracing::warn!(call = done.call, why, "data plane refused a change");
                    b2bua.program_failed(done.call, &why, now)
                }
            },
            Event::Connected {
                trunk,
                peer,
                flow,
                info,
            } => {
                match info {
                    Ok(info) => {
                        flows.insert(flow, info);
                        peer_flows.insert((trunk, peer), flow);
                        if let Some(info) = flows.get(&flow) {
                            for bytes in pending.remove(&(trunk, peer)).unwrap_or_default() {
                                send_on(info, bytes);
                            }
                        }
                    }
                    Err(why) => {
                        tracing::warn!(trunk, peer, why, "cannot reach trunk peer");
                        pending.remove(&(trunk, peer));
                    }
                }
                continue;
            }
        };
        for action in actions {
            match action {
                Action::Send { to, message } => {
                    let bytes = message.to_bytes();
                    match to {
                        Destination::Flow(id) => {
                            if let Some(info) = flows.get(&id) {
                                send_on(info, bytes);
                            }
                        }
                        Destination::Peer { trunk, peer } => {
                            let t = &settings.b2bua.trunks[trunk];
                            let p = &t.peers[peer];
                            if p.transport == Transport::Udp {
                                let to = tokio::net::lookup_host((p.host.as_str(), p.port))
                                    .await
                                    .ok()
                                    .and_then(|mut a| a.next());
                                if let (Some(sock), Some(to)) =
                                    (udp_sockets.get(&t.local_signalling), to)
                                {
                                    let _ = sock.send((to, bytes));
                                }
                                continue;
                            }
                            if let Some(info) =
                                peer_flows.get(&(trunk, peer)).and_then(|f| flows.get(f))
                            {
                                send_on(info, bytes);
                                continue;
                            }
                            let waiting = pending.entry((trunk, peer)).or_default();
                            let first = waiting.is_empty();
                            waiting.push(bytes);
                            if first {
                                connect(
                                    trunk,
                                    peer,
                                    &settings,
                                    connectors.get(&trunk).cloned(),
                                    next_flow.clone(),
                                    conn_tx.clone(),
                                    ev_tx.clone(),
                                    shield.clone(),
                                );
                            }
                        }
                    }
                }
                Action::Program { call, op, then } => {
                    dataplane.program(ProgramRequest { call, op, then })
                }
                Action::Timer { key, at_ns } => {
                    let tx = ev_tx.clone();
                    let wait = Duration::from_nanos(at_ns.saturating_sub(now));
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        let _ = tx.send(Event::Timer(key));
                    });
                }
                Action::Ended(end) => {
                    let counters = origin.and_then(|c| counters_of.remove(&c));
                    tracing::info!(call = end.dataplane_id, status = end.status, by = ?end.ended_by, "call ended");
                    if let Some(store) = &cdr {
                        let id = relay_b2bua::ids::IdSource::hex(&mut OsIds, 16);
                        let record = records::record(&end, counters.as_ref(), epoch_ms_at_zero, id);
                        if let Err(e) = store.submit(&record) {
                            tracing::error!(error = %e, "call record not stored");
                        }
                    }
                }
            }
        }
    }
    tracing::info!(
        active_calls = b2bua.active_calls(),
        refusals = %shield.counters.snapshot(),
        "relay-control stopping"
    );
    Ok(())
}

fn send_on(info: &FlowInfo, bytes: Vec<u8>) {
    match &info.handle {
        FlowHandle::Stream(tx) => {
            let _ = tx.send(bytes);
        }
        FlowHandle::Udp { socket, remote } => {
            let _ = socket.send((*remote, bytes));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn connect(
    trunk: usize,
    peer: usize,
    settings: &Settings,
    tls: Option<TlsConnector>,
    next_flow: Arc<AtomicU64>,
    conn_tx: mpsc::UnboundedSender<ConnEvent>,
    ev_tx: mpsc::UnboundedSender<Event>,
    shield: Arc<limits::Shield>,
) {
    let t = &settings.b2bua.trunks[trunk];
    let p = t.peers[peer].clone();
    let server_name = settings.file.trunk[trunk]
        .tls_server_name
        .clone()
        .unwrap_or_else(|| p.host.clone());
    tokio::spawn(async move {
        let id = next_flow.fetch_add(1, Ordering::Relaxed);
        let attempt = async {
            let tcp = tokio::time::timeout(
                Duration::from_secs(5),
                TcpStream::connect((p.host.as_str(), p.port)),
            )
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
            let remote = tcp.peer_addr().map_err(|e| e.to_string())?;
            let (tx, rx) = mpsc::unbounded_channel();
            if p.transport == Transport::Tls {
                let connector = tls.ok_or("no TLS configuration for the trunk")?;
                let name =
                    ServerName::try_from(server_name).map_err(|e| format!("server name: {e}"))?;
                let stream =
                    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
                        .await
                        .map_err(|_| "TLS handshake timed out".to_owned())?
                        .map_err(|e| format!("TLS handshake: {e}"))?;
                tokio::spawn(conn::stream_task(stream, id, remote, shield, conn_tx, rx));
            } else {
                tokio::spawn(conn::stream_task(tcp, id, remote, shield, conn_tx, rx));
            }
            Ok::<_, String>(FlowInfo {
                handle: FlowHandle::Stream(tx),
                transport: p.transport.clone(),
                remote,
            })
        };
        let info = attempt.await;
        let _ = ev_tx.send(Event::Connected {
            trunk,
            peer,
            flow: id,
            info,
        });
    });
}
