use std::ffi::CStr;
use std::fmt;

/// An EAL, mempool or ethdev call that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpdkError {
    /// `rte_eal_init` was already called in this process (it can run only once).
    AlreadyInitialised,
    /// An argument could not be passed to DPDK (e.g. it contains a NUL byte).
    InvalidArgument(String),
    /// No ethdev port has this name.
    NoSuchPort(String),
    /// A DPDK call returned an error code.
    Call {
        /// The DPDK function that failed.
        op: &'static str,
        /// The positive errno value (from the return code or `rte_errno`).
        errno: i32,
    },
}

impl DpdkError {
    /// The error for a failed call, taking the reason from `rte_errno`.
    pub(super) fn from_rte_errno(op: &'static str) -> Self {
        // SAFETY: relay_rte_errno reads the calling thread's per-lcore errno; no preconditions.
        let errno = unsafe { relay_sys::relay_rte_errno() };
        DpdkError::Call { op, errno }
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkError::AlreadyInitialised => {
                f.write_str("the DPDK EAL is already initialised in this process")
            }
            DpdkError::InvalidArgument(why) => write!(f, "invalid DPDK argument: {why}"),
            DpdkError::NoSuchPort(name) => write!(f, "no DPDK port named {name:?}"),
            DpdkError::Call { op, errno } => {
                // SAFETY: rte_strerror returns a pointer to a static or thread-local
                // NUL-terminated string for any errno value.
                let reason = unsafe { CStr::from_ptr(relay_sys::rte_strerror(*errno)) };
                write!(
                    f,
                    "{op} failed: {} (errno {errno})",
                    reason.to_string_lossy()
                )
            }
        }
    }
}

impl std::error::Error for DpdkError {}

/// Turns a DPDK return code into a `Result`: negative values are `-errno`.
pub(super) fn check(op: &'static str, rc: i32) -> Result<i32, DpdkError> {
    if rc < 0 {
        Err(DpdkError::Call { op, errno: -rc })
    } else {
        Ok(rc)
    }
}
