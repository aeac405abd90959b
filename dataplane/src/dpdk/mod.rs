//! The thin safe layer over DPDK: the only place in `relay-dataplane` with `unsafe`.
//!
//! Ownership model, chosen so the borrow checker proves the teardown order:
//! * [`Eal`] is initialised once per process from owned arguments and cleaned up when dropped.
//! * Everything that lives in EAL memory borrows the `Eal`: mempools ([`PktMbufPool`], created
//!   once at start-up and released by `rte_eal_cleanup`), ports ([`Port`]), packet buffers
//!   ([`Mbuf`]) and fixed-size arrays of them ([`Burst`]). None can outlive the EAL.
//! * FFI results become [`DpdkError`] in one place (`check`), null pointers in the caller.
//!
//! Nothing here allocates per packet: bursts are fixed arrays of `BURST_SIZE` mbuf pointers
//! (as quinn-udp's fixed `BATCH_SIZE` arrays), filled and drained by one FFI call each.

#![allow(unsafe_code)] // This module is the fence: every block carries a `// SAFETY:` note.

mod eal;
mod error;
mod mbuf;
mod port;
mod prefetch;
mod ring;

pub use eal::{Eal, LaunchScope};
pub use error::DpdkError;
pub use mbuf::{Burst, Drain, Mbuf, PktMbufPool, BURST_SIZE};
pub use port::{MacAddr, Port, PortCaps, PortConfig, PortStats, Queue};
pub use prefetch::{prefetch, prefetch_l2, CpuPrefetch};
pub use ring::{MbufRing, RingConsumer, RingProducer};

use error::check;
