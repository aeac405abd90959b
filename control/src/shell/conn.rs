//! SIP transport tasks: an accept loop per TCP or TLS listener, one task per connection
//! (framing by `relay_sip::StreamDecoder`, answering RFC 5626 keep-alive pings), one per
//! UDP socket. They parse and hand messages to the event loop, and turn away on their own
//! what `[limits]` refuses ([`Shield`]): connections over the limits, slow or failed TLS
//! handshakes, half-sent and silent connections, new INVITEs over the rate (503), and
//! malformed requests (answered with the parser's status, straight back on the flow).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use relay_sip::{parse_datagram, Datagram, Frame, Message, Refused, StreamDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use relay_b2bua::FlowId;

use super::limits::{ConnPermit, Shield};

/// What a transport task tells the event loop.
#[derive(Debug)]
pub enum ConnEvent {
    /// A message arrived.
    Message {
        /// On which flow.
        flow: FlowId,
        /// From where (UDP: the datagram's source).
        remote: SocketAddr,
        /// The message.
        message: Box<Message>,
    },
    /// A message the parser refused, after the transport task answered it (if it could):
    /// for the metrics.
    Invalid {
        /// On which flow; 0 for a UDP datagram turned away before it had one.
        flow: FlowId,
        /// The status the parser named.
        status: u16,
    },
    /// The connection ended (closed, garbage, a timeout or a failed handshake).
    Closed {
        /// Which.
        flow: FlowId,
        /// Why, for the log.
        why: String,
    },
}

