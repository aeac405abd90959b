//! A real SIP user agent for integration tests: baresip 1.0.0 (Debian 12's `baresip-core`)
//! inside a network namespace, speaking SIP over TLS with SDES SRTP (`a=crypto`), sending a
//! sine tone as PCMU, and driven over its `ctrl_tcp` control socket.
//!
//! [`Baresip::start`] writes a private configuration directory (`config`, `accounts`, an
//! empty `contacts`) and runs `baresip -f DIR -s` with `ip netns exec`; `-s` prints every SIP
//! message it sends or receives (the "SIP trace") to its standard output, which goes to a
//! file. The harness reads the trace back for [`Baresip::sip_trace`] and for the SDES keys
//! the endpoint put in its SDP and received in its peer's ([`Baresip::sdp_crypto_seen`]).
//!
//! # What baresip 1.0.0 needs (found by running it)
//!
//! - `sip_listen IP:PORT` opens UDP and TCP on `PORT` and TLS on `PORT + 1`: for TLS on 5061
//!   the harness writes `sip_listen IP:5060`. There is no switch to leave UDP/TCP closed.
//! - `sip_certificate FILE`: certificate *and* private key in one PEM file (libre loads both
//!   from it). `sip_cafile FILE`: CA certificates. libre 1.1.0 does **not** verify the TLS
//!   server's certificate when baresip dials (a call to a server with an untrusted
//!   certificate still connects), so these tests cannot check the SBC's certificate through
//!   baresip; baresip does present its own certificate when the server asks for one.
//! - Account line (one per line in `accounts`):
//!   `<sip:alice@198.18.30.1;transport=tls>;mediaenc=srtp-mand;regint=0;answermode=auto;audio_codecs=pcmu`
//!   and, for a proxy, `;outbound="sip:198.18.10.1:5061;transport=tls"` (quoted, because of
//!   its own `;`): every request of the account then goes to that address with
//!   `Route: <sip:198.18.10.1:5061;transport=tls;lr>`. `regint=0` sends no REGISTER.
//! - `dial` appends the account's `;transport=tls` to the URI it is given, so dial
//!   `sip:bob@198.18.30.2`, not `...;transport=tls` (that would carry the parameter twice).
//! - `srtp-mand` offers `RTP/SAVP` with exactly one key, `a=crypto:1 AES_CM_128_HMAC_SHA1_80
//!   inline:...` (no lifetime, no MKI); as answerer it accepts the first of
//!   `AES_CM_128_HMAC_SHA1_80/_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM` offered and answers
//!   with its own key for that suite. Each side encrypts with the key it *sent*.
//! - `ausine` produces only 48 kHz stereo: `ausrc_srate 48000` and `ausrc_channels 2`, or the
//!   call fails with "ausine: supports only 48kHz samplerate". baresip resamples to PCMU.
//! - No player module is loaded: with no `auplay` at all, baresip skips the player (received
//!   audio is decoded and dropped), which is the "null player" the tests want.
//! - RTCP goes to the RTP port + 1 (`rtcp_mux no`), as SRTCP, with two exceptions per
//!   stream that carry no media: before SRTP is keyed libre sends one *plain* RTCP APP packet
//!   ("PING"/"PONG", 16 bytes) to open NAT pinholes, and at hang-up, after its SRTP layer is
//!   gone, one *plain* RTCP BYE. [`crate::srtp_check`] counts them separately; a relay in
//!   the middle sees them fail authentication.
//! - `ctrl_tcp` speaks netstrings (`LEN:JSON,`): commands `{"command":"dial","params":URI,
//!   "token":T}` get `{"response":true,"ok":..,"data":..,"token":T}`, and events arrive as
//!   `{"event":true,"type":"CALL_ESTABLISHED","class":"call",...}`. The menu module must be
//!   loaded for `dial` and `hangup` to exist. Its per-call status line goes to stderr (about
//!   ten short lines a second; `statmode` exists only as an in-call key, not over ctrl_tcp).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use relay_srtp::{CryptoAttribute, KeyError, SdesKey};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::netns::{check_test_address, wait_until, KillOnDrop, Netns};

