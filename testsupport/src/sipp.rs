//! SIPp (Debian's `sip-tester`, 3.6.1) inside a network namespace: a scripted SIP user agent,
//! client (UAC) or server (UAS), over UDP or TCP, that can play plain RTP.
//!
//! [`Sipp::start`] runs `sipp` with `ip netns exec` on a scenario file, one call at most
//! (`-m 1` by default), with every trace written to files of its own in a directory the
//! test chooses: the SIP messages it sent and received (`NAME.messages.log`, read back by
//! [`Sipp::messages`]), its statistics (`NAME.stats.csv`, [`Sipp::stats`]), unexpected
//! messages (`NAME.errors.log`) and the final screen (`NAME.screen.log`). [`Sipp::wait`]
//! waits, bounded, for it to exit; [`Sipp::finish`] also requires it to have succeeded.
//!
//! # What SIPp 3.6.1 does (read in its source and found by running it)
//!
//! - Exit status: 0 when every call ran its scenario to the end, 1 when one failed (an
//!   unexpected message, a receive timeout, `-timeout` reached with `-timeout_error`), 97 when
//!   stopped by an internal command, 99 when no call was processed, 254 when it cannot bind
//!   its SIP socket, 255 on a fatal error (a scenario it cannot load).
//! - `<exec rtp_stream="FILE,LOOPS,PT"/>` streams the raw audio of FILE (no WAV header is
//!   expected for raw files) as RTP from the media socket (`-mi`, `-mp`), 20 ms packets of 160
//!   bytes for PT 0 (PCMU), to the address and port of the last SDP it *received* (so a UAC
//!   streams once the 200 OK arrived). LOOPS -1 repeats until the call ends; `rtp_stream="pause"`
//!   and `"resume"` pause and resume it. An attribute value that is exactly `[name]` is
//!   replaced by the `-key name VALUE` given on the command line, which is how the tests hand
//!   their generated audio file to a committed scenario ([`SippOpts::key`]). Received RTP is
//!   read by nobody (no `-rtp_echo`): it stays in the socket's buffer.
//! - `[pid]` and `[call_number]` in a scenario make a Via branch that a later CANCEL or ACK
//!   of the same transaction can repeat word for word, as RFC 3261 requires of both.
//! - Keywords given with `-key` are also substituted in message text (`[reject_code]`).
//! - `-t u1` is UDP with one socket, `-t t1` one TCP connection; Debian's build has no TLS.
//! - A UAS binds its SIP port at once; [`Sipp::start`] returns for a UAS only once the kernel
//!   lists the port as SIPp's (`ss`), so a caller started afterwards cannot race it.
//! - The statistics file is `;`-separated, a header line and one line per dump; the last line
//!   holds the totals (`SuccessfulCall(C)`, `FailedCall(C)`, ...). Dates in it contain tabs.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::{check_test_address, wait_until, KillOnDrop, Netns};

/// How long a UAS may take to bind its SIP port.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a `sipp` binary can be started (the Debian package `sip-tester`).
pub fn sipp_installed() -> bool {
    Command::new("sipp")
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// SIPp's signalling transport (Debian's SIPp has no TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SippTransport {
    /// UDP, one socket (`-t u1`).
    Udp,
    /// TCP, one connection (`-t t1`).
    Tcp,
}

impl SippTransport {
    /// The `-t` argument.
    pub fn arg(self) -> &'static str {
        match self {
            SippTransport::Udp => "u1",
            SippTransport::Tcp => "t1",
        }
    }

    /// The transport as Via and the message log name it.
    pub fn name(self) -> &'static str {
        match self {
            SippTransport::Udp => "UDP",
            SippTransport::Tcp => "TCP",
        }
    }
}

