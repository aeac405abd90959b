//! The I/O shell of `relay-control`: listeners, connections, timers, the data plane's
//! control socket and the CDR store around the sans-I/O B2BUA (`relay-b2bua`). One tokio
//! task (current-thread runtime) owns the B2BUA; transport tasks and the data-plane thread
//! talk to it by message.

pub mod admin;
pub mod anon;
pub mod conn;
pub mod dataplane;
pub mod limits;
pub mod observe;
pub mod records;
pub mod recover;
pub mod sip_trace;
pub mod state;
pub mod timers;
pub mod tls;
pub mod udp_flows;

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

use crate::cdr::trace::Direction as TraceDirection;
use crate::cdr::{CdrConfig, CdrStore, SystemClock};
use crate::config::{ControlConfig, Settings, SipTransport};
use conn::ConnEvent;
use dataplane::{Dataplane, Done, ProgramRequest, StatsRequest};

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
    /// A local file or directory (the state directory, the admin socket) cannot be used.
    #[error("{0}")]
    State(String),
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
    Program(dataplane::ProgramDone),
    Media {
        call: u64,
        counters: Result<Option<CallCounters>, ()>,
    },
    Connected {
        key: (usize, String, u16),
        peer: Option<usize>,
        flow: FlowId,
        info: Result<FlowInfo, String>,
    },
}

/// How long a stopping relay-control waits for the data plane's answers to changes it sent.
const STOP_DRAIN: Duration = Duration::from_secs(5);