/// How long a command on the control socket may take to be answered.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long baresip may take to start and open its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a `baresip` binary can be started (the Debian package `baresip-core`).
pub fn baresip_installed() -> bool {
    Command::new("baresip")
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// How one baresip user agent is set up.
#[derive(Clone, Debug)]
pub struct BaresipOpts {
    /// The account's address of record, e.g. `sip:alice@198.18.30.1;transport=tls`.
    pub aor: String,
    /// Where it listens for SIP over TLS (baresip also opens UDP and TCP on the port below).
    pub tls_listen: SocketAddrV4,
    /// Its TLS certificate and private key, both in this one PEM file.
    pub certificate_pem: PathBuf,
    /// The CA certificates it is given to trust (PEM).
    pub ca_file: PathBuf,
    /// Outbound proxy for every request of the account, e.g.
    /// `sip:198.18.10.1:5061;transport=tls`; `None` sends requests to the request URI.
    pub outbound_proxy: Option<String>,
    /// `mediaenc` of the account: `srtp-mand` (SDES, `RTP/SAVP` only), `srtp` (optional),
    /// `srtp-mandf` (`RTP/SAVPF`).
    pub media_encryption: String,
    /// `answermode` of the account: `auto` answers every call at once.
    pub answer_mode: String,
    /// Frequency of the `ausine` tone it sends, in Hz.
    pub tone_hz: u32,
    /// Local RTP ports to use, e.g. `Some((20000, 20100))`; `None` lets baresip choose.
    pub rtp_ports: Option<(u16, u16)>,
    /// Port of `ctrl_tcp` on 127.0.0.1 inside the namespace.
    pub ctrl_port: u16,
    /// Where baresip's modules are.
    pub module_path: PathBuf,
    /// More `;name=value` parameters for the account line, appended as given.
    pub extra_account_params: String,
    /// More configuration lines, appended as given.
    pub extra_config: Vec<String>,
}

impl BaresipOpts {
    /// SDES-SRTP-mandatory, auto-answering, PCMU-only options for `aor`, listening for TLS on
    /// `tls_listen` with `certificate_pem` (certificate and key) and trusting `ca_file`.
    pub fn new(
        aor: &str,
        tls_listen: SocketAddrV4,
        certificate_pem: &Path,
        ca_file: &Path,
    ) -> BaresipOpts {
        BaresipOpts {
            aor: aor.to_owned(),
            tls_listen,
            certificate_pem: certificate_pem.to_owned(),
            ca_file: ca_file.to_owned(),
            outbound_proxy: None,
            media_encryption: "srtp-mand".to_owned(),
            answer_mode: "auto".to_owned(),
            tone_hz: 440,
            rtp_ports: None,
            ctrl_port: 4444,
            module_path: PathBuf::from("/usr/lib/baresip/modules"),
            extra_account_params: String::new(),
            extra_config: Vec::new(),
        }
    }

    /// The same with every request sent to `proxy` (e.g. `sip:198.18.10.1:5061;transport=tls`).
    pub fn with_outbound_proxy(mut self, proxy: &str) -> BaresipOpts {
        self.outbound_proxy = Some(proxy.to_owned());
        self
    }

    /// The `config` file.
    pub fn config_text(&self) -> String {
        let listen = SocketAddrV4::new(
            *self.tls_listen.ip(),
            // baresip listens for TLS on the configured port + 1.
            self.tls_listen.port().saturating_sub(1),
        );
        let mut c = format!(
            "# Written by relay-testsupport for one test user agent (baresip 1.0.0).
poll_method\t\tepoll
sip_listen\t\t{listen}
sip_certificate\t\t{cert}
sip_cafile\t\t{ca}
call_local_timeout\t20
call_max_calls\t\t4
# ausine makes 48 kHz stereo only; baresip resamples it for PCMU.
audio_source\t\tausine,{hz}
ausrc_srate\t\t48000
ausrc_channels\t\t2
# No player module is loaded, so received audio is decoded and dropped.
audio_buffer\t\t20-160
rtp_tos\t\t\t0
rtcp_mux\t\tno
jitter_buffer_delay\t5-10
rtp_stats\t\tno
module_path\t\t{modules}
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\tsrtp.so
module_tmp\t\taccount.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
ctrl_tcp_listen\t\t127.0.0.1:{ctrl}
",
            cert = self.certificate_pem.display(),
            ca = self.ca_file.display(),
            hz = self.tone_hz,
            modules = self.module_path.display(),
            ctrl = self.ctrl_port,
        );
        if let Some((first, last)) = self.rtp_ports {
            c.push_str(&format!("rtp_ports\t\t{first}-{last}\n"));
        }
        for line in &self.extra_config {
            c.push_str(line);
            c.push('\n');
        }
        c
    }

    /// The `accounts` file: one account.
    pub fn accounts_text(&self) -> String {
        let mut line = format!(
            "<{}>;mediaenc={};regint=0;answermode={};audio_codecs=pcmu",
            self.aor, self.media_encryption, self.answer_mode
        );
        if let Some(proxy) = &self.outbound_proxy {
            line.push_str(&format!(";outbound=\"{proxy}\""));
        }
        line.push_str(&self.extra_account_params);
        line.push('\n');
        line
    }
}

/// One event from baresip's control socket.
#[derive(Clone, Debug)]
pub struct Event {
    /// The event's type, e.g. `CALL_ESTABLISHED`, `CALL_CLOSED`, `CALL_MENC`.
    pub kind: String,
    /// Its class (`call`, `other`, ...).
    pub class: String,
    /// Its parameter (for `CALL_CLOSED` the reason, for `CALL_MENC` `0,audio,SUITE`).
    pub param: String,
    /// The call's id (its SIP Call-ID), for call events.
    pub call_id: Option<String>,
    /// When the harness received it.
    pub at: Instant,
    /// The whole JSON object.
    pub json: Value,
}

impl Event {
    fn from_json(json: Value) -> Event {
        let text = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_owned);
        Event {
            kind: text("type").unwrap_or_default(),
            class: text("class").unwrap_or_default(),
            param: text("param").unwrap_or_default(),
            call_id: text("id"),
            at: Instant::now(),
            json,
        }
    }
}