/// Accepts connections on `listener` until the runtime stops: each within the connection
/// limits gets (after a TLS handshake within its limits, when `tls`, with the acceptor in
/// force then: SIGHUP may replace it) a flow from `register` and a task. `register`
/// announces the flow to the event loop and returns its id and the queue of what to send
/// on it; `handshake_done` hears each handshake's result (`ok`, `failed`, `timed_out`).
pub async fn accept_task(
    listener: TcpListener,
    tls: bool,
    acceptor: Arc<RwLock<Option<TlsAcceptor>>>,
    shield: Arc<Shield>,
    events: mpsc::UnboundedSender<ConnEvent>,
    register: impl Fn(SocketAddr) -> (FlowId, mpsc::UnboundedReceiver<Vec<u8>>) + Send + Sync + 'static,
    handshake_done: impl Fn(&'static str) + Send + Sync + 'static,
) {
    let register = Arc::new(register);
    let handshake_done = Arc::new(handshake_done);
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin on the error.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(permit) = shield.admit_connection(remote.ip()) else {
            // Dropping the socket closes it: nothing is read, nothing allocated.
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shield = shield.clone();
        let events = events.clone();
        let register = register.clone();
        if !tls {
            tokio::spawn(async move {
                let (flow, rx) = register(remote);
                run_stream(tcp, flow, remote, shield, events, rx, Some(permit)).await;
            });
            continue;
        }
        let current = acceptor.read().ok().and_then(|a| a.clone());
        let (Some(acceptor), Some(handshake)) = (current, shield.start_handshake()) else {
            tracing::debug!("TLS connection refused: too many handshakes in progress");
            continue;
        };
        let handshake_done = handshake_done.clone();
        tokio::spawn(async move {
            let outcome =
                tokio::time::timeout(shield.tls_handshake_timeout, acceptor.accept(tcp)).await;
            drop(handshake);
            match outcome {
                Ok(Ok(stream)) => {
                    handshake_done("ok");
                    let (flow, rx) = register(remote);
                    run_stream(stream, flow, remote, shield, events, rx, Some(permit)).await;
                }
                Ok(Err(e)) => {
                    handshake_done("failed");
                    shield.count(|c| &c.tls_handshakes_failed);
                    tracing::debug!(error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    handshake_done("timed_out");
                    shield.count(|c| &c.tls_handshakes_timed_out);
                    tracing::debug!("TLS handshake timed out");
                }
            }
        });
    }
}

/// Runs one outbound stream connection (ours, to a trunk peer) until it closes or
/// `outgoing` is dropped.
pub async fn stream_task<S>(
    stream: S,
    flow: FlowId,
    remote: SocketAddr,
    shield: Arc<Shield>,
    events: mpsc::UnboundedSender<ConnEvent>,
    outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    run_stream(stream, flow, remote, shield, events, outgoing, None).await;
}

/// Runs one stream connection. An inbound one (`permit` is its place among the open
/// connections) must deliver its first message within the message timeout.
async fn run_stream<S>(
    stream: S,
    flow: FlowId,
    remote: SocketAddr,
    shield: Arc<Shield>,
    events: mpsc::UnboundedSender<ConnEvent>,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    permit: Option<ConnPermit>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut decoder = StreamDecoder::new(shield.sip.clone());
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_heard = Instant::now();
    // When the message being received (for an inbound connection: the first) began.
    let mut message_began = permit.is_some().then(Instant::now);
    let why = loop {
        let message_deadline = message_began.map(|t| t + shield.message_timeout);
        let idle_deadline = shield.idle_timeout.map(|d| last_heard + d);
        let deadline = match (message_deadline, idle_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = match n {
                    Ok(0) => break "closed by peer".to_owned(),
                    Ok(n) => n,
                    Err(e) => break format!("read: {e}"),
                };
                let now = Instant::now();
                last_heard = now;
                let mut data = &buf[..n];
                let mut failed = None;
                let mut framed = false;
                while !data.is_empty() {
                    let taken = decoder.push(data);
                    data = &data[taken..];
                    loop {
                        let frame = match decoder.next_frame() {
                            Ok(None) => break,
                            Ok(Some(frame)) => frame,
                            Err(e) => {
                                shield.count(|c| &c.framing_lost);
                                let _ = events.send(ConnEvent::Invalid { flow, status: e.status() });
                                if let Some(answer) = decoder
                                    .refused()
                                    .and_then(|r| shield.answer(e, r))
                                {
                                    write_within(&mut wr, &answer, shield.message_timeout).await;
                                }
                                failed = Some(format!("framing lost ({})", e.reason()));
                                break;
                            }
                        };
                        framed = true;
                        match frame {
                            Frame::Message(message) => {
                                if let Some(busy) = shield.refuse_over_rate(&message, remote.ip()) {
                                    if !write_within(&mut wr, &busy, shield.message_timeout).await {
                                        failed = Some("write".to_owned());
                                    }
                                    continue;
                                }
                                let _ = events.send(ConnEvent::Message { flow, remote, message });
                            }
                            Frame::Invalid(e, refused) => {
                                let _ = events.send(ConnEvent::Invalid { flow, status: e.status() });
                                if let Some(answer) = shield.answer(e, &refused) {
                                    if !write_within(&mut wr, &answer, shield.message_timeout).await {
                                        failed = Some("write".to_owned());
                                    }
                                }
                            }
                            Frame::Ping => {
                                if !write_within(&mut wr, b"\r\n", shield.message_timeout).await {
                                    failed = Some("write".to_owned());
                                }
                            }
                            Frame::Pong => {}
                        }
                        if failed.is_some() {
                            break;
                        }
                    }
                    if failed.is_some() || taken == 0 {
                        break;
                    }
                }
                if let Some(why) = failed {
                    if decoder.refused().is_some() {
                        // Framing lost with the peer's bytes maybe unread: closing now would
                        // reset the connection and could discard our answer before the peer
                        // reads it. Send FIN, then read and drop what comes, briefly.
                        let _ = wr.shutdown().await;
                        linger(&mut rd).await;
                    }
                    break why;
                }
                // What is left in the decoder is the start of the next message: its clock
                // starts now if a frame ended in this read, else it keeps running.
                message_began = match (decoder.buffered(), framed) {
                    (0, _) => None,
                    (_, true) => Some(now),
                    (_, false) => message_began.or(Some(now)),
                };
            }
            out = outgoing.recv() => {
                let Some(mut bytes) = out else { break "closed by us".to_owned() };
                // What else is already queued goes in the same write (one TLS record, one
                // segment with TCP_NODELAY), up to 64 KiB.
                while bytes.len() < 64 * 1024 {
                    match outgoing.try_recv() {
                        Ok(more) => bytes.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                if !write_within(&mut wr, &bytes, shield.message_timeout).await {
                    break "write failed or stalled".to_owned();
                }
            }
            _ = sleep_until(deadline) => {
                let now = Instant::now();
                if message_deadline.is_some_and(|d| d <= now) {
                    shield.count(|c| &c.message_timeouts);
                    break "message unfinished within the message timeout".to_owned();
                }
                shield.count(|c| &c.idle_timeouts);
                break "idle".to_owned();
            }
        }
    };
    let _ = wr.shutdown().await;
    drop(permit);
    let _ = events.send(ConnEvent::Closed { flow, why });
}

/// Writes `bytes`, giving up after `timeout`: a peer that does not read must not hold
/// the task (and so its timeouts) up. Whether all was written.
async fn write_within<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8], timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, wr.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// Reads and drops what the peer still sends, for at most 2 s or 256 KiB, so that the
/// close that follows is a FIN, not a reset.
async fn linger<R: AsyncRead + Unpin>(rd: &mut R) {
    let mut sink = [0u8; 4096];
    let mut left: usize = 256 * 1024;
    let drain = async {
        while left > 0 {
            match rd.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

/// Sleeps until `deadline`, or for ever.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Runs one UDP socket: datagrams in, each source address its own flow (`flow_of`,
/// asked only for datagrams that are passed on), and datagrams out from `outgoing`.
pub async fn udp_task(
    socket: UdpSocket,
    shield: Arc<Shield>,
    events: mpsc::UnboundedSender<ConnEvent>,
    mut outgoing: mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>,
    flow_of: impl Fn(SocketAddr) -> Option<FlowId>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((n, remote)) = r else { continue };
                // STUN keep-alives start with 0 or 1, which no SIP message does.
                if n == 0 || buf[0] < 2 {
                    continue;
                }
                let reply = match parse_datagram(&buf[..n], &shield.sip) {
                    Ok(Datagram::Message(message)) => {
                        match shield.refuse_over_rate(&message, remote.ip()) {
                            Some(busy) => Some(busy),
                            None => {
                                // No flow: over the UDP flow bounds, dropped (and counted).
                                if let Some(flow) = flow_of(remote) {
                                    let _ = events.send(ConnEvent::Message { flow, remote, message });
                                } else {
                                    shield.count(|c| &c.udp_flows_refused);
                                }
                                None
                            }
                        }
                    }
                    Ok(Datagram::KeepAlive) => None,
                    Err(e) => {
                        let _ = events.send(ConnEvent::Invalid { flow: 0, status: e.status() });
                        let refused = Refused::salvage(&buf[..n], &shield.sip);
                        shield.answer(e, &refused)
                    }
                };
                if let Some(bytes) = reply {
                    let _ = socket.send_to(&bytes, remote).await;
                }
            }
            out = outgoing.recv() => {
                let Some((to, bytes)) = out else { break };
                let _ = socket.send_to(&bytes, to).await;
            }
        }
    }
}
