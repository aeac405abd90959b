//! A scripted SIP-over-TLS peer written on our own stack: `relay-sip` for the messages,
//! rustls for TLS (mutual, both directions). A test plays the far end of a trunk with it:
//! Microsoft Teams' SIP proxies, which no Debian package imitates.
//!
//! The peer listens inside a namespace, accepts any number of connections (the SBC opens
//! its own; RFC 5923-style reuse means it may also send requests on ours), and can open
//! connections of its own with [`SipPeer::connect`]. A thread per connection reads and
//! frames messages with [`relay_sip::StreamDecoder`] and writes what the test sends. OPTIONS
//! are answered by the peer itself (with a status the test sets, and recorded with their
//! arrival time, for cadence checks); every other message goes to the test, which waits for
//! the one it expects with [`SipPeer::expect`]: messages that do not match are kept for a
//! later `expect`, so the order of unrelated messages (a NOTIFY racing an INVITE) does not
//! matter.
//!
//! Everything is bounded: every wait has a timeout, and dropping the peer stops its threads
//! and closes its sockets.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use relay_sip::{Frame, Header, HeaderName, Limits, Message, Method, StdHeader, StreamDecoder};
use rustls::pki_types::ServerName;

use crate::error::{Error, Result};
use crate::netns::Netns;

/// How long a connection thread waits for bytes before it looks at its send queue again.
const POLL: Duration = Duration::from_millis(10);

/// Which of the peer's connections a message came on (or goes out on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnId(usize);

/// A message the peer received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The connection it came on; answers go back on it.
    pub conn: ConnId,
    /// When it was read.
    pub at: Instant,
    /// The message.
    pub msg: Message,
}

/// What the connection threads share with the peer.
struct Shared {
    stop: AtomicBool,
    /// The status OPTIONS get (200 for a healthy peer).
    options_status: AtomicU16,
    /// Every OPTIONS received, in order.
    options: Mutex<Vec<Received>>,
    /// Each connection's send queue, indexed by [`ConnId`].
    senders: Mutex<Vec<Sender<Vec<u8>>>>,
    /// Where every message that is not an OPTIONS goes.
    events: Mutex<Sender<Received>>,
    /// Threads to join on drop.
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Connections the far end closed: whether it closed TLS properly (close_notify).
    closes: Mutex<Vec<(ConnId, bool)>>,
}

