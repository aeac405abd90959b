//! The data plane's control socket, driven from one thread: programming requests are done in
//! order (an answer is only sent after its media is installed), with the blocking client of
//! `relay-session`. The event loop hears back how each went.

use std::path::{Path, PathBuf};
use std::time::Duration;

use relay_b2bua::{Action, CallKey, ProgramOp};
use relay_session::client::{ClientError, ControlClient};
use relay_session::stats::{CallCounters, CoreMap};
use tokio::sync::mpsc;

/// A call's counters to read (media timeouts).
#[derive(Debug)]
pub struct StatsRequest {
    /// The call.
    pub call: CallKey,
    /// Its id in the data plane.
    pub id: String,
}

/// What the thread does.
#[derive(Debug)]
pub enum Request {
    /// Program a change.
    Program(ProgramRequest),
    /// Read counters.
    Stats(StatsRequest),
}

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

/// What came back.
#[derive(Debug)]
pub enum Done {
    /// A change was made or refused.
    Program(ProgramDone),
    /// A call's counters: `Ok(None)` if the data plane does not know it, `Err` if the data
    /// plane did not answer.
    Stats {
        /// The call.
        call: CallKey,
        /// Its counters.
        counters: Result<Option<CallCounters>, ()>,
    },
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
    requests: crossbeam_channel::Sender<Request>,
}

impl Dataplane {
    /// Starts the thread for the socket at `path`; results go to `done`.
    pub fn start(path: PathBuf, done: mpsc::UnboundedSender<Done>) -> std::io::Result<Dataplane> {
        let (tx, rx) = crossbeam_channel::unbounded::<Request>();
        std::thread::Builder::new()
            .name("dataplane".into())
            .spawn(move || {
                let mut client: Option<ControlClient> = None;
                for req in rx {
                    match req {
                        Request::Program(req) => {
                            let result = execute(&path, &mut client, &req.op);
                            if result.is_err() {
                                // A broken connection is made again for the next request.
                                client = None;
                            }
                            let _ = done.send(Done::Program(ProgramDone {
                                call: req.call,
                                result,
                                then: req.then,
                            }));
                        }
                        Request::Stats(req) => {
                            // Ok(None): the data plane answered that it does not know the
                            // call; a data plane that does not answer tells nothing.
                            let counters = match connected(&path, &mut client)
                                .map(|c| c.call_stats(&req.id))
                            {
                                Ok(Ok(c)) => Ok(Some(c)),
                                Ok(Err(ClientError::Refused(_))) => Ok(None),
                                _ => {
                                    client = None;
                                    Err(())
                                }
                            };
                            let _ = done.send(Done::Stats {
                                call: req.call,
                                counters,
                            });
                        }
                    }
                }
            })?;
        Ok(Dataplane { requests: tx })
    }

    /// Queues a change.
    pub fn program(&self, req: ProgramRequest) {
        let _ = self.requests.send(Request::Program(req));
    }

    /// Queues a read of a call's counters.
    pub fn stats(&self, req: StatsRequest) {
        let _ = self.requests.send(Request::Stats(req));
    }
}

fn connected<'c>(
    path: &Path,
    client: &'c mut Option<ControlClient>,
) -> Result<&'c mut ControlClient, String> {
    if client.is_none() {
        *client = Some(
            ControlClient::connect_waiting(path, Duration::from_secs(2))
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(client.as_mut().expect("connected above"))
}

fn execute(
    path: &Path,
    client: &mut Option<ControlClient>,
    op: &ProgramOp,
) -> Result<Option<CallCounters>, String> {
    let c = connected(path, client)?;
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