/// How one SIPp instance is run.
#[derive(Clone, Debug)]
pub struct SippOpts {
    /// A short name for its files and messages (`caller`, `callee-1`).
    pub name: String,
    /// The scenario file (`-sf`).
    pub scenario: PathBuf,
    /// Its SIP address (`-i`, `-p`).
    pub local: SocketAddrV4,
    /// Where a UAC sends its requests; `None` for a UAS.
    pub remote: Option<SocketAddrV4>,
    /// The signalling transport (`-t`).
    pub transport: SippTransport,
    /// Its media address and RTP port (`-mi`, `-mp`; SIPp also binds the port + 2).
    pub media: SocketAddrV4,
    /// The user part of the Request-URI (`-s`, `[service]`).
    pub service: String,
    /// Calls to make or take before exiting (`-m`).
    pub calls: u32,
    /// Keyword values (`-key NAME VALUE`), `[NAME]` in the scenario.
    pub keys: Vec<(String, String)>,
    /// SIPp's own bound on its run (`-timeout` with `-timeout_error`: it fails when reached).
    pub timeout: Duration,
    /// How long any expected message may take (`-recv_timeout`).
    pub recv_timeout: Duration,
    /// More arguments, appended as given.
    pub extra_args: Vec<String>,
}

impl SippOpts {
    /// A UAC named `name` running `scenario` once from `local` to `remote`, with its media on
    /// `media`, calling `service`.
    pub fn uac(
        name: &str,
        scenario: &Path,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        media: SocketAddrV4,
        service: &str,
    ) -> SippOpts {
        SippOpts {
            name: name.to_owned(),
            scenario: scenario.to_owned(),
            local,
            remote: Some(remote),
            transport: SippTransport::Udp,
            media,
            service: service.to_owned(),
            calls: 1,
            keys: Vec::new(),
            timeout: Duration::from_secs(15),
            recv_timeout: Duration::from_secs(8),
            extra_args: Vec::new(),
        }
    }

    /// A UAS named `name` taking one call on `local` with `scenario`, media on `media`.
    pub fn uas(name: &str, scenario: &Path, local: SocketAddrV4, media: SocketAddrV4) -> SippOpts {
        SippOpts {
            remote: None,
            service: "sipp".to_owned(),
            ..SippOpts::uac(name, scenario, local, local, media, "sipp")
        }
    }

    /// The same over `transport`.
    pub fn over(mut self, transport: SippTransport) -> SippOpts {
        self.transport = transport;
        self
    }

    /// The same with keyword `name` set to `value` (`-key`).
    pub fn key(mut self, name: &str, value: impl Into<String>) -> SippOpts {
        self.keys.push((name.to_owned(), value.into()));
        self
    }

    /// The command-line arguments, files named after [`SippOpts::name`] in `dir`.
    pub fn args(&self, dir: &Path) -> Vec<String> {
        let file = |suffix: &str| {
            dir.join(format!("{}.{suffix}", self.name))
                .display()
                .to_string()
        };
        let mut a = Vec::new();
        if let Some(remote) = self.remote {
            a.push(remote.to_string());
        }
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        for (k, v) in [
            ("-sf", self.scenario.display().to_string()),
            ("-t", self.transport.arg().to_owned()),
            ("-i", self.local.ip().to_string()),
            ("-p", self.local.port().to_string()),
            ("-mi", self.media.ip().to_string()),
            ("-mp", self.media.port().to_string()),
            ("-s", self.service.clone()),
            ("-m", self.calls.to_string()),
            ("-timeout", format!("{}s", self.timeout.as_secs().max(1))),
            ("-recv_timeout", ms(self.recv_timeout)),
            ("-message_file", file("messages.log")),
            ("-stf", file("stats.csv")),
            ("-error_file", file("errors.log")),
            ("-screen_file", file("screen.log")),
            // Statistics dumped every second, so a run cut short still has its counts.
            ("-fd", "1".to_owned()),
        ] {
            a.push(k.to_owned());
            a.push(v);
        }
        for flag in [
            "-timeout_error",
            "-nostdin",
            "-trace_msg",
            "-trace_stat",
            "-trace_err",
            "-trace_screen",
        ] {
            a.push(flag.to_owned());
        }
        for (k, v) in &self.keys {
            a.extend(["-key".to_owned(), k.clone(), v.clone()]);
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// SIPp's statistics: the totals line of its statistics file, by column name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats(pub HashMap<String, String>);

impl Stats {
    /// Parses a statistics file (`;`-separated; the last line with as many fields as the
    /// header holds the totals).
    pub fn parse(text: &str) -> Option<Stats> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines.next()?.split(';').collect();
        let last = lines.rfind(|l| l.split(';').count() == header.len())?;
        Some(Stats(
            header
                .iter()
                .zip(last.split(';'))
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| ((*k).to_owned(), v.trim().to_owned()))
                .collect(),
        ))
    }

    /// A counter (`SuccessfulCall(C)`), if present and a number.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.0.get(name)?.parse().ok()
    }