/// A SIP/TLS peer; see the module docs.
pub struct SipPeer {
    name: String,
    local: SocketAddr,
    shared: Arc<Shared>,
    events: Receiver<Received>,
    /// Received messages no `expect` has taken yet.
    backlog: Vec<Received>,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

impl SipPeer {
    /// A peer called `name` listening for SIP over TLS on `addr` inside `ns`, serving `server`
    /// (which decides whether client certificates are required).
    pub fn listen(
        ns: &Netns,
        name: &str,
        addr: SocketAddr,
        server: Arc<rustls::ServerConfig>,
    ) -> Result<SipPeer> {
        let listener = ns
            .enter(|| TcpListener::bind(addr))?
            .map_err(|e| Error::io(format!("{name}: listening on {addr}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io(format!("{name}: non-blocking listener"), e))?;
        let (tx, events) = mpsc::channel();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            options_status: AtomicU16::new(200),
            options: Mutex::new(Vec::new()),
            senders: Mutex::new(Vec::new()),
            events: Mutex::new(tx),
            threads: Mutex::new(Vec::new()),
            closes: Mutex::new(Vec::new()),
        });
        let accept = {
            let shared = shared.clone();
            let name = name.to_owned();
            std::thread::spawn(move || accept_loop(&name, listener, server, &shared))
        };
        shared.threads.lock().unwrap().push(accept);
        Ok(SipPeer {
            name: name.to_owned(),
            local: addr,
            shared,
            events,
            backlog: Vec::new(),
        })
    }

    /// The address the peer listens on.
    pub fn address(&self) -> SocketAddr {
        self.local
    }

    /// Opens a TLS connection of the peer's own from inside `ns` to `to`, verifying the
    /// server as `server_name` with `client` (which carries the peer's client certificate).
    pub fn connect(
        &mut self,
        ns: &Netns,
        to: SocketAddr,
        server_name: &str,
        client: Arc<rustls::ClientConfig>,
    ) -> Result<ConnId> {
        let tcp = ns
            .enter(|| TcpStream::connect_timeout(&to, Duration::from_secs(3)))?
            .map_err(|e| Error::io(format!("{}: connecting to {to}", self.name), e))?;
        let sni = ServerName::try_from(server_name.to_owned())
            .map_err(|e| Error::Malformed(format!("server name {server_name}: {e}")))?;
        let conn = rustls::ClientConnection::new(client, sni)
            .map_err(|e| Error::Process(format!("{}: TLS client: {e}", self.name)))?;
        Ok(start_connection(&self.name, tcp, conn, &self.shared))
    }

    /// Sets the status the peer answers OPTIONS with from now on (503: an unhealthy peer).
    pub fn set_options_status(&self, status: u16) {
        self.shared.options_status.store(status, Ordering::Relaxed);
    }

    /// The connections the far end has closed so far, and whether each was closed properly
    /// (TLS `close_notify` before the end of the stream).
    pub fn closes(&self) -> Vec<(ConnId, bool)> {
        self.shared.closes.lock().unwrap().clone()
    }

    /// Every OPTIONS received so far, in order.
    pub fn options(&self) -> Vec<Received> {
        self.shared.options.lock().unwrap().clone()
    }

    /// Sends `msg` on `conn`.
    pub fn send(&self, conn: ConnId, msg: &Message) -> Result<()> {
        let senders = self.shared.senders.lock().unwrap();
        let tx = senders
            .get(conn.0)
            .ok_or_else(|| Error::Process(format!("{}: no connection {conn:?}", self.name)))?;
        tx.send(msg.to_bytes())
            .map_err(|_| Error::Process(format!("{}: connection {conn:?} closed", self.name)))
    }

    /// Answers the request `to` with `code`, adding `to_tag` to its To if it has none,
    /// `contact` as Contact, and `sdp` as an `application/sdp` body.
    pub fn respond(
        &self,
        to: &Received,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        contact: Option<&str>,
        sdp: Option<&[u8]>,
    ) -> Result<Message> {
        let mut r = Message::response_to(&to.msg, code, reason)
            .map_err(|e| Error::Malformed(format!("response to {:?}: {e}", to.msg.method())))?;
        if let Some(tag) = to_tag {
            if to.msg.to_addr().map(|a| a.tag().is_none()).unwrap_or(false) {
                r.add_to_tag(tag)
                    .map_err(|e| Error::Malformed(format!("To tag {tag}: {e}")))?;
            }
        }
        if let Some(c) = contact {
            push(&mut r, StdHeader::Contact, c);
        }
        if let Some(body) = sdp {
            push(&mut r, StdHeader::ContentType, "application/sdp");
            r.body = body.to_vec();
        }
        self.send(to.conn, &r)?;
        Ok(r)
    }

    /// The first message (received earlier and not yet taken, or arriving within `wait`)
    /// for which `wanted` holds; the others stay for later.
    pub fn expect(
        &mut self,
        what: &str,
        wait: Duration,
        wanted: impl Fn(&Message) -> bool,
    ) -> Result<Received> {
        if let Some(i) = self.backlog.iter().position(|r| wanted(&r.msg)) {
            return Ok(self.backlog.remove(i));
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(r) if wanted(&r.msg) => return Ok(r),
                Ok(r) => self.backlog.push(r),
                Err(_) => {
                    let seen: Vec<String> =
                        self.backlog.iter().map(|r| first_line(&r.msg)).collect();
                    return Err(Error::Timeout {
                        what: format!("{}: {what} (unclaimed: {seen:?})", self.name),
                        after: wait,
                    });
                }
            }
        }
    }

    /// The next message (one received earlier and not taken first), waiting at most `wait`.
    pub fn poll(&mut self, wait: Duration) -> Option<Received> {
        if !self.backlog.is_empty() {
            return Some(self.backlog.remove(0));
        }
        self.events.recv_timeout(wait).ok()
    }

    /// The next request with `method` (see [`SipPeer::expect`]).
    pub fn expect_request(&mut self, method: Method, wait: Duration) -> Result<Received> {
        let what = format!("a {method} request");
        self.expect(&what, wait, |m| m.method() == Some(&method))
    }

    /// The next final response (200-699) to a `method` request with Call-ID `call_id`.
    pub fn expect_final(
        &mut self,
        call_id: &str,
        method: Method,
        wait: Duration,
    ) -> Result<Received> {
        let what = format!("a final response to {method} {call_id}");
        self.expect(&what, wait, |m| {
            m.status().is_some_and(|s| s >= 200)
                && m.call_id().is_ok_and(|c| c == call_id)
                && m.cseq().is_ok_and(|c| c.method == method)
        })
    }
}

impl Drop for SipPeer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *self.shared.threads.lock().unwrap());
        for t in threads {
            let _ = t.join();
        }
    }
}