/// Whether this endpoint sent or received a SIP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The endpoint sent it.
    Sent,
    /// The endpoint received it.
    Received,
}

/// One SIP message of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// The transport as baresip names it (`TLS`, `TCP`, `UDP`).
    pub transport: String,
    /// Source address as printed. For messages sent on a connection the peer opened, baresip
    /// prints its listening address here, so the source's IP is right but its port may not be.
    pub src: SocketAddr,
    /// Destination as printed (the same caveat for the port).
    pub dst: SocketAddr,
    /// The message, with CRLF line ends as on the wire.
    pub message: String,
}

impl TraceEntry {
    /// The request or status line.
    pub fn start_line(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim_end()
    }

    /// The value of the first header `name` (case-insensitive; no compact forms).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.message
            .split("\r\n\r\n")
            .next()?
            .lines()
            .skip(1)
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
    }

    /// The body (after the blank line).
    pub fn body(&self) -> &str {
        self.message
            .split_once("\r\n\r\n")
            .or_else(|| self.message.split_once("\n\n"))
            .map_or("", |(_, b)| b)
    }
}

/// Parses baresip's SIP trace (`-s`) out of its standard output. Each message is printed as
/// `ESC[36;1m#\nTRANSPORT SRC -> DST\nMESSAGE ESC[;m\n`; other output in between is skipped.
pub fn parse_trace(stdout: &str) -> Vec<TraceEntry> {
    const START: &str = "\x1b[36;1m#\n";
    const END: &str = "\x1b[;m";
    let mut entries = Vec::new();
    let mut rest = stdout;
    while let Some(i) = rest.find(START) {
        rest = &rest[i + START.len()..];
        let (block, after) = match rest.find(END) {
            Some(j) => (&rest[..j], &rest[j + END.len()..]),
            None => (rest, ""),
        };
        rest = after;
        let Some((first, message)) = block.split_once('\n') else {
            continue;
        };
        let mut words = first.split_whitespace();
        let (Some(transport), Some(src), Some("->"), Some(dst)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (Ok(src), Ok(dst)) = (src.parse(), dst.parse()) else {
            continue;
        };
        entries.push(TraceEntry {
            transport: transport.to_owned(),
            src,
            dst,
            message: message.to_owned(),
        });
    }
    entries
}

/// An `a=crypto` line of an SDP body this endpoint sent or received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptoSeen {
    /// Whether the endpoint sent or received the SDP.
    pub direction: Direction,
    /// The SIP message's request or status line (`INVITE sip:...`, `SIP/2.0 200 OK`).
    pub start_line: String,
    /// The SIP message's Call-ID.
    pub call_id: Option<String>,
    /// The attribute's tag.
    pub tag: String,
    /// The crypto suite's name, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub suite: String,
    /// The key parameters, e.g. `inline:BASE64` (RFC 4568 key-params).
    pub key_params: String,
    /// The whole attribute value (after `a=crypto:`).
    pub value: String,
}

