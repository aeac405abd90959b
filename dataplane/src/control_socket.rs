//! The control socket's server: a local Unix socket (mode 0600) speaking the JSON-lines
//! protocol of `relay_session::control` (`docs/control-socket.md`). Requests reach the owning
//! worker as [`ControlMsg`]s over crossbeam; the worker applies them between bursts, so
//! forwarding never pauses and no lock is taken on the packet path.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};
use relay_session::control::{Envelope, Request, Response};
use relay_session::stats::{
    CallCounters, CoreMap, Drops, LegCounters, MediaCounters, WorkerCounters,
};
use relay_session::CallSpec;
use serde_json::Value;

use crate::relay::{CallStats, DropReason, LegStats, WorkerStats};
use crate::worker::ControlMsg;

fn drops(drops: &[u64; DropReason::COUNT]) -> Drops {
    DropReason::ALL
        .iter()
        .filter(|r| drops[r.index()] > 0)
        .map(|r| (r.name().to_owned(), drops[r.index()]))
        .collect()
}

fn leg_counters(s: &LegStats, clock_rate_hz: f64) -> LegCounters {
    LegCounters {
        rx_packets: s.rx_packets,
        rx_bytes: s.rx_bytes,
        rx_rtcp: s.rx_rtcp,
        tx_packets: s.tx_packets,
        tx_bytes: s.tx_bytes,
        rtp_expected: s.rtp.expected(),
        rtp_lost: s.rtp.lost(),
        jitter_ms: s.rtp.jitter() * 1000.0 / clock_rate_hz,
        last_rx_ns: s.last_rx_ns,
        drops: drops(&s.drops),
        srtp_receive: s.srtp_receive.iter().map(|&p| p.into()).collect(),
        srtp_send: s.srtp_send.iter().map(|&p| p.into()).collect(),
    }
}

/// A call's counters as the control socket reports them (jitter in ms at 8 kHz, the schema's
/// default clock).
pub fn call_counters(c: &CallStats) -> CallCounters {
    CallCounters {
        id: c.id.clone(),
        media: c
            .media
            .iter()
            .map(|[a, b]| MediaCounters {
                a: leg_counters(a, 8000.0),
                b: leg_counters(b, 8000.0),
            })
            .collect(),
    }
}

/// A worker's counters as the control socket reports them.
pub fn worker_counters(w: &WorkerStats) -> WorkerCounters {
    WorkerCounters {
        rx: w.rx,
        forwarded: w.forwarded,
        replies: w.replies,
        handed_over: w.handed_over,
        held: w.held,
        drops: drops(&w.drops),
        srtp: w.srtp,
        run_ns: w.run_ns,
        busy_ns: w.busy_ns,
        workers: None,
    }
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Names the worker a call's local ports map to, or says why none can take it.
pub type Steer = Box<dyn Fn(&CallSpec) -> Result<usize, String> + Send + Sync>;

/// Which worker owns which call, and where a new call goes.
pub struct Router {
    workers: Vec<Sender<ControlMsg>>,
    steer: Steer,
    owners: Mutex<HashMap<String, usize>>,
}

impl Router {
    /// A router over `workers`; `steer` names the worker a call's ports map to.
    pub fn new(
        workers: Vec<Sender<ControlMsg>>,
        steer: impl Fn(&CallSpec) -> Result<usize, String> + Send + Sync + 'static,
    ) -> Router {
        Router {
            workers,
            steer: Box::new(steer),
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `id` was installed on `worker` (calls from the sessions file).
    pub fn register(&self, id: &str, worker: usize) {
        self.set_owner(id, Some(worker));
    }

    fn owner(&self, id: &str) -> Result<usize, String> {
        self.owners
            .lock()
            .ok()
            .and_then(|o| o.get(id).copied())
            .ok_or_else(|| format!("no call {id}"))
    }

    fn set_owner(&self, id: &str, worker: Option<usize>) {
        if let Ok(mut o) = self.owners.lock() {
            match worker {
                Some(w) => o.insert(id.to_owned(), w),
                None => o.remove(id),
            };
        }
    }
}

/// Serves the control socket at `path` until the process ends, one thread per connection.
pub fn serve(
    path: &Path,
    router: Arc<Router>,
    core_map: CoreMap,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    if path.exists() {
        // A socket left by an earlier run; anything else is refused by bind below.
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let path: PathBuf = path.to_owned();
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let router = router.clone();
                let core_map = core_map.clone();
                let _ = std::thread::Builder::new()
                    .name("control-conn".into())
                    .spawn(move || handle(conn, &router, &core_map));
            }
            let _ = std::fs::remove_file(&path);
        })
}

fn handle(conn: UnixStream, router: &Router, core_map: &CoreMap) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let response = match answer(&line, router, core_map) {
            Ok(result) => Response::Ok(result),
            Err(e) => Response::Err(e),
        };
        let Ok(text) = serde_json::to_string(&response) else {
            return;
        };
        if writeln!(out, "{text}").is_err() {
            return;
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);

fn ask<T>(
    worker: &Sender<ControlMsg>,
    make: impl FnOnce(Sender<T>) -> ControlMsg,
) -> Result<T, String> {
    let (tx, rx) = bounded(1);
    worker
        .send(make(tx))
        .map_err(|_| "the worker has stopped".to_owned())?;
    rx.recv_timeout(TIMEOUT)
        .map_err(|_| "the worker did not answer".to_owned())
}

/// Answers one request line.
pub fn answer(line: &str, router: &Router, core_map: &CoreMap) -> Result<Value, String> {
    let env = Envelope::parse(line)?;
    let worker = |w: usize| &router.workers[w];
    match env.request {
        Request::AddCall { call } => {
            let w = (router.steer)(&call)?;
            let id = call.id.clone();
            ask(worker(w), |r| ControlMsg::AddCall(call, r))?.map_err(|e| e.to_string())?;
            router.set_owner(&id, Some(w));
            Ok(Value::Null)
        }
        Request::ModifyCall { call } => {
            let w = router.owner(&call.id)?;
            let to = (router.steer)(&call)?;
            if to != w {
                return Err(format!("call {}: its new ports map to worker {to}, not to worker {w} that owns the call", call.id));
            }
            ask(worker(w), |r| ControlMsg::ModifyCall(call, r))?
                .map(|()| Value::Null)
                .map_err(|e| e.to_string())
        }
        Request::RemoveCall { id } => {
            let w = router.owner(&id)?;
            let stats = ask(worker(w), |r| ControlMsg::RemoveCall(id.clone(), r))?
                .map_err(|e| e.to_string())?;
            router.set_owner(&id, None);
            Ok(to_value(&call_counters(&stats)))
        }
        Request::ListCalls => {
            let mut ids = Vec::new();
            for w in &router.workers {
                ids.extend(ask(w, ControlMsg::ListCalls)?);
            }
            ids.sort();
            Ok(to_value(&ids))
        }
        Request::Stats { id: Some(id) } => {
            let w = router.owner(&id)?;
            match ask(worker(w), |r| ControlMsg::CallStats(id.clone(), r))? {
                Some(s) => Ok(to_value(&call_counters(&s))),
                None => Err(format!("no call {id}")),
            }
        }
        Request::Stats { id: None } => {
            let mut per_worker = Vec::new();
            for w in &router.workers {
                per_worker.push(worker_counters(&ask(w, ControlMsg::WorkerStats)?));
            }
            Ok(to_value(&WorkerCounters::sum(per_worker)))
        }
        Request::CoreMap => Ok(to_value(core_map)),
        _ => Err("this relay does not serve that request".to_owned()),
    }
}
