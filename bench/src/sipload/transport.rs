//! The load generator's connections: one TLS stream driven in each direction (framed
//! messages in, coalesced writes out), and the UAC's connections to the SBC (bound to the
//! UAC address, with TCP_QUICKACK on request).

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use relay_sip::{Frame, Limits, Message, StreamDecoder};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use super::load::LoadConfig;

/// Drives one stream: messages in go to `on_message`, bytes from `rx` go out (coalesced into
/// one write when several are waiting). Returns why it ended.
pub(super) async fn stream_io<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    quickack: Option<OwnedFd>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    mut on_message: impl FnMut(Message),
) -> String {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut decoder = StreamDecoder::new(Limits::default());
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = match n {
                    Ok(0) => return "closed by peer".into(),
                    Ok(n) => n,
                    Err(e) => return format!("read: {e}"),
                };
                if let Some(fd) = &quickack {
                    // The kernel clears it again as it sees fit: set it after every read.
                    let _ = rustix::net::sockopt::set_tcp_quickack(fd, true);
                }
                let mut data = &buf[..n];
                while !data.is_empty() {
                    let taken = decoder.push(data);
                    data = &data[taken..];
                    loop {
                        match decoder.next_frame() {
                            Ok(None) => break,
                            Ok(Some(Frame::Message(m))) => on_message(*m),
                            Ok(Some(Frame::Invalid(e, _))) => {
                                eprintln!("sip-bench: invalid SIP message ({}) skipped", e.status());
                            }
                            Ok(Some(Frame::Ping)) => out.extend_from_slice(b"\r\n"),
                            Ok(Some(Frame::Pong)) => {}
                            Err(e) => return format!("framing lost: {}", e.reason()),
                        }
                    }
                    if taken == 0 {
                        return "decoder full".into();
                    }
                }
                if !out.is_empty() {
                    if let Err(e) = wr.write_all(&out).await {
                        return format!("write: {e}");
                    }
                    out.clear();
                }
            }
            first = rx.recv() => {
                let Some(first) = first else {
                    let _ = wr.shutdown().await;
                    return "closed by us".into();
                };
                out.extend_from_slice(&first);
                while let Ok(more) = rx.try_recv() {
                    out.extend_from_slice(&more);
                }
                if let Err(e) = wr.write_all(&out).await {
                    return format!("write: {e}");
                }
                if let Err(e) = wr.flush().await {
                    return format!("flush: {e}");
                }
                out.clear();
            }
        }
    }
}

/// A second handle on `tcp`'s socket for `TCP_QUICKACK`, if asked for.
pub(super) fn quickack_fd(cfg: &LoadConfig, tcp: &tokio::net::TcpStream) -> Option<OwnedFd> {
    if !cfg.quickack {
        return None;
    }
    let fd = tcp.as_fd().try_clone_to_owned().ok()?;
    let _ = rustix::net::sockopt::set_tcp_quickack(&fd, true);
    Some(fd)
}

pub(super) type Connected = (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    SocketAddr,
    Option<OwnedFd>,
);

pub(super) async fn connect(cfg: &LoadConfig, connector: &TlsConnector) -> Result<Connected> {
    let socket = match cfg.uac_bind {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket
        .bind(SocketAddr::new(cfg.uac_bind, 0))
        .with_context(|| format!("binding the UAC to {}", cfg.uac_bind))?;
    let tcp = tokio::time::timeout(Duration::from_secs(5), socket.connect(cfg.target))
        .await
        .map_err(|_| anyhow!("connecting to {} timed out", cfg.target))?
        .with_context(|| format!("connecting to {}", cfg.target))?;
    tcp.set_nodelay(true)?;
    let quick = quickack_fd(cfg, &tcp);
    let local = tcp.local_addr()?;
    let name = ServerName::try_from(cfg.server_name.clone())
        .map_err(|e| anyhow!("server name {}: {e}", cfg.server_name))?;
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| anyhow!("TLS handshake with {} timed out", cfg.target))?
        .with_context(|| format!("TLS handshake with {}", cfg.target))?;
    Ok((tls, local, quick))
}