impl CryptoSeen {
    /// The attribute parsed by the relay's own SDES parser.
    pub fn attribute(&self) -> std::result::Result<CryptoAttribute, KeyError> {
        CryptoAttribute::parse(&self.value)
    }

    /// The key, for libsrtp.
    pub fn key(&self) -> std::result::Result<SdesKey, KeyError> {
        self.attribute().map(|a| a.key)
    }
}

/// The `a=crypto` lines of every SDP body in `trace`; a message is [`Direction::Sent`] when
/// its source IP is `own_ip`.
pub fn crypto_lines(trace: &[TraceEntry], own_ip: IpAddr) -> Vec<CryptoSeen> {
    let mut seen = Vec::new();
    for entry in trace {
        let direction = if entry.src.ip() == own_ip {
            Direction::Sent
        } else {
            Direction::Received
        };
        for line in entry.body().lines() {
            let Some(value) = line.trim_end().strip_prefix("a=crypto:") else {
                continue;
            };
            let mut fields = value.split_whitespace();
            let (Some(tag), Some(suite), Some(key_params)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            seen.push(CryptoSeen {
                direction,
                start_line: entry.start_line().to_owned(),
                call_id: entry.header("Call-ID").map(str::to_owned),
                tag: tag.to_owned(),
                suite: suite.to_owned(),
                key_params: key_params.to_owned(),
                value: value.to_owned(),
            });
        }
    }
    seen
}

/// Removes ANSI escape sequences (`ESC[...m`), which baresip uses to colour its output.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads one netstring (`LEN:BYTES,`) from `r`; `None` at the end of the stream.
pub fn read_netstring(r: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = Vec::new();
    if r.read_until(b':', &mut len)? == 0 {
        return Ok(None);
    }
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    if len.pop() != Some(b':') || len.is_empty() || len.len() > 9 {
        return Err(bad("netstring length"));
    }
    let len: usize = std::str::from_utf8(&len)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("netstring length"))?;
    let mut data = vec![0u8; len + 1];
    r.read_exact(&mut data)?;
    if data.pop() != Some(b',') {
        return Err(bad("netstring terminator"));
    }
    Ok(Some(data))
}

/// `data` as a netstring.
pub fn netstring(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.push(b',');
    out
}

/// What the control socket's reader thread has collected.
#[derive(Default)]
struct Inbox {
    events: Vec<(Event, bool)>,
    responses: HashMap<String, Value>,
    closed: Option<String>,
}

/// The control connection: a writer and what the reader thread collects.
struct Ctrl {
    stream: Mutex<TcpStream>,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    next_token: AtomicU64,
}