/// The first address of a message's Contact.
pub fn contact_uri(m: &Message) -> Option<relay_sip::Uri> {
    match m.contact().ok()?? {
        relay_sip::Contact::Addresses(a) => a.into_iter().next().map(|a| a.uri),
        relay_sip::Contact::Wildcard => None,
    }
}

/// The UAC's side of a dialog it starts over TLS: Call-ID, tags, target and CSeq.
#[derive(Clone, Debug)]
pub struct Dialog {
    /// Call-ID, From (with our tag) and To (with the remote tag once known).
    pub ids: relay_bench::sipload::msg::DialogIds,
    /// Where in-dialog requests go (the remote Contact once known).
    pub target: relay_sip::Uri,
    /// Our `host:port` in Via.
    pub via_host: String,
    /// The CSeq of the last request.
    pub cseq: u32,
}

impl Dialog {
    /// A new dialog from `from_user@host` (a `user=phone` number) to `to` (a To header
    /// value), its INVITE sent to `target`.
    pub fn new(
        ids: &mut relay_bench::sipload::msg::Ids,
        host: &str,
        from_user: &str,
        to: &str,
        target: &str,
    ) -> Result<Dialog> {
        Ok(Dialog {
            ids: relay_bench::sipload::msg::DialogIds {
                call_id: format!("{}@{host}", ids.hex()),
                from: format!("<sip:{from_user}@{host};user=phone>;tag={}", ids.hex()),
                to: to.to_owned(),
            },
            target: relay_sip::Uri::parse(target)
                .map_err(|e| Error::Malformed(format!("target {target}: {e}")))?,
            via_host: format!("{host}:5061"),
            cseq: 1,
        })
    }

    /// A new request in the dialog (the next CSeq).
    pub fn request(&mut self, ids: &mut relay_bench::sipload::msg::Ids, method: Method) -> Message {
        self.cseq += 1;
        relay_bench::sipload::msg::request(
            method,
            &self.target,
            &self.via_host,
            &ids.hex(),
            &self.ids,
            self.cseq,
            &[],
        )
    }

    /// The INVITE that starts the dialog, with `contact` and an SDP offer.
    pub fn invite(
        &mut self,
        ids: &mut relay_bench::sipload::msg::Ids,
        contact: &str,
        sdp: Vec<u8>,
    ) -> Message {
        let mut m = relay_bench::sipload::msg::request(
            Method::Invite,
            &self.target,
            &self.via_host,
            &ids.hex(),
            &self.ids,
            self.cseq,
            &[],
        );
        push(&mut m, StdHeader::Contact, contact);
        push(&mut m, StdHeader::ContentType, "application/sdp");
        m.body = sdp;
        m
    }

    /// Takes the remote tag and target from a 2xx to the INVITE.
    pub fn established(&mut self, ok: &Message) {
        if let Some(to) = ok.headers.get(StdHeader::To) {
            self.ids.to = to.to_owned();
        }
        if let Some(uri) = contact_uri(ok) {
            self.target = uri;
        }
    }

    /// The ACK for the 2xx of the INVITE (same CSeq number).
    pub fn ack(&self, ids: &mut relay_bench::sipload::msg::Ids) -> Message {
        relay_bench::sipload::msg::request(
            Method::Ack,
            &self.target,
            &self.via_host,
            &ids.hex(),
            &self.ids,
            self.cseq,
            &[],
        )
    }
}

/// Appends a header field the test wrote itself (always valid text).
pub fn push(m: &mut Message, name: impl Into<HeaderName>, value: impl Into<String>) {
    m.headers
        .push(Header::new(name, value).expect("a test writes valid header values"));
}

/// A message's start line, for error messages.
pub fn first_line(m: &Message) -> String {
    let bytes = m.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    text.lines().next().unwrap_or_default().to_owned()
}