    /// Calls that ran their scenario to the end.
    pub fn successful_calls(&self) -> u64 {
        self.counter("SuccessfulCall(C)").unwrap_or(0)
    }

    /// Calls that failed.
    pub fn failed_calls(&self) -> u64 {
        self.counter("FailedCall(C)").unwrap_or(0)
    }
}

/// Whether SIPp sent or received a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// SIPp sent it.
    Sent,
    /// SIPp received it.
    Received,
}

/// One entry of SIPp's message log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SippMessage {
    /// Sent or received.
    pub direction: Direction,
    /// `UDP` or `TCP`.
    pub transport: String,
    /// The message (CRLF line ends as on the wire; a TCP read may hold more than one).
    pub text: String,
}

impl SippMessage {
    /// The request or status line.
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("").trim_end()
    }

    /// The status code, for a response.
    pub fn status(&self) -> Option<u16> {
        let line = self.start_line().strip_prefix("SIP/2.0 ")?;
        line.split(' ').next()?.parse().ok()
    }

    /// The method, for a request.
    pub fn method(&self) -> Option<&str> {
        let line = self.start_line();
        (!line.starts_with("SIP/2.0")).then(|| line.split(' ').next().unwrap_or(""))
    }

    /// The value of the first header `name` (case-insensitive; no compact forms).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.text
            .split("\r\n\r\n")
            .next()?
            .lines()
            .skip(1)
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
    }

    /// The method of the CSeq header (`INVITE`, `CANCEL`).
    pub fn cseq_method(&self) -> Option<&str> {
        self.header("CSeq")?.split_whitespace().nth(1)
    }

    /// The body (after the blank line).
    pub fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

/// Parses SIPp's message log (`-trace_msg`): entries start with a line of dashes and a
/// timestamp, then `UDP message sent (N bytes):` or `UDP message received [N] bytes :`, a
/// blank line and the message.
pub fn parse_messages(log: &str) -> Vec<SippMessage> {
    const RULE: &str = "----------------------------------------------- ";
    let mut out = Vec::new();
    for chunk in log.split(RULE).skip(1) {
        // chunk: "DATE TIME\nUDP message sent (N bytes):\n\nMESSAGE\n"
        let mut parts = chunk.splitn(3, '\n');
        let (Some(_time), Some(what), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let mut words = what.split_whitespace();
        let (Some(transport), Some("message"), Some(dir)) =
            (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let direction = match dir {
            "sent" => Direction::Sent,
            "received" => Direction::Received,
            _ => continue,
        };
        let text = rest.strip_prefix('\n').unwrap_or(rest);
        out.push(SippMessage {
            direction,
            transport: transport.to_owned(),
            // The blank line after the message is the log's, not the message's.
            text: text.strip_suffix('\n').unwrap_or(text).to_owned(),
        });
    }
    out
}

/// How a SIPp run ended.
#[derive(Clone, Debug)]
pub struct SippRun {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its statistics (empty if it wrote none).
    pub stats: Stats,
}

/// A running SIPp inside a namespace; stopped (by PID) on drop.
pub struct Sipp<'ns> {
    opts: SippOpts,
    ns: &'ns Netns,
    dir: PathBuf,
    process: KillOnDrop,
    exited: Option<ExitStatus>,
}

impl std::fmt::Debug for Sipp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sipp")
            .field("name", &self.opts.name)
            .field("ns", &self.ns.name())
            .field("pid", &self.process.pid())
            .field("dir", &self.dir)
            .finish()
    }
}