impl Ctrl {
    fn new(stream: TcpStream) -> Result<Ctrl> {
        let reader = stream
            .try_clone()
            .map_err(|e| Error::io("cloning the control socket", e))?;
        let inbox = Arc::new((Mutex::new(Inbox::default()), Condvar::new()));
        let shared = Arc::clone(&inbox);
        // Ends when baresip closes the connection or the harness shuts it down.
        std::thread::spawn(move || {
            let mut r = BufReader::new(reader);
            let end = loop {
                match read_netstring(&mut r) {
                    Ok(Some(data)) => {
                        let Ok(json) = serde_json::from_slice::<Value>(&data) else {
                            continue;
                        };
                        let (lock, cvar) = &*shared;
                        let mut inbox = lock.lock().unwrap_or_else(|p| p.into_inner());
                        if json.get("event").is_some() {
                            inbox.events.push((Event::from_json(json), false));
                        } else if let Some(token) = json.get("token").and_then(Value::as_str) {
                            inbox.responses.insert(token.to_owned(), json);
                        }
                        cvar.notify_all();
                    }
                    Ok(None) => break "closed".to_owned(),
                    Err(e) => break e.to_string(),
                }
            };
            let (lock, cvar) = &*shared;
            lock.lock().unwrap_or_else(|p| p.into_inner()).closed = Some(end);
            cvar.notify_all();
        });
        Ok(Ctrl {
            stream: Mutex::new(stream),
            inbox,
            next_token: AtomicU64::new(1),
        })
    }

    fn send(&self, command: &str, params: &str) -> Result<String> {
        let token = format!("t{}", self.next_token.fetch_add(1, Ordering::Relaxed));
        let request = serde_json::json!({"command": command, "params": params, "token": token});
        self.stream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_all(&netstring(request.to_string().as_bytes()))
            .map_err(|e| Error::io(format!("sending `{command}` to baresip"), e))?;
        Ok(token)
    }