fn accept_loop(
    name: &str,
    listener: TcpListener,
    server: Arc<rustls::ServerConfig>,
    shared: &Arc<Shared>,
) {
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((tcp, _)) => {
                let _ = tcp.set_nonblocking(false);
                match rustls::ServerConnection::new(server.clone()) {
                    Ok(conn) => {
                        start_connection(name, tcp, conn, shared);
                    }
                    Err(e) => eprintln!("{name}: TLS server: {e}"),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                eprintln!("{name}: accept: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Registers a connection's send queue and starts its thread.
fn start_connection<C, S>(name: &str, tcp: TcpStream, conn: C, shared: &Arc<Shared>) -> ConnId
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>> + Send + 'static,
    S: rustls::SideData + 'static,
{
    let _ = tcp.set_read_timeout(Some(POLL));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = tcp.set_nodelay(true);
    let (tx, rx) = mpsc::channel();
    let id = {
        let mut senders = shared.senders.lock().unwrap();
        senders.push(tx);
        ConnId(senders.len() - 1)
    };
    let io: Box<dyn Stream> = Box::new(rustls::StreamOwned::new(conn, tcp));
    let thread = {
        let shared = shared.clone();
        let name = name.to_owned();
        std::thread::spawn(move || serve(&name, id, io, &rx, &shared))
    };
    shared.threads.lock().unwrap().push(thread);
    id
}

/// One connection: writes what is queued, reads and frames what arrives, answers OPTIONS,
/// hands the rest to the test. Ends when the peer stops or the connection closes.
fn serve(name: &str, id: ConnId, mut io: Box<dyn Stream>, rx: &Receiver<Vec<u8>>, shared: &Shared) {
    let mut decoder = StreamDecoder::new(Limits::default());
    let events = shared.events.lock().unwrap().clone();
    let mut chunk = vec![0u8; 16 * 1024];
    while !shared.stop.load(Ordering::Relaxed) {
        while let Ok(bytes) = rx.try_recv() {
            if io.write_all(&bytes).and_then(|()| io.flush()).is_err() {
                return;
            }
        }
        let n = match io.read(&mut chunk) {
            Ok(0) => {
                // rustls reports the end only after the peer's close_notify.
                shared.closes.lock().unwrap().push((id, true));
                return;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => {
                if !shared.stop.load(Ordering::Relaxed) {
                    shared.closes.lock().unwrap().push((id, false));
                    eprintln!("{name}: connection {id:?}: {e}");
                }
                return;
            }
        };
        let mut data = &chunk[..n];
        while !data.is_empty() {
            let took = decoder.push(data);
            data = &data[took..];
            loop {
                match decoder.next_frame() {
                    Ok(Some(Frame::Message(msg))) => {
                        let got = Received {
                            conn: id,
                            at: Instant::now(),
                            msg: *msg,
                        };
                        if got.msg.method() == Some(&Method::Options) {
                            let status = shared.options_status.load(Ordering::Relaxed);
                            let reason = if status == 200 { "OK" } else { "Unavailable" };
                            if let Ok(r) = Message::response_to(&got.msg, status, reason) {
                                if io
                                    .write_all(&r.to_bytes())
                                    .and_then(|()| io.flush())
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            shared.options.lock().unwrap().push(got);
                        } else if events.send(got).is_err() {
                            return;
                        }
                    }
                    Ok(Some(Frame::Ping)) => {
                        let _ = io.write_all(b"\r\n");
                    }
                    Ok(Some(Frame::Invalid(e, _))) => eprintln!("{name}: invalid message: {e}"),
                    Ok(Some(Frame::Pong)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("{name}: connection {id:?}: framing lost: {e}");
                        return;
                    }
                }
            }
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_chain(path: &std::path::Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Malformed(format!("certificates in {}: {e}", path.display())))
}

fn read_key(path: &std::path::Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path)
        .map_err(|e| Error::Malformed(format!("private key in {}: {e}", path.display())))
}

fn roots(ca: &std::path::Path) -> Result<Arc<rustls::RootCertStore>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_chain(ca)? {
        roots
            .add(cert)
            .map_err(|e| Error::Malformed(format!("CA {}: {e}", ca.display())))?;
    }
    Ok(Arc::new(roots))
}

/// A TLS server with `cert` and `key` that requires a client certificate chaining to `ca`
/// (mutual TLS, as Teams' proxies and the SBC's Teams trunk do).
pub fn mutual_tls_server(
    cert: &std::path::Path,
    key: &std::path::Path,
    ca: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>> {
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
            .build()
            .map_err(|e| Error::Process(format!("client verifier: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Process(format!("TLS versions: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_chain(cert)?, read_key(key)?)
        .map_err(|e| Error::Process(format!("server certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// A TLS client that trusts `ca` and presents `cert` and `key`.
pub fn mutual_tls_client(
    cert: &std::path::Path,
    key: &std::path::Path,
    ca: &std::path::Path,
) -> Result<Arc<rustls::ClientConfig>> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Process(format!("TLS versions: {e}")))?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(read_chain(cert)?, read_key(key)?)
        .map_err(|e| Error::Process(format!("client certificate: {e}")))?;
    Ok(Arc::new(config))
}
