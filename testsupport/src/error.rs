//! The harness's one error type: every failure says what it was doing and, where a process is
//! involved, what that process printed, so a failing integration test explains itself.

use std::time::Duration;

/// What went wrong while building a topology, running a process or checking a capture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An external command (`ip`, `ethtool`, ...) exited unsuccessfully.
    #[error("`{command}` failed: {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its standard error and output.
        output: String,
    },
    /// Something did not happen within its time bound.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited, with whatever context helps (events seen, log tail).
        what: String,
        /// The bound.
        after: Duration,
    },
    /// A process of the harness (baresip, tcpdump) failed or said no.
    #[error("{0}")]
    Process(String),
    /// A capture or trace could not be read.
    #[error("malformed {0}")]
    Malformed(String),
    /// A refused argument (for example an address outside 198.18.0.0/15).
    #[error("refused: {0}")]
    Refused(String),
    /// libsrtp, the reference, could not be run.
    #[error("libsrtp: {0}")]
    Libsrtp(String),
}

/// The harness's result.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Io`] with context.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
