use std::ffi::{c_char, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use super::DpdkError;

/// Set by the first `Eal::init`: DPDK's EAL can be initialised once per process, even after
/// a failed attempt or a cleanup.
static EAL_CLAIMED: AtomicBool = AtomicBool::new(false);

/// The initialised DPDK Environment Abstraction Layer.
///
/// Dropping it runs `rte_eal_cleanup`, which releases EAL memory (mempools included); the
/// lifetimes on [`super::Port`], [`super::Mbuf`] and [`super::PktMbufPool`] make sure nothing
/// that lives in that memory is still in use.
pub struct Eal {
    /// The argument strings handed to `rte_eal_init`. DPDK may keep pointers into them
    /// (getopt permutes argv in place), so they live as long as the EAL.
    _args: Vec<CString>,
    _argv: Vec<*mut c_char>,
    /// EAL state is per process and tied to the main lcore's thread.
    _not_send: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises the EAL with `args` (EAL options only, without a program name), e.g.
    /// `["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--vdev=net_ring0"]`.
    pub fn init<I, S>(args: I) -> Result<Eal, DpdkError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut owned = vec![CString::new("relay").expect("no NUL in literal")];
        for arg in args {
            let arg = arg.into();
            let c = CString::new(arg.clone())
                .map_err(|_| DpdkError::InvalidArgument(format!("{arg:?} contains a NUL byte")))?;
            owned.push(c);
        }
        if EAL_CLAIMED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialised);
        }
        let mut argv: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr().cast_mut()).collect();
        let argc = i32::try_from(argv.len())
            .map_err(|_| DpdkError::InvalidArgument("too many arguments".into()))?;
        // SAFETY: argv holds argc pointers to NUL-terminated strings owned by `owned`, which
        // is stored in the returned Eal and so outlives every use DPDK makes of them. The
        // EAL_CLAIMED flag guarantees this is the only call in the process.
        let rc = unsafe { relay_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_rte_errno("rte_eal_init"));
        }
        Ok(Eal {
            _args: owned,
            _argv: argv,
            _not_send: PhantomData,
        })
    }

    /// The number of ethdev ports the EAL probed (PCI devices and `--vdev`s).
    pub fn port_count(&self) -> u16 {
        // SAFETY: the EAL is initialised (self exists); the call only reads ethdev state.
        unsafe { relay_sys::rte_eth_dev_count_avail() }
    }

    /// The lcore id of the calling thread (the main lcore when called from `main`).
    pub fn lcore_id(&self) -> u32 {
        // SAFETY: reads the calling thread's per-lcore variable; valid after rte_eal_init.
        unsafe { relay_sys::rte_lcore_id() }
    }

    /// The number of lcores the EAL was given (`-l`/`--lcores`).
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: reads EAL configuration; valid after rte_eal_init.
        unsafe { relay_sys::rte_lcore_count() }
    }

    /// The NUMA socket of the calling lcore.
    pub fn socket_id(&self) -> i32 {
        // SAFETY: reads the calling thread's per-lcore variable; valid after rte_eal_init.
        let socket = unsafe { relay_sys::rte_socket_id() };
        i32::try_from(socket).unwrap_or(-1)
    }

    /// TSC cycles since boot, and their frequency in Hz.
    pub fn tsc(&self) -> (u64, u64) {
        // SAFETY: rte_get_tsc_cycles reads the TSC; rte_get_tsc_hz reads a value the EAL
        // calibrated during rte_eal_init.
        unsafe { (relay_sys::rte_get_tsc_cycles(), relay_sys::rte_get_tsc_hz()) }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: every object living in EAL memory borrows `self`, so none is alive now.
        unsafe {
            relay_sys::rte_eal_cleanup();
        }
    }
}
