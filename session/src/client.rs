//! A blocking client of the data plane's control socket, for the control plane, `relayctl`
//! and the tests: typed requests in, typed answers out, one request at a time per connection.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::control::{Envelope, Request, Response};
use crate::schema::CallSpec;
use crate::stats::{CallCounters, CoreMap, WorkerCounters};

/// How long one answer may take before the client gives up (the data plane answers between
/// bursts, within milliseconds; its own wait on a worker is 5 s).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request got no useful answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket could not be reached, written or read.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The data plane closed the connection.
    #[error("control socket: the data plane closed the connection")]
    Closed,
    /// The answer was not the protocol's.
    #[error("control socket: unexpected answer: {0}")]
    Protocol(String),
    /// The data plane refused or failed the request, saying why.
    #[error("{0}")]
    Refused(String),
}

/// One connection to the control socket.
#[derive(Debug)]
pub struct ControlClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl ControlClient {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<ControlClient, ClientError> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        stream.set_write_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(ControlClient {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Connects to `path`, waiting up to `wait` for the data plane to create it (start-up).
    pub fn connect_waiting(path: &Path, wait: Duration) -> Result<ControlClient, ClientError> {
        let deadline = Instant::now() + wait;
        loop {
            match ControlClient::connect(path) {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Sends one line as it is and reads the answer line: for tests of the protocol itself.
    pub fn exchange_line(&mut self, line: &str) -> Result<String, ClientError> {
        self.writer.write_all(line.as_bytes())?;
        self.writer.write_all(b"\n")?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(ClientError::Closed);
        }
        Ok(answer)
    }

    /// Sends `request` and returns its result, or the data plane's reason for refusing it.
    pub fn request(&mut self, request: Request) -> Result<serde_json::Value, ClientError> {
        let line = zeroize::Zeroizing::new(
            serde_json::to_string(&Envelope::new(request))
                .map_err(|e| ClientError::Protocol(e.to_string()))?,
        );
        let answer = self.exchange_line(&line)?;
        match serde_json::from_str::<Response>(&answer) {
            Ok(Response::Ok(result)) => Ok(result),
            Ok(Response::Err(reason)) => Err(ClientError::Refused(reason)),
            Err(e) => Err(ClientError::Protocol(e.to_string())),
        }
    }

    fn typed<T: DeserializeOwned>(&mut self, request: Request) -> Result<T, ClientError> {
        serde_json::from_value(self.request(request)?)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Installs `call`.
    pub fn add_call(&mut self, call: &CallSpec) -> Result<(), ClientError> {
        self.request(Request::AddCall { call: call.clone() })
            .map(drop)
    }

    /// Replaces the media of the installed call with `call`'s id.
    pub fn modify_call(&mut self, call: &CallSpec) -> Result<(), ClientError> {
        self.request(Request::ModifyCall { call: call.clone() })
            .map(drop)
    }

    /// Removes call `id`; its final counters.
    pub fn remove_call(&mut self, id: &str) -> Result<CallCounters, ClientError> {
        self.typed(Request::RemoveCall { id: id.to_owned() })
    }

    /// The ids of the installed calls, sorted.
    pub fn list_calls(&mut self) -> Result<Vec<String>, ClientError> {
        self.typed(Request::ListCalls)
    }

    /// Call `id`'s counters.
    pub fn call_stats(&mut self, id: &str) -> Result<CallCounters, ClientError> {
        self.typed(Request::Stats {
            id: Some(id.to_owned()),
        })
    }

    /// All workers' counters summed, each worker's in [`WorkerCounters::workers`].
    pub fn worker_stats(&mut self) -> Result<WorkerCounters, ClientError> {
        self.typed(Request::Stats { id: None })
    }

    /// The core map.
    pub fn core_map(&mut self) -> Result<CoreMap, ClientError> {
        self.typed(Request::CoreMap)
    }
}
