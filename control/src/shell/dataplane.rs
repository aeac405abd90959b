//! The data plane's control socket, driven from one thread: programming requests are done in
//! order (an answer is only sent after its media is installed), with the blocking client of
//! `relay-session`. The event loop hears back how each went.

use std::path::{Path, PathBuf};
use std::time::Duration;

use relay_b2bua::{Action, CallKey, ProgramOp};
use relay_session::client::{ClientError, ControlClient};
use relay_session::stats::{CallCounters, CoreMap};
use tokio::sync::mpsc;

/// One change to make.
#[derive(Debug)]
pub struct ProgramRequest {
    /// The call.
    pub call: CallKey,
    /// The change.
    pub op: ProgramOp,
    /// What follows if it is accepted.
    pub then: Vec<Action>,
}

/// How it went.
#[derive(Debug)]
pub struct ProgramDone {
    /// The call.
    pub call: CallKey,
    /// `Ok` with the final counters of a removed call; `Err` with the data plane's reason.
    pub result: Result<Option<CallCounters>, String>,
    /// What follows if it was accepted.
    pub then: Vec<Action>,
}

/// The thread's handle.
#[derive(Debug)]
pub struct Dataplane {
    requests: crossbeam_channel::Sender<ProgramRequest>,
}

impl Dataplane {
    /// Starts the thread for the socket at `path`; results go to `done`.
    pub fn start(
        path: PathBuf,
        done: mpsc::UnboundedSender<ProgramDone>,
    ) -> std::io::Result<Dataplane> {
        let (tx, rx) = crossbeam_channel::unbounded::<ProgramRequest>();
        std::thread::Builder::new()
            .name("dataplane".into())
            .spawn(move || {
                let mut client: Option<ControlClient> = None;
                for req in rx {
                    let result = execute(&path, &mut client, &req.op);
                    if result.is_err() {
                        // A broken connection is made again for the next request.
                        client = None;
                    }
                    let _ = done.send(ProgramDone {
                        call: req.call,
                        result,
                        then: req.then,
                    });
                }
            })?;
        Ok(Dataplane { requests: tx })
    }

    /// Queues a change.
    pub fn program(&self, req: ProgramRequest) {
        let _ = self.requests.send(req);
    }
}

fn execute(
    path: &Path,
    client: &mut Option<ControlClient>,
    op: &ProgramOp,
) -> Result<Option<CallCounters>, String> {
    if client.is_none() {
        *client = Some(
            ControlClient::connect_waiting(path, Duration::from_secs(2))
                .map_err(|e| e.to_string())?,
        );
    }
    let c = client.as_mut().expect("connected above");
    let r: Result<Option<CallCounters>, ClientError> = match op {
        ProgramOp::Add(spec) => c.add_call(spec).map(|()| None),
        ProgramOp::Modify(spec) => c.modify_call(spec).map(|()| None),
        ProgramOp::Remove(id) => c.remove_call(id).map(Some),
    };
    r.map_err(|e| e.to_string())
}

/// Reads the data plane's core map, waiting up to `wait` for its socket.
pub fn core_map(path: &Path, wait: Duration) -> Result<CoreMap, ClientError> {
    ControlClient::connect_waiting(path, wait)?.core_map()
}
