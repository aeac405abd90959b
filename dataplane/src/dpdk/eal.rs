use std::ffi::{c_char, c_int, c_void, CString};
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
    /// Initialised and cleaned up on the main lcore's thread.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: after rte_eal_init the Eal value is only read: its methods query per-process EAL
// state or the calling thread's own lcore variables, which DPDK allows from any EAL thread.
// Dropping (rte_eal_cleanup) still happens where the value lives, the main thread, because Eal
// stays !Send.
unsafe impl Sync for Eal {}

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

/// Closures launched on worker lcores inside [`Eal::scope`]; all have returned when the scope
/// ends, so they may borrow from the surrounding stack frame.
pub struct LaunchScope<'scope, 'env: 'scope> {
    launched: Vec<u32>,
    _scope: PhantomData<&'scope mut &'env ()>,
}

type LaunchedFn<'scope> = Box<dyn FnOnce() + Send + 'scope>;

extern "C" fn launch_trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` came from Box::into_raw in LaunchScope::launch and DPDK hands it to this
    // function exactly once. The closure's real lifetime is 'scope; Eal::scope waits for the
    // lcore before 'scope ends, so it is never called after its borrows end.
    let f = unsafe { Box::from_raw(arg.cast::<LaunchedFn<'static>>()) };
    // No unwinding across the FFI boundary.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

impl<'scope> LaunchScope<'scope, '_> {
    /// Runs `f` on worker lcore `lcore` (which must be idle).
    pub fn launch<F: FnOnce() + Send + 'scope>(
        &mut self,
        lcore: u32,
        f: F,
    ) -> Result<(), DpdkError> {
        let boxed: Box<LaunchedFn<'scope>> = Box::new(Box::new(f));
        let raw = Box::into_raw(boxed).cast::<c_void>();
        // SAFETY: the trampoline consumes `raw` once; Eal::scope waits for this lcore before
        // the borrows captured by `f` end.
        let rc = unsafe { relay_sys::rte_eal_remote_launch(Some(launch_trampoline), raw, lcore) };
        if rc < 0 {
            // SAFETY: DPDK did not take `raw`; reclaim it so the closure is dropped once.
            drop(unsafe { Box::from_raw(raw.cast::<LaunchedFn<'scope>>()) });
            return Err(DpdkError::Call {
                op: "rte_eal_remote_launch",
                errno: -rc,
            });
        }
        self.launched.push(lcore);
        Ok(())
    }
}

impl Eal {
    /// Runs `f`, in which closures can be launched on worker lcores; returns once every
    /// launched closure has returned. Returns `f`'s value and the lcores whose closure
    /// panicked.
    pub fn scope<'env, R>(
        &'env self,
        f: impl for<'scope> FnOnce(&mut LaunchScope<'scope, 'env>) -> R,
    ) -> (R, Vec<u32>) {
        let mut scope = LaunchScope {
            launched: Vec::new(),
            _scope: PhantomData,
        };
        let result = f(&mut scope);
        let mut failed = Vec::new();
        for lcore in scope.launched {
            // SAFETY: waiting for an lcore we launched; blocks until its function returned.
            if unsafe { relay_sys::rte_eal_wait_lcore(lcore) } != 0 {
                failed.push(lcore);
            }
        }
        (result, failed)
    }

    /// The worker lcores the EAL was given (all but the main lcore), in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: rte_get_next_lcore only reads EAL configuration; i = -1 starts the walk,
        // skip_main = 1, wrap = 0; it returns RTE_MAX_LCORE at the end.
        let mut i = unsafe { relay_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while i < relay_sys::RTE_MAX_LCORE {
            out.push(i);
            // SAFETY: as above.
            i = unsafe { relay_sys::rte_get_next_lcore(i, 1, 0) };
        }
        out
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