    /// Waits (bounded) until `pick` finds something in the inbox.
    fn wait<T>(
        &self,
        timeout: Duration,
        mut pick: impl FnMut(&mut Inbox) -> Option<T>,
    ) -> std::result::Result<T, Option<String>> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inbox;
        let mut inbox = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(v) = pick(&mut inbox) {
                return Ok(v);
            }
            if let Some(reason) = &inbox.closed {
                return Err(Some(reason.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(None);
            }
            inbox = cvar
                .wait_timeout(inbox, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A running baresip user agent inside a namespace; stopped (by PID) on drop.
pub struct Baresip<'ns> {
    name: String,
    ns: &'ns Netns,
    own_ip: IpAddr,
    dir: tempfile::TempDir,
    ctrl: Ctrl,
    process: KillOnDrop,
}

impl std::fmt::Debug for Baresip<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baresip")
            .field("name", &self.name)
            .field("ns", &self.ns.name())
            .field("pid", &self.process.pid())
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl<'ns> Baresip<'ns> {
    /// Writes a configuration for `opts` into a new temporary directory, starts baresip in
    /// `ns` with it and connects to its control socket (at most 10 s). Fails, with what
    /// baresip printed, if it exits or its control socket does not open in time.
    pub fn start(ns: &'ns Netns, opts: &BaresipOpts) -> Result<Baresip<'ns>> {
        check_test_address(*opts.tls_listen.ip())?;
        if opts.tls_listen.port() < 2 {
            // The configured port is the TLS port - 1 and must itself be a port.
            return Err(Error::Refused(format!(
                "TLS port {} (baresip listens for TLS on its sip_listen port + 1)",
                opts.tls_listen.port()
            )));
        }
        let name = opts
            .aor
            .trim_start_matches("sips:")
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or("baresip")
            .to_owned();
        let dir = tempfile::Builder::new()
            .prefix(&format!("baresip-{name}-"))
            .tempdir()
            .map_err(|e| Error::io("creating baresip's configuration directory", e))?;
        let write = |file: &str, text: &str| {
            let path = dir.path().join(file);
            std::fs::write(&path, text)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))
        };
        write("config", &opts.config_text())?;
        write("accounts", &opts.accounts_text())?;
        write("contacts", "")?;
        let create = |file: &str| {
            let path = dir.path().join(file);
            std::fs::File::create(&path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))
        };
        let child = ns
            .command("baresip")
            .arg("-f")
            .arg(dir.path())
            .arg("-s")
            .stdin(Stdio::null())
            .stdout(create("stdout.log")?)
            .stderr(create("stderr.log")?)
            .spawn()
            .map_err(|e| Error::io("starting baresip", e))?;
        let mut process = KillOnDrop::new(child);
        let ctrl_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, opts.ctrl_port));
        let mut last_error = String::new();
        let stream = wait_until(START_TIMEOUT, || {
            if let Some(status) = process.try_wait() {
                last_error = format!("baresip exited ({status})");
                return Some(None);
            }
            match ns.connect_tcp(ctrl_addr, Duration::from_millis(200)) {
                Ok(s) => Some(Some(s)),
                Err(e) => {
                    last_error = e.to_string();
                    None
                }
            }
        });
        let log = || {
            format!(
                "{}{}",
                strip_ansi(
                    &std::fs::read_to_string(dir.path().join("stdout.log")).unwrap_or_default()
                ),
                std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
            )
        };
        let stream = match stream {
            Some(Some(s)) => s,
            Some(None) => {
                return Err(Error::Process(format!(
                    "baresip {name} in {}: {last_error}:\n{}",
                    ns.name(),
                    log()
                )))
            }
            None => {
                return Err(Error::Timeout {
                    what: format!(
                        "baresip {name}'s control socket in {} ({last_error}):\n{}",
                        ns.name(),
                        log()
                    ),
                    after: START_TIMEOUT,
                })
            }
        };
        Ok(Baresip {
            name,
            ns,
            own_ip: IpAddr::V4(*opts.tls_listen.ip()),
            ctrl: Ctrl::new(stream)?,
            dir,
            process,
        })
    }

    /// The user part of the account (`alice`), used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration directory (config, accounts, contacts, stdout.log, stderr.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// baresip's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Sends a command on the control socket and returns the response's `data`; an error if
    /// baresip answers `ok: false` or does not answer within 5 s.
    pub fn command(&self, command: &str, params: &str) -> Result<String> {
        let token = self.ctrl.send(command, params)?;
        let response = self
            .ctrl
            .wait(COMMAND_TIMEOUT, |inbox| inbox.responses.remove(&token))
            .map_err(|closed| {
                self.no_answer(
                    &format!("an answer to `{command} {params}`"),
                    closed,
                    COMMAND_TIMEOUT,
                )
            })?;
        let data = response
            .get("data")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if response.get("ok") == Some(&Value::Bool(true)) {
            Ok(data)
        } else {
            Err(Error::Process(format!(
                "baresip {}: `{command} {params}` failed: {data}",
                self.name
            )))
        }
    }

    /// Dials `uri` (baresip appends the account's `;transport=`; see the module docs).
    pub fn dial(&self, uri: &str) -> Result<()> {
        self.command("dial", uri).map(drop)
    }

    /// Hangs up the current call.
    pub fn hangup(&self) -> Result<()> {
        self.command("hangup", "").map(drop)
    }

    /// Waits at most `timeout` for the next event of type `kind` (e.g. `CALL_ESTABLISHED`)
    /// that no earlier call returned, and returns it. Events that arrived before the call
    /// count, so there is no race with the command that caused them.
    pub fn wait_event(&self, kind: &str, timeout: Duration) -> Result<Event> {
        self.ctrl
            .wait(timeout, |inbox| {
                let (event, taken) = inbox
                    .events
                    .iter_mut()
                    .find(|(e, taken)| !*taken && e.kind == kind)?;
                *taken = true;
                Some(event.clone())
            })
            .map_err(|closed| self.no_answer(&format!("event {kind}"), closed, timeout))
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<Event> {
        let (lock, _) = &*self.ctrl.inbox;
        let inbox = lock.lock().unwrap_or_else(|p| p.into_inner());
        inbox.events.iter().map(|(e, _)| e.clone()).collect()
    }

    fn no_answer(&self, what: &str, closed: Option<String>, after: Duration) -> Error {
        let kinds: Vec<String> = self.events().into_iter().map(|e| e.kind).collect();
        let what = format!(
            "{what} from baresip {} in {} (events so far: {kinds:?}){}\n{}",
            self.name,
            self.ns.name(),
            closed.map_or(String::new(), |r| format!(
                "; its control socket ended: {r}"
            )),
            self.log_tail(60)
        );
        Error::Timeout { what, after }
    }

    /// baresip's standard output (SIP trace and log), without colour codes.
    pub fn sip_trace(&self) -> String {
        strip_ansi(&self.raw_stdout())
    }

    fn raw_stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// The last `lines` lines of standard output and all of standard error, for messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let out = self.sip_trace();
        let all: Vec<&str> = out.lines().collect();
        let err = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        format!(
            "--- baresip {} stdout (last {lines} lines) ---\n{}\n--- stderr ---\n{err}",
            self.name,
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }

    /// Every SIP message sent or received so far.
    pub fn sip_messages(&self) -> Vec<TraceEntry> {
        parse_trace(&self.raw_stdout())
    }

    /// Every `a=crypto` line in the SDP this endpoint sent and received, in order.
    pub fn sdp_crypto_seen(&self) -> Vec<CryptoSeen> {
        crypto_lines(&self.sip_messages(), self.own_ip)
    }

    /// The key of the last `a=crypto` this endpoint sent: the key it encrypts with.
    pub fn sent_key(&self) -> Result<SdesKey> {
        self.last_key(Direction::Sent)
    }

    /// The key of the last `a=crypto` this endpoint received: its peer's sending key.
    pub fn received_key(&self) -> Result<SdesKey> {
        self.last_key(Direction::Received)
    }

    fn last_key(&self, direction: Direction) -> Result<SdesKey> {
        let seen = self.sdp_crypto_seen();
        let last = seen
            .iter()
            .rev()
            .find(|c| c.direction == direction)
            .ok_or_else(|| {
                Error::Malformed(format!(
                    "SIP trace of baresip {}: no a=crypto {direction:?}\n{}",
                    self.name,
                    self.log_tail(80)
                ))
            })?;
        last.key()
            .map_err(|e| Error::Malformed(format!("a=crypto:{} ({e:?})", last.value)))
    }

    /// Stops baresip: SIGTERM by PID, SIGKILL after 3 s. Dropping does the same.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Ok(s) = self.ctrl.stream.lock() {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.process.terminate(Duration::from_secs(3));
    }
}

