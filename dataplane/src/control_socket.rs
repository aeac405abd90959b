//! The control socket: a local Unix socket speaking JSON lines, schema version 1
//! (`docs/control-socket.md`). Requests reach the worker as [`ControlMsg`]s over crossbeam;
//! the worker applies them between bursts, so forwarding never pauses.
//!
//! ```text
//! {"version":1,"op":"add_call","call":{...CallSpec...}}      -> {"ok":true}
//! {"version":1,"op":"modify_call","call":{...}}              -> {"ok":true}
//! {"version":1,"op":"remove_call","id":"c1"}                 -> {"ok":true,"result":{call stats}}
//! {"version":1,"op":"list_calls"}                            -> {"ok":true,"result":["c1",...]}
//! {"version":1,"op":"stats","id":"c1"}  (id optional)        -> {"ok":true,"result":{...}}
//! {"version":1,"op":"core_map"}                              -> {"ok":true,"result":{...}}
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::relay::{CallStats, DropReason, LegStats, WorkerStats};
use crate::session::{CallSpec, SCHEMA_VERSION};
use crate::worker::ControlMsg;

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    AddCall { call: CallSpec },
    ModifyCall { call: CallSpec },
    RemoveCall { id: String },
    ListCalls,
    Stats { id: Option<String> },
    CoreMap,
}

#[derive(Deserialize)]
struct Envelope {
    version: u32,
    #[serde(flatten)]
    request: Request,
}

fn drops_json(drops: &[u64; DropReason::COUNT]) -> Value {
    let map: serde_json::Map<String, Value> = DropReason::ALL
        .iter()
        .filter(|r| drops[r.index()] > 0)
        .map(|r| (r.name().to_owned(), json!(drops[r.index()])))
        .collect();
    Value::Object(map)
}

fn leg_json(s: &LegStats, clock_rate_hz: f64) -> Value {
    json!({
        "rx_packets": s.rx_packets,
        "rx_bytes": s.rx_bytes,
        "rx_rtcp": s.rx_rtcp,
        "tx_packets": s.tx_packets,
        "tx_bytes": s.tx_bytes,
        "rtp_expected": s.rtp.expected(),
        "rtp_lost": s.rtp.lost(),
        "jitter_ms": s.rtp.jitter() * 1000.0 / clock_rate_hz,
        "last_rx_ns": s.last_rx_ns,
        "drops": drops_json(&s.drops),
    })
}

/// A call's counters as JSON (jitter in ms at 8 kHz, the schema's default clock).
pub fn call_json(c: &CallStats) -> Value {
    json!({
        "id": c.id,
        "media": c.media.iter().map(|[a, b]| json!({"a": leg_json(a, 8000.0), "b": leg_json(b, 8000.0)})).collect::<Vec<_>>(),
    })
}

/// A worker's counters as JSON.
pub fn worker_json(w: &WorkerStats) -> Value {
    json!({"rx": w.rx, "forwarded": w.forwarded, "replies": w.replies, "handed_over": w.handed_over, "drops": drops_json(&w.drops)})
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
    core_map: Value,
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

fn handle(conn: UnixStream, router: &Router, core_map: &Value) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let response = match answer(&line, router, core_map) {
            Ok(result) => json!({"ok": true, "result": result}),
            Err(e) => json!({"ok": false, "error": e}),
        };
        if writeln!(out, "{response}").is_err() {
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
pub fn answer(line: &str, router: &Router, core_map: &Value) -> Result<Value, String> {
    let env: Envelope = serde_json::from_str(line).map_err(|e| format!("bad request: {e}"))?;
    if env.version != SCHEMA_VERSION {
        return Err(format!(
            "unsupported version {} (this relay speaks {SCHEMA_VERSION})",
            env.version
        ));
    }
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
            Ok(call_json(&stats))
        }
        Request::ListCalls => {
            let mut ids = Vec::new();
            for w in &router.workers {
                ids.extend(ask(w, ControlMsg::ListCalls)?);
            }
            ids.sort();
            Ok(json!(ids))
        }
        Request::Stats { id: Some(id) } => {
            let w = router.owner(&id)?;
            match ask(worker(w), |r| ControlMsg::CallStats(id.clone(), r))? {
                Some(s) => Ok(call_json(&s)),
                None => Err(format!("no call {id}")),
            }
        }
        Request::Stats { id: None } => {
            let mut per_worker = Vec::new();
            let mut total = WorkerStats::default();
            for w in &router.workers {
                let s = ask(w, ControlMsg::WorkerStats)?;
                total.rx += s.rx;
                total.forwarded += s.forwarded;
                total.replies += s.replies;
                for (t, d) in total.drops.iter_mut().zip(s.drops) {
                    *t += d;
                }
                per_worker.push(worker_json(&s));
            }
            let mut v = worker_json(&total);
            v["workers"] = json!(per_worker);
            Ok(v)
        }
        Request::CoreMap => Ok(core_map.clone()),
    }
}
