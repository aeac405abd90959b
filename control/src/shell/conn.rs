//! SIP transport tasks: one per TCP or TLS connection (framing by `relay_sip::StreamDecoder`,
//! answering RFC 5626 keep-alive pings), one per UDP socket. They parse and hand messages to
//! the event loop; they never decide anything.

use std::net::SocketAddr;

use relay_sip::{parse_datagram, Datagram, Frame, Limits, Message, StreamDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use relay_b2bua::FlowId;

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
    /// A message that framed but failed validation (counted; no response can be built
    /// without its header fields).
    Invalid {
        /// On which flow.
        flow: FlowId,
        /// The status the parser named.
        status: u16,
    },
    /// The connection ended (closed, garbage, or a failed handshake).
    Closed {
        /// Which.
        flow: FlowId,
        /// Why, for the log.
        why: String,
    },
}

/// Runs one stream connection until it closes or `outgoing` is dropped.
pub async fn stream_task<S>(
    stream: S,
    flow: FlowId,
    remote: SocketAddr,
    limits: Limits,
    events: mpsc::UnboundedSender<ConnEvent>,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut decoder = StreamDecoder::new(limits);
    let mut buf = vec![0u8; 16 * 1024];
    let why = loop {
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = match n {
                    Ok(0) => break "closed by peer".to_owned(),
                    Ok(n) => n,
                    Err(e) => break format!("read: {e}"),
                };
                let mut data = &buf[..n];
                let mut failed = None;
                while !data.is_empty() {
                    let taken = decoder.push(data);
                    data = &data[taken..];
                    loop {
                        match decoder.next_frame() {
                            Ok(None) => break,
                            Ok(Some(Frame::Message(message))) => {
                                let _ = events.send(ConnEvent::Message { flow, remote, message });
                            }
                            Ok(Some(Frame::Invalid(e))) => {
                                let _ = events.send(ConnEvent::Invalid { flow, status: e.status() });
                            }
                            Ok(Some(Frame::Ping)) => {
                                if wr.write_all(b"\r\n").await.is_err() {
                                    failed = Some("write".to_owned());
                                }
                            }
                            Ok(Some(Frame::Pong)) => {}
                            Err(e) => {
                                failed = Some(format!("framing lost ({})", e.reason()));
                                break;
                            }
                        }
                    }
                    if failed.is_some() || taken == 0 {
                        break;
                    }
                }
                if let Some(why) = failed {
                    break why;
                }
            }
            out = outgoing.recv() => {
                let Some(bytes) = out else { break "closed by us".to_owned() };
                if let Err(e) = wr.write_all(&bytes).await {
                    break format!("write: {e}");
                }
            }
        }
    };
    let _ = wr.shutdown().await;
    let _ = events.send(ConnEvent::Closed { flow, why });
}

/// Runs one UDP socket: datagrams in, each source address its own flow (`flow_of`), and
/// datagrams out from `outgoing`.
pub async fn udp_task(
    socket: UdpSocket,
    limits: Limits,
    events: mpsc::UnboundedSender<ConnEvent>,
    mut outgoing: mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>,
    flow_of: impl Fn(SocketAddr) -> FlowId,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((n, remote)) = r else { continue };
                let flow = flow_of(remote);
                // STUN keep-alives start with 0 or 1, which no SIP message does.
                if n == 0 || buf[0] < 2 {
                    continue;
                }
                match parse_datagram(&buf[..n], &limits) {
                    Ok(Datagram::Message(message)) => {
                        let _ = events.send(ConnEvent::Message { flow, remote, message });
                    }
                    Ok(Datagram::KeepAlive) => {}
                    Err(e) => {
                        let _ = events.send(ConnEvent::Invalid { flow, status: e.status() });
                    }
                }
            }
            out = outgoing.recv() => {
                let Some((to, bytes)) = out else { break };
                let _ = socket.send_to(&bytes, to).await;
            }
        }
    }
}