impl Drop for Baresip<'_> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two messages as baresip 1.0.0 printed them (abridged), with a log line between.
    const TRACE: &str = "baresip is ready.\n\
        \x1b[36;1m#\nTLS 198.18.30.1:55518 -> 198.18.30.2:5061\n\
        INVITE sip:bob@198.18.30.2;transport=tls SIP/2.0\r\n\
        Call-ID: 4999b80c521af2d9\r\nContent-Type: application/sdp\r\n\r\n\
        v=0\r\nm=audio 20028 RTP/SAVP 0 101\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:meqwcq7oVvBl8MqeZcVqU/QjS1gPXIJy1EnzPcGK\r\n\
        a=ptime:20\r\n\x1b[;m\n\
        call: SIP Progress: 180 Ringing (/)\n\
        \x1b[36;1m#\nTLS 198.18.30.2:5061 -> 198.18.30.1:55518\n\
        SIP/2.0 200 OK\r\nCall-ID: 4999b80c521af2d9\r\n\r\n\
        v=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:yGKtv5upRaHHdoIb9xJ+D43XWqh4ATwEvtfqRnWL\r\n\
        \x1b[;m\n";

    #[test]
    fn trace_messages_and_their_crypto_lines() {
        let trace = parse_trace(TRACE);
        assert_eq!(trace.len(), 2);
        assert_eq!(trace[0].transport, "TLS");
        assert_eq!(
            trace[0].start_line(),
            "INVITE sip:bob@198.18.30.2;transport=tls SIP/2.0"
        );
        assert_eq!(trace[0].header("call-id"), Some("4999b80c521af2d9"));
        assert_eq!(trace[1].src, "198.18.30.2:5061".parse().unwrap());

        let alice: IpAddr = "198.18.30.1".parse().unwrap();
        let seen = crypto_lines(&trace, alice);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].direction, Direction::Sent);
        assert_eq!(seen[0].suite, "AES_CM_128_HMAC_SHA1_80");
        assert_eq!(
            seen[0].key_params,
            "inline:meqwcq7oVvBl8MqeZcVqU/QjS1gPXIJy1EnzPcGK"
        );
        assert_eq!(seen[1].direction, Direction::Received);
        assert_eq!(seen[1].start_line, "SIP/2.0 200 OK");
        assert_eq!(seen[1].call_id.as_deref(), Some("4999b80c521af2d9"));
        let key = seen[1].key().unwrap();
        assert_eq!(key.to_inline(), seen[1].key_params);
        // Seen from bob, the same messages go the other way.
        let bob: IpAddr = "198.18.30.2".parse().unwrap();
        let seen = crypto_lines(&trace, bob);
        assert_eq!(seen[0].direction, Direction::Received);
        assert_eq!(seen[1].direction, Direction::Sent);
    }

    #[test]
    fn a_cut_trace_keeps_its_whole_messages() {
        let cut = &TRACE[..TRACE.find("SIP/2.0 200 OK").unwrap()];
        let trace = parse_trace(cut);
        assert_eq!(trace.len(), 2);
        assert_eq!(trace[1].message, "");
        assert!(parse_trace("no trace here\n").is_empty());
        assert!(parse_trace("\x1b[36;1m#\nTLS nonsense\n\x1b[;m").is_empty());
    }

    #[test]
    fn ansi_codes_are_removed() {
        assert_eq!(strip_ansi("\x1b[36;1m#\nTLS\x1b[;m\n"), "#\nTLS\n");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn netstrings_round_trip_and_reject_garbage() {
        let mut wire = netstring(b"{\"a\":1}");
        wire.extend_from_slice(&netstring(b""));
        assert_eq!(wire, b"7:{\"a\":1},0:,");
        let mut r = &wire[..];
        assert_eq!(read_netstring(&mut r).unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(read_netstring(&mut r).unwrap().unwrap(), b"");
        assert_eq!(read_netstring(&mut r).unwrap(), None);
        for bad in [
            &b"3:abc;"[..],
            b"x:abc,",
            b"5:abc",
            b":abc,",
            b"9999999999:a,",
        ] {
            let mut r = bad;
            assert!(read_netstring(&mut r).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_and_account_lines() {
        let opts = BaresipOpts::new(
            "sip:alice@198.18.10.2;transport=tls",
            "198.18.10.2:5061".parse().unwrap(),
            Path::new("/t/alice.pem"),
            Path::new("/t/ca.pem"),
        )
        .with_outbound_proxy("sip:198.18.10.1:5061;transport=tls");
        let config = opts.config_text();
        // TLS is opened on the configured port + 1.
        assert!(
            config.contains("sip_listen\t\t198.18.10.2:5060\n"),
            "{config}"
        );
        assert!(config.contains("sip_certificate\t\t/t/alice.pem\n"));
        assert!(config.contains("sip_cafile\t\t/t/ca.pem\n"));
        assert!(config.contains("ctrl_tcp_listen\t\t127.0.0.1:4444\n"));
        assert!(!config.contains("rtp_ports"));
        assert_eq!(
            opts.accounts_text(),
            "<sip:alice@198.18.10.2;transport=tls>;mediaenc=srtp-mand;regint=0;\
             answermode=auto;audio_codecs=pcmu;outbound=\"sip:198.18.10.1:5061;transport=tls\"\n"
        );
    }
}