impl<'ns> Sipp<'ns> {
    /// Starts SIPp in `ns` with `opts`, its files in `dir` (also its working directory). A
    /// UAS is returned once its SIP port is bound (at most 5 s); fails with what SIPp printed
    /// if it exits first.
    pub fn start(ns: &'ns Netns, opts: &SippOpts, dir: &Path) -> Result<Sipp<'ns>> {
        check_test_address(*opts.local.ip())?;
        check_test_address(*opts.media.ip())?;
        if let Some(r) = opts.remote {
            check_test_address(*r.ip())?;
        }
        if !opts.scenario.is_file() {
            return Err(Error::Refused(format!(
                "scenario {} does not exist",
                opts.scenario.display()
            )));
        }
        let out_path = dir.join(format!("{}.out", opts.name));
        let out = std::fs::File::create(&out_path)
            .map_err(|e| Error::io(format!("creating {}", out_path.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io("duplicating a file handle", e))?;
        let child = ns
            .command("sipp")
            .args(opts.args(dir))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::io("starting sipp", e))?;
        let mut sipp = Sipp {
            opts: opts.clone(),
            ns,
            dir: dir.to_owned(),
            process: KillOnDrop::new(child),
            exited: None,
        };
        if opts.remote.is_none() {
            let (local, transport) = (opts.local, opts.transport);
            let bound = wait_until(START_TIMEOUT, || {
                if let Some(s) = sipp.process.try_wait() {
                    sipp.exited = Some(s);
                    return Some(false);
                }
                // Asked of the kernel (`ss`), not by binding the port: a probe socket could
                // take it from SIPp for a moment.
                let proto = match transport {
                    SippTransport::Udp => "-u",
                    SippTransport::Tcp => "-t",
                };
                let taken = ns
                    .run(&["ss", "-H", "-l", "-n", proto, "src", &local.to_string()])
                    .is_ok_and(|out| !out.trim().is_empty());
                taken.then_some(true)
            });
            match bound {
                Some(true) => {}
                Some(false) => {
                    return Err(Error::Process(format!(
                        "sipp {} in {} exited before it took {local}:\n{}",
                        opts.name,
                        ns.name(),
                        sipp.report()
                    )))
                }
                None => {
                    return Err(Error::Timeout {
                        what: format!(
                            "sipp {} in {} to bind {local}:\n{}",
                            opts.name,
                            ns.name(),
                            sipp.report()
                        ),
                        after: START_TIMEOUT,
                    })
                }
            }
        }
        Ok(sipp)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.opts.name
    }

    /// Its PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    fn file(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", self.opts.name))
    }

    fn read(&self, suffix: &str) -> String {
        std::fs::read_to_string(self.file(suffix)).unwrap_or_default()
    }

    /// Its message log as written so far.
    pub fn message_log(&self) -> String {
        self.read("messages.log")
    }

    /// Every SIP message it sent or received so far.
    pub fn messages(&self) -> Vec<SippMessage> {
        parse_messages(&self.message_log())
    }

    /// The status codes of the responses it received to requests of `method`, in order.
    pub fn statuses(&self, method: &str) -> Vec<u16> {
        self.messages()
            .iter()
            .filter(|m| m.direction == Direction::Received && m.cseq_method() == Some(method))
            .filter_map(SippMessage::status)
            .collect()
    }

    /// Its statistics as last dumped (`None` before the first dump).
    pub fn stats(&self) -> Option<Stats> {
        Stats::parse(&self.read("stats.csv"))
    }

    /// Whether it has exited (without waiting).
    pub fn has_exited(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.process.try_wait();
        }
        self.exited.is_some()
    }

