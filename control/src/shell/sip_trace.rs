//! The just-in-time SIP trace of relay-control: while an operator's trace grant is active
//! (`relayctl trace start`), every SIP message the event loop receives or sends is handed to
//! a thread that seals it into the CDR store's trace files (`cdr::trace`: keys redacted,
//! encrypted, purged with the records of its day). Without a grant nothing is copied: the
//! event loop pays one atomic load per message.
//!
//! The thread looks at the grants directory once a second (grants are files, made by
//! `relayctl` with the KEK; relay-control picks them up, and notices a stop or lapse, within
//! that second), verifies the grants only when the directory changed or the trace grant
//! lapsed (verifying reads the audit log), and writes what the event loop queued. The queue is bounded: if the disk cannot
//! keep up, messages are left out of the trace and counted, never waited for.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cdr::access::{Access, GrantScope};
use crate::cdr::trace::{redact_keys, Direction, TraceEntry, TraceWriter};
use crate::cdr::CdrConfig;

/// Messages that may wait for the trace writer.
const QUEUE: usize = 4096;
/// How often the thread looks for trace grants.
const POLL: Duration = Duration::from_secs(1);

/// The event loop's handle; see the module docs.
#[derive(Debug)]
pub struct SipTracer {
    active: Arc<AtomicBool>,
    grant: Arc<Mutex<Option<String>>>,
    tx: SyncSender<(String, TraceEntry)>,
    dropped: Arc<AtomicU64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the grants directory looked like: its modification time and its entries.
#[derive(Debug, PartialEq, Eq)]
struct GrantsDir {
    modified: Option<std::time::SystemTime>,
    entries: Vec<std::ffi::OsString>,
}

impl GrantsDir {
    fn read(dir: &std::path::Path) -> GrantsDir {
        let modified = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        let mut entries: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        entries.sort();
        GrantsDir { modified, entries }
    }
}

impl SipTracer {
    /// Starts the trace thread for the store `config` describes (its KEK must load).
    pub fn start(config: CdrConfig) -> Result<SipTracer, crate::cdr::CdrError> {
        let access = Access::open(&config)?;
        let grants_dir = config.dir.join("access").join("grants");
        let mut writer = TraceWriter::open(&config)?;
        let (tx, rx) = mpsc::sync_channel::<(String, TraceEntry)>(QUEUE);
        let active = Arc::new(AtomicBool::new(false));
        let grant = Arc::new(Mutex::new(None::<String>));
        let dropped = Arc::new(AtomicU64::new(0));
        let tracer = SipTracer {
            active: active.clone(),
            grant: grant.clone(),
            tx,
            dropped: dropped.clone(),
        };
        std::thread::Builder::new()
            .name("sip-trace".into())
            .spawn(move || {
                let mut next_poll = Instant::now();
                let mut failing = false;
                // Verifying grants reads the audit log: do it only when the grants directory
                // changed (a grant given, stopped or lapsed and removed) or the current trace
                // grant lapses, not every second.
                let mut seen: Option<GrantsDir> = None;
                let mut lapses_ms = i64::MAX;
                loop {
                    if Instant::now() >= next_poll {
                        next_poll = Instant::now() + POLL;
                        let dir = GrantsDir::read(&grants_dir);
                        let now = now_ms();
                        if seen.as_ref() == Some(&dir) && now < lapses_ms {
                            // Nothing changed.
                        } else {
                            seen = Some(dir);
                            let found = match access.active(now) {
                                Ok(grants) => grants
                                    .into_iter()
                                    .rev()
                                    .find(|g| g.scope == GrantScope::Trace)
                                    .map(|g| (g.id, g.expires_ms)),
                                Err(e) => {
                                    tracing::warn!(error = %e, "SIP trace: cannot read the grants; tracing off");
                                    None
                                }
                            };
                            lapses_ms = found.as_ref().map_or(i64::MAX, |(_, exp)| *exp);
                            let found = found.map(|(id, _)| id);
                        let mut current = grant.lock().expect("not poisoned");
                        if *current != found {
                            match &found {
                                Some(id) => tracing::info!(grant = %id, "SIP trace on (messages are written encrypted to the CDR store)"),
                                None => tracing::info!(
                                    dropped = dropped.load(Ordering::Relaxed),
                                    "SIP trace off"
                                ),
                            }
                            active.store(found.is_some(), Ordering::Relaxed);
                            *current = found;
                        }
                        }
                    }
                    match rx.recv_timeout(POLL) {
                        Ok((id, entry)) => match writer.append(&id, &entry) {
                            Ok(()) => failing = false,
                            Err(e) => {
                                dropped.fetch_add(1, Ordering::Relaxed);
                                if !failing {
                                    tracing::warn!(error = %e, "SIP trace: cannot write; messages are left out");
                                    failing = true;
                                }
                            }
                        },
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(crate::cdr::CdrError::Io)?;
        Ok(tracer)
    }

    /// Traces one message if a trace grant is active: `describe` gives its transport and
    /// peer, `bytes` the message (both only called while tracing).
    pub fn record(
        &self,
        direction: Direction,
        describe: impl FnOnce() -> (String, String),
        bytes: &[u8],
    ) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        let Some(id) = self.grant.lock().expect("not poisoned").clone() else {
            return;
        };
        let (transport, peer) = describe();
        let entry = TraceEntry {
            ts_ms: now_ms(),
            direction,
            transport,
            peer,
            // Redacted here already, so no key waits in the queue.
            text: redact_keys(&String::from_utf8_lossy(bytes)),
        };
        match self.tx.try_send((id, entry)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