/// Runs `relay-control` until `stop` resolves (then until the data plane has answered the
/// changes already sent, at most 5 s).
pub async fn run(
    settings: Settings,
    config_path: Option<std::path::PathBuf>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ShellError> {
    let mut settings = settings;
    let file = &settings.file.clone();
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
            CdrStore::open(
                {
                    let mut config = CdrConfig::new(&c.dir, &c.kek);
                    if let Some(keys) = &c.keys {
                        config.keys_dir = keys.clone();
                    }
                    config
                },
                Arc::new(SystemClock),
            )
            .map_err(|e| ShellError::Cdr(e.to_string()))?,
        ),
        None => None,
    };
    // Just-in-time SIP traces need the CDR store (their keys and retention are its own).
    let tracer = match (&cdr, &file.cdr) {
        (Some(_), Some(c)) => {
            let mut config = CdrConfig::new(&c.dir, &c.kek);
            if let Some(keys) = &c.keys {
                config.keys_dir = keys.clone();
            }
            Some(sip_trace::SipTracer::start(config).map_err(|e| ShellError::Cdr(e.to_string()))?)
        }
        _ => None,
    };

    let (acceptor, mut connectors) = tls_setup(file)?;
    let handshakes: prometheus_client::metrics::family::Family<
        observe::ResultLabels,
        prometheus_client::metrics::counter::Counter,
    > = Default::default();
    let acceptor = Arc::new(std::sync::RwLock::new(acceptor));

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
    let (conn_tx, mut conn_rx) = mpsc::unbounded_channel::<ConnEvent>();
    let (dp_tx, mut dp_rx) = mpsc::unbounded_channel::<Done>();
    let dataplane = Dataplane::start(dp_path, dp_tx)?;
    let next_flow = Arc::new(AtomicU64::new(1));
    let mut flows: HashMap<FlowId, FlowInfo> = HashMap::new();
    let mut udp_sockets: HashMap<SocketAddr, mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>> =
        HashMap::new();
    let udp_flows = Arc::new(std::sync::Mutex::new(udp_flows::UdpFlows::new(
        file.limits.max_udp_flows,
        file.limits.max_udp_flows_per_source,
    )));
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
                        match m.flow(local, remote, || next.fetch_add(1, Ordering::Relaxed)) {
                            udp_flows::UdpFlow::Known(id) => Some(id),
                            udp_flows::UdpFlow::New(id) => {
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
                                Some(id)
                            }
                            udp_flows::UdpFlow::Refused => None,
                        }
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
                let handshakes = handshakes.clone();
                let handshake_done = move |result: &'static str| {
                    handshakes
                        .get_or_create(&observe::ResultLabels {
                            result: result.into(),
                        })
                        .inc();
                };
                tokio::spawn(conn::accept_task(
                    listener,
                    tls,
                    acceptor.clone(),
                    shield.clone(),
                    conn_tx.clone(),
                    register,
                    handshake_done,
                ));
            }
        }
    }

    // Outbound connections per trunk peer, and what waits for them.
    let mut peer_flows: HashMap<(usize, String, u16), FlowId> = HashMap::new();
    let mut pending: HashMap<(usize, String, u16), Vec<Vec<u8>>> = HashMap::new();
    let mut counters_of: HashMap<u64, CallCounters> = HashMap::new();
    // Observation: metrics endpoint and admin socket.
    let metrics = Arc::new(observe::Metrics {
        tls_handshakes: handshakes.clone(),
        ..Default::default()
    });
    let (ask_tx, mut ask_rx) = mpsc::unbounded_channel::<observe::Ask>();
    if let Some(addr) = file.sbc.metrics {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ShellError::Listen {
                address: addr,
                source,
            })?;
        tokio::spawn(observe::serve_metrics(
            listener,
            metrics.clone(),
            ask_tx.clone(),
            file.sbc.dataplane_socket.clone(),
        ));
    }
    let admin = observe::bind_admin(&file.sbc.admin_socket).map_err(|e| {
        ShellError::State(format!(
            "admin socket {}: {e}",
            file.sbc.admin_socket.display()
        ))
    })?;
    tokio::spawn(observe::serve_admin(admin, ask_tx.clone()));
    let mut counted = relay_b2bua::core::Counters::default();
    let mut pseudonyms = anon::Pseudonyms::new(epoch_ms_at_zero / 1000);
    // Calls kept over a restart (see `recover`).
    let mut files = state::FileCallStore::open(&file.sbc.state_dir)
        .map_err(|e| ShellError::State(format!("state_dir: {e}")))?;
    b2bua.set_wall_clock(epoch_ms_at_zero);
    let mut initial = b2bua.start(now_ns());
    initial.extend(
        recover::take_back_calls(
            &mut b2bua,
            &mut files,
            &file.sbc.dataplane_socket,
            epoch_ms_at_zero,
            &now_ns,
        )
        .await
        .map_err(|e| ShellError::State(format!("state_dir: {e}")))?,
    );
    // From here on the kept-call files are written off the event loop.
    let mut store: Box<dyn state::CallStore> = Box::new(
        state::BackgroundCallStore::spawn(files)
            .map_err(|e| ShellError::State(format!("call-store thread: {e}")))?,
    );
    tracing::info!(
        listeners = file.listen.len(),
        trunks = file.trunk.len(),
        workers = map.workers.len(),
        "relay-control ready"
    );
    tokio::pin!(stop);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut timers = timers::TimerQueue::new();
    for action in initial {
        if let Action::Timer { key, at_ns } = action {
            timers.insert(at_ns, key);
        }
    }

    // Data-plane changes sent and not yet answered. On stop, the loop goes on until they
    // are answered (at most STOP_DRAIN): a call that ended just before the stop still gets
    // its final counters and its record.
    let mut programs_in_flight = 0usize;
    // Calls ended since the start (for the admin socket's status).
    let mut calls_ended = 0u64;
    let mut stopping: Option<Instant> = None;
    loop {
        if let Some(since) = stopping {
            if programs_in_flight == 0 || since.elapsed() > STOP_DRAIN {
                if programs_in_flight > 0 {
                    tracing::warn!(
                        programs_in_flight,
                        "stopping with data-plane changes unanswered"
                    );
                }
                break;
            }
        }
        let timer_wait = timers
            .next_deadline()
            .map(|at| Duration::from_nanos(at.saturating_sub(now_ns())));
        let event = tokio::select! {
            _ = &mut stop, if stopping.is_none() => {
                stopping = Some(Instant::now());
                continue;
            }
            _ = tokio::time::sleep(STOP_DRAIN), if stopping.is_some() => continue,
            _ = tokio::time::sleep(timer_wait.unwrap_or(Duration::ZERO)), if timer_wait.is_some() => {
                match timers.pop_due(now_ns()) {
                    Some(key) => Event::Timer(key),
                    None => continue,
                }
            }
            _ = hup.recv() => {
                // SIGHUP: certificates, trust stores and trunk settings again; calls and
                // connections in use go on.
                let Some(path) = &config_path else { continue };
                match reload(path, &settings) {
                    Ok((new, new_acceptor, new_connectors)) => {
                        if let Ok(mut a) = acceptor.write() {
                            *a = new_acceptor;
                        }
                        connectors = new_connectors;
                        b2bua.reconfigure(new.b2bua.clone());
                        settings = new;
                        tracing::info!(path = %path.display(), "configuration reloaded");
                    }
                    Err(e) => tracing::error!(error = %e, "configuration not reloaded; the running one stays"),
                }
                continue;
            }
            Some(e) = ev_rx.recv() => e,
            Some(e) = conn_rx.recv() => Event::Conn(e),
            Some(a) = ask_rx.recv() => {
                match a {
                    observe::Ask::Scrape(done) => {
                        admin::update_gauges(&metrics, &b2bua, &mut counted, cdr.as_ref(), flows.len());
                        for (kind, n) in shield.counters.snapshot().named() {
                            metrics.refusals.get_or_create(&observe::CauseLabels { cause: kind.into() }).set(n as i64);
                        }
                        let _ = done.send(());
                    }
                    observe::Ask::Admin(req, answer) => {
                        let figures = admin::ShellFigures {
                            calls_ended,
                            cdr: cdr.as_ref(),
                            connections: flows.len(),
                        };
                        let _ = answer.send(admin::admin_answer(&b2bua, &req, now_ns(), &figures));
                    }
                }
                continue;
            }
            Some(d) = dp_rx.recv() => match d {
                Done::Program(d) => {
                    programs_in_flight = programs_in_flight.saturating_sub(1);
                    Event::Program(d)
                }
                Done::Stats { call, counters } => Event::Media { call, counters },
            },
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
        let mut actions_after = Vec::new();
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
                metrics
                    .sip_messages
                    .get_or_create(&admin::sip_labels("in", &message))
                    .inc();
                if let Some(t) = &tracer {
                    t.record(
                        TraceDirection::In,
                        || (f.transport.to_string(), remote.to_string()),
                        &message.to_bytes(),
                    );
                }
                b2bua.on_message(&f, *message, now)
            }
            Event::Conn(ConnEvent::Invalid { flow, status }) => {
                metrics
                    .sip_malformed
                    .get_or_create(&observe::CauseLabels {
                        cause: status.to_string(),
                    })
                    .inc();
                // Answered (or not) by the transport task, and counted there too.
                tracing::debug!(flow, status, "malformed SIP message");
                continue;
            }
            Event::Conn(ConnEvent::Closed { flow, why }) => {
                let unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let peer = flows.get(&flow).map(|f| pseudonyms.of(f.remote.ip(), unix));
                tracing::debug!(flow, why, peer, "connection closed");
                flows.remove(&flow);
                peer_flows.retain(|_, f| *f != flow);
                continue;
            }
            Event::Timer(key) => b2bua.on_timer(key, now),
            Event::Media {
                call,
                counters: Ok(counters),
            } => b2bua.on_media(call, counters.as_ref(), now),
            Event::Media {
                counters: Err(()), ..
            } => continue,
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
                key,
                peer,
                flow,
                info,
            } => {
                match info {
                    Ok(info) => {
                        flows.insert(flow, info);
                        peer_flows.insert(key.clone(), flow);
                        if let Some(info) = flows.get(&flow) {
                            for bytes in pending.remove(&key).unwrap_or_default() {
                                send_on(info, bytes);
                            }
                        }
                    }
                    Err(why) => {
                        tracing::warn!(trunk = key.0, peer = ?peer, why, "cannot reach trunk peer");
                        pending.remove(&key);
                        if let Some(peer) = peer {
                            actions_after = b2bua.peer_unreachable(key.0, peer, now);
                        }
                    }
                }
                if actions_after.is_empty() {
                    continue;
                }
                std::mem::take(&mut actions_after)
            }
        };
        for action in actions {
            match action {
                Action::Send { to, message } => {
                    metrics
                        .sip_messages
                        .get_or_create(&admin::sip_labels("out", &message))
                        .inc();
                    let bytes = message.to_bytes();
                    if let Some(t) = &tracer {
                        t.record(
                            TraceDirection::Out,
                            || describe_destination(&to, &flows, &settings, &message),
                            &bytes,
                        );
                    }
                    match to {
                        Destination::Flow(id) => {
                            if let Some(info) = flows.get(&id) {
                                send_on(info, bytes);
                            }
                        }
                        Destination::Peer { .. } | Destination::Target { .. } => {
                            let Some((trunk, peer_index, p)) = target_of(&settings, &to, &message)
                            else {
                                tracing::warn!(?to, "no address for a message");
                                continue;
                            };
                            let t = &settings.b2bua.trunks[trunk];
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
                            let key = (trunk, p.host.clone(), p.port);
                            if let Some(info) = peer_flows.get(&key).and_then(|f| flows.get(f)) {
                                send_on(info, bytes);
                                continue;
                            }
                            let waiting = pending.entry(key.clone()).or_default();
                            let first = waiting.is_empty();
                            waiting.push(bytes);
                            if first {
                                connect(
                                    key,
                                    peer_index,
                                    p,
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
                    programs_in_flight += 1;
                    dataplane.program(ProgramRequest { call, op, then })
                }
                Action::Persist(record) => {
                    if let Err(e) = store.save(&record) {
                        tracing::error!(error = %e, call = record.dataplane_id, "call not kept for a restart");
                    }
                }
                Action::Forget(id) => {
                    if let Err(e) = store.forget(&id) {
                        tracing::error!(error = %e, call = id, "kept call record not removed");
                    }
                }
                Action::QueryMedia { call, dataplane_id } => dataplane.stats(StatsRequest {
                    call,
                    id: dataplane_id,
                }),
                Action::Timer { key, at_ns } => timers.insert(at_ns, key),
                Action::Ended(end) => {
                    calls_ended += 1;
                    metrics
                        .calls_ended
                        .get_or_create(&observe::CauseLabels {
                            cause: if end.reason == "media timeout" {
                                "media_timeout".into()
                            } else {
                                end.status.to_string()
                            },
                        })
                        .inc();
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
    // Close every SIP connection properly (TLS close_notify, then FIN): dropping a
    // connection's sender ends its task, which shuts the stream down. Wait for them, briefly.
    let streams = flows
        .values()
        .filter(|f| matches!(f.handle, FlowHandle::Stream(_)))
        .count();
    drop(flows);
    let closing = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut closed = 0;
    while closed < streams {
        match tokio::time::timeout_at(closing, conn_rx.recv()).await {
            Ok(Some(ConnEvent::Closed { .. })) => closed += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    tracing::info!(
        active_calls = b2bua.active_calls(),
        refusals = %shield.counters.snapshot(),
        connections_closed = closed,
        "relay-control stopping"
    );
    Ok(())
}

/// TLS for `file`: the acceptor (our identity; client certificates verified against the
/// trust stores of trunks with `verify_client`), a connector per TLS trunk, and warnings
/// about our certificate, logged.
fn tls_setup(
    file: &ControlConfig,
) -> Result<(Option<TlsAcceptor>, HashMap<usize, TlsConnector>), ShellError> {
    let identity = match &file.tls {
        Some(t) => Some(tls::Identity::load(&t.certificate, &t.private_key)?),
        None => None,
    };
    if let Some(id) = &identity {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for w in tls::certificate_warnings(id, &file.sbc.fqdn, now) {
            tracing::warn!("{w}");
        }
    }
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
    Ok((acceptor, connectors))
}

/// Reads `path` again for SIGHUP. What needs a restart to change (listeners, the data
/// plane's socket, media ports, the trunks' names and order) is refused with its name.
#[allow(clippy::type_complexity)]
fn reload(
    path: &std::path::Path,
    running: &Settings,
) -> Result<(Settings, Option<TlsAcceptor>, HashMap<usize, TlsConnector>), String> {
    let new = ControlConfig::load(path).map_err(|e| e.to_string())?;
    let names = |s: &Settings| {
        s.file
            .trunk
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    let listeners = |s: &Settings| {
        s.file
            .listen
            .iter()
            .map(|l| (format!("{:?}", l.transport), l.address))
            .collect::<Vec<_>>()
    };
    if listeners(&new) != listeners(running) {
        return Err("the listeners changed: that needs a restart".into());
    }
    if new.file.limits != running.file.limits {
        return Err("[limits] changed: that needs a restart".into());
    }
    if names(&new) != names(running) {
        return Err("the trunks' names or order changed: that needs a restart".into());
    }
    if new.media_ports != running.media_ports
        || new.file.sbc.dataplane_socket != running.file.sbc.dataplane_socket
    {
        return Err("media_ports or dataplane_socket changed: that needs a restart".into());
    }
    let (acceptor, connectors) = tls_setup(&new.file).map_err(|e| e.to_string())?;
    Ok((new, acceptor, connectors))
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
/// Where a message to `to` goes: its trunk, the configured peer it is (if one), and the
/// host, port and transport to use (a `Target` takes them from the Request-URI).
/// The transport and peer a message goes to, for the SIP trace.
fn describe_destination(
    to: &Destination,
    flows: &HashMap<FlowId, FlowInfo>,
    settings: &Settings,
    message: &relay_sip::Message,
) -> (String, String) {
    match to {
        Destination::Flow(id) => flows.get(id).map_or_else(
            || ("?".into(), "a closed connection".into()),
            |f| (f.transport.to_string(), f.remote.to_string()),
        ),
        _ => target_of(settings, to, message).map_or_else(
            || ("?".into(), "no address".into()),
            |(_, _, p)| (p.transport.to_string(), format!("{}:{}", p.host, p.port)),
        ),
    }
}

fn target_of(
    settings: &Settings,
    to: &Destination,
    message: &relay_sip::Message,
) -> Option<(usize, Option<usize>, relay_b2bua::config::PeerConfig)> {
    match *to {
        Destination::Peer { trunk, peer } => {
            let p = settings.b2bua.trunks.get(trunk)?.peers.get(peer)?.clone();
            Some((trunk, Some(peer), p))
        }
        Destination::Target { trunk } => {
            let t = settings.b2bua.trunks.get(trunk)?;
            let uri = message.request_uri()?.as_sip()?;
            let transport = match uri.param("transport").flatten() {
                Some(tr) => Transport::parse(tr).ok()?,
                None => t
                    .peers
                    .first()
                    .map_or(Transport::Udp, |p| p.transport.clone()),
            };
            let host = uri.host().to_string();
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port().unwrap_or(if transport == Transport::Tls {
                5061
            } else {
                5060
            });
            let peer = t
                .peers
                .iter()
                .position(|p| p.host == host && p.port == port);
            Some((
                trunk,
                peer,
                relay_b2bua::config::PeerConfig {
                    host,
                    port,
                    transport,
                },
            ))
        }
        Destination::Flow(_) => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn connect(
    key: (usize, String, u16),
    peer: Option<usize>,
    p: relay_b2bua::config::PeerConfig,
    settings: &Settings,
    tls: Option<TlsConnector>,
    next_flow: Arc<AtomicU64>,
    conn_tx: mpsc::UnboundedSender<ConnEvent>,
    ev_tx: mpsc::UnboundedSender<Event>,
    shield: Arc<limits::Shield>,
) {
    let trunk = key.0;
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
            // SIP messages are small and each waits for an answer: Nagle's algorithm against a
            // peer that delays its ACKs would hold each one up to 40 ms (measured: bench/RESULTS.md).
            let _ = tcp.set_nodelay(true);
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
            key,
            peer,
            flow: id,
            info,
        });
    });
}