    /// Waits at most `timeout` for it to exit; its exit status and statistics.
    pub fn wait(&mut self, timeout: Duration) -> Result<SippRun> {
        let status = match self.exited {
            Some(s) => s,
            None => {
                let s = wait_until(timeout, || self.process.try_wait()).ok_or_else(|| {
                    Error::Timeout {
                        what: format!("sipp {} to finish:\n{}", self.opts.name, self.report()),
                        after: timeout,
                    }
                })?;
                self.exited = Some(s);
                s
            }
        };
        Ok(SippRun {
            status,
            stats: self.stats().unwrap_or_default(),
        })
    }

    /// Waits at most `timeout` for it to exit and requires success: exit status 0 and every
    /// call successful. The error says what SIPp printed and traced.
    pub fn finish(&mut self, timeout: Duration) -> Result<SippRun> {
        let run = self.wait(timeout)?;
        let calls = u64::from(self.opts.calls);
        if run.status.success()
            && run.stats.successful_calls() == calls
            && run.stats.failed_calls() == 0
        {
            Ok(run)
        } else {
            Err(Error::Process(format!(
                "sipp {} exited with {} ({} of {calls} calls successful, {} failed):\n{}",
                self.opts.name,
                run.status,
                run.stats.successful_calls(),
                run.stats.failed_calls(),
                self.report()
            )))
        }
    }

    /// What it printed, its unexpected messages and its message log, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "--- sipp {} output ---\n{}\n--- errors ---\n{}\n--- messages ---\n{}",
            self.opts.name,
            tail(&self.read("out"), 40),
            self.read("errors.log"),
            self.message_log()
        )
    }

    /// Stops it: SIGTERM by PID, SIGKILL after 2 s. Dropping does the same.
    pub fn stop(mut self) {
        self.process.terminate(Duration::from_secs(2));
    }
}

impl Drop for Sipp<'_> {
    fn drop(&mut self) {
        self.process.terminate(Duration::from_secs(2));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One RTP packet's header fields and payload (RFC 3550 section 5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpView<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// SSRC.
    pub ssrc: u32,
    /// The payload (after CSRCs and any header extension, before padding).
    pub payload: &'a [u8],
}

/// Parses `packet` as an RTP packet (version 2, not RTCP's payload types 64-95).
pub fn parse_rtp(packet: &[u8]) -> Option<RtpView<'_>> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let pt = packet[1] & 0x7f;
    if (64..=95).contains(&pt) {
        return None;
    }
    let mut offset = 12 + usize::from(packet[0] & 0x0f) * 4;
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(offset + 2..offset + 4)?;
        offset += 4 + usize::from(u16::from_be_bytes([ext[0], ext[1]])) * 4;
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    Some(RtpView {
        payload_type: pt,
        seq: u16::from_be_bytes([packet[2], packet[3]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload: packet.get(offset..end)?,
    })
}

/// Raw PCMU audio for `rtp_stream` (PT 0: 160 bytes per 20 ms packet), `frames` packets
/// numbered from `first`, each packet's payload distinct: its first two bytes are the frame
/// number, the rest a pattern of it. A test can so tell which of SIPp's packets arrived where,
/// and two SIPp instances given different numbers apart.
pub fn pcmu_frames(first: u16, frames: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(usize::from(frames) * 160);
    for f in first..first.saturating_add(frames) {
        out.extend_from_slice(&f.to_be_bytes());
        out.extend((2..160u16).map(|i| (f.wrapping_mul(31).wrapping_add(i * 7) & 0xff) as u8));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str =
        "----------------------------------------------- 2026-12-01 00:14:29.493190\n\
        UDP message sent (494 bytes):\n\n\
        INVITE sip:bob@198.18.10.1:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 198.18.10.2:5060;branch=z9hG4bK-7723-1-0\r\n\
        CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\r\n\
        v=0\r\nm=audio 6000 RTP/AVP 0\r\n\n\
        ----------------------------------------------- 2026-12-01 00:14:29.493351\n\
        UDP message received [297] bytes :\n\n\
        SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n\n\
        ----------------------------------------------- 2026-12-01 00:14:29.493999\n\
        TCP message received [20] bytes :\n\n\
        SIP/2.0 200 OK\r\ncseq: 2 CANCEL\r\n\r\n\n";

    #[test]
    fn the_message_log_is_read_back() {
        let m = parse_messages(LOG);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].direction, Direction::Sent);
        assert_eq!(m[0].method(), Some("INVITE"));
        assert_eq!(m[0].status(), None);
        assert_eq!(m[0].cseq_method(), Some("INVITE"));
        assert_eq!(m[0].body(), "v=0\r\nm=audio 6000 RTP/AVP 0\r\n");
        assert_eq!(m[1].direction, Direction::Received);
        assert_eq!(m[1].status(), Some(180));
        assert_eq!(m[1].method(), None);
        assert_eq!(m[2].transport, "TCP");
        assert_eq!(
            (m[2].status(), m[2].cseq_method()),
            (Some(200), Some("CANCEL"))
        );
        assert!(parse_messages("nothing\n").is_empty());
    }

    #[test]
    fn statistics_are_the_last_full_line() {
        let text = "StartTime;SuccessfulCall(C);FailedCall(C);\n\
            2026-12-01\t00:14:29;0;0;\n\
            2026-12-01\t00:14:30;1;0;\n\
            cut;";
        let s = Stats::parse(text).unwrap();
        assert_eq!(s.successful_calls(), 1);
        assert_eq!(s.failed_calls(), 0);
        assert_eq!(s.counter("StartTime"), None);
        assert_eq!(Stats::parse(""), None);
    }

    #[test]
    fn arguments_name_every_file_and_bound() {
        let opts = SippOpts::uac(
            "caller",
            Path::new("/s/uac.xml"),
            "198.18.10.2:5060".parse().unwrap(),
            "198.18.10.1:5060".parse().unwrap(),
            "198.18.10.2:6000".parse().unwrap(),
            "bob",
        )
        .over(SippTransport::Tcp)
        .key("rtp_stream", "/t/a.ulaw,-1,0");
        let a = opts.args(Path::new("/t"));
        assert_eq!(a[0], "198.18.10.1:5060");
        let joined = a.join(" ");
        for part in [
            "-sf /s/uac.xml",
            "-t t1",
            "-i 198.18.10.2 -p 5060",
            "-mi 198.18.10.2 -mp 6000",
            "-s bob",
            "-m 1",
            "-message_file /t/caller.messages.log",
            "-stf /t/caller.stats.csv",
            "-timeout 15s",
            "-timeout_error",
            "-key rtp_stream /t/a.ulaw,-1,0",
        ] {
            assert!(joined.contains(part), "{part} in {joined}");
        }
        let uas = SippOpts::uas(
            "callee",
            Path::new("/s/uas.xml"),
            "198.18.20.2:5060".parse().unwrap(),
            "198.18.20.2:6000".parse().unwrap(),
        );
        assert_eq!(uas.args(Path::new("/t"))[0], "-sf");
    }

    #[test]
    fn rtp_payloads_and_audio_frames() {
        let audio = pcmu_frames(0, 3);
        assert_eq!(audio.len(), 480);
        assert_eq!(&audio[160..162], &[0, 1]);
        assert_eq!(&pcmu_frames(1000, 1)[..2], &[0x03, 0xe8]);
        assert_ne!(audio[2..160], audio[162..320]);
        let mut p = vec![0x80, 0, 0, 7, 0, 0, 0, 160, 1, 2, 3, 4];
        p.extend_from_slice(&audio[..160]);
        let v = parse_rtp(&p).unwrap();
        assert_eq!((v.payload_type, v.seq, v.ssrc), (0, 7, 0x0102_0304));
        assert_eq!(v.payload, &audio[..160]);
        // RTCP (PT 200 = SR with the marker bit) and short packets are not RTP.
        assert!(parse_rtp(&[0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(parse_rtp(&[0x80, 0, 0]).is_none());
        // An extension header and padding are skipped.
        let mut x = vec![
            0xb0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 9, 9, 9, 9,
        ];
        x.extend_from_slice(&[5, 6, 0, 2]);
        assert_eq!(parse_rtp(&x).unwrap().payload, &[5, 6]);
    }
}
