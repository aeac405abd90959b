//! Network namespaces, veth pairs between them, and processes that are stopped by PID.
//!
//! Everything here cleans up after itself: a [`Netns`] is deleted on drop (with the
//! interfaces inside it), a [`Veth`] pair is deleted on drop, and a [`KillOnDrop`] process is
//! killed and reaped on drop. Types that run a process inside a namespace borrow the
//! [`Netns`], so the compiler makes sure the process is stopped before its namespace goes.
//!
//! Addresses are refused unless they lie in 198.18.0.0/15 (RFC 2544's benchmarking range), so
//! a test cannot address anything but the namespaces it made.

use std::fs::File;
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Runs a command quietly; whether it succeeded.
pub fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a command and returns its standard output, or an [`Error::Command`] with what it
/// printed if it fails.
pub fn run(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("starting `{}`", args.join(" ")), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            command: args.join(" "),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ),
        })
    }
}

/// Whether this process runs as root (its effective uid, from /proc).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Whether this process may make network namespaces: root and iproute2 installed.
pub fn can_make_namespaces() -> bool {
    is_root() && sh(&["ip", "-V"])
}

/// Refuses an address outside 198.18.0.0/15, the only range tests may use.
pub fn check_test_address(addr: Ipv4Addr) -> Result<()> {
    let [a, b, ..] = addr.octets();
    if a == 198 && (b == 18 || b == 19) {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "{addr} is outside 198.18.0.0/15, the only range the tests may use"
        )))
    }
}

/// Parses `A.B.C.D/LEN` and checks it with [`check_test_address`].
pub fn parse_test_cidr(cidr: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Error::Refused(format!("{cidr:?} is not an IPv4 address with /LEN"));
    let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32).ok_or_else(bad)?;
    check_test_address(addr)?;
    Ok((addr, len))
}

static NEXT_NAME: AtomicU32 = AtomicU32::new(0);

/// A network namespace this process made; deleted on drop (with the interfaces inside it).
///
/// Its name is `PREFIX-PID-N`, unique among concurrently running tests and test binaries.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Makes a namespace named after `prefix`, with its loopback up.
    pub fn new(prefix: &str) -> Result<Netns> {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT_NAME.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` to be run inside the namespace (`ip netns exec NAME program`). `ip netns exec`
    /// replaces itself with the program, so the child's PID is the program's.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `args` inside the namespace; its standard output, or an error with what it printed.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Runs `ip -n NAME args` (iproute2 on the namespace).
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Runs `f` on a thread that has entered the namespace: sockets `f` makes belong to the
    /// namespace for their whole life, wherever they are used afterwards.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // setns(2) moves only this thread; the test's other threads stay where they are.
                move_thread_into(&self.name)?;
                Ok(f())
            })
            .join()
            .map_err(|_| Error::Process(format!("a thread in namespace {} panicked", self.name)))?
        })
    }

    /// Moves the calling thread into the namespace for the rest of its life (sockets it
    /// makes from then on belong to the namespace; sockets made before keep theirs). For a
    /// thread of its own, such as a relay between a host address and a namespace service.
    pub fn move_current_thread(&self) -> Result<()> {
        move_thread_into(&self.name)
    }

    /// Connects a TCP socket inside the namespace to `addr` (loopback services of processes in
    /// it, such as baresip's `ctrl_tcp`), trying for at most `timeout`.
    pub fn connect_tcp(&self, addr: std::net::SocketAddr, timeout: Duration) -> Result<TcpStream> {
        self.enter(|| TcpStream::connect_timeout(&addr, timeout))?
            .map_err(|e| Error::io(format!("connecting to {addr} in {}", self.name), e))
    }

    /// Sends one ICMP echo request to `addr` from inside the namespace; whether the answer
    /// came within a second.
    pub fn ping(&self, addr: Ipv4Addr) -> Result<bool> {
        check_test_address(addr)?;
        Ok(sh(&[
            "ip",
            "netns",
            "exec",
            &self.name,
            "ping",
            "-n",
            "-q",
            "-c",
            "1",
            "-W",
            "1",
            &addr.to_string(),
        ]))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.name]);
    }
}

/// Moves the calling thread into the namespace called `name` (see
/// [`Netns::move_current_thread`]).
pub fn move_thread_into(name: &str) -> Result<()> {
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).map_err(|e| Error::io(format!("opening {path}"), e))?;
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| Error::io(format!("entering namespace {name}"), e.into()))
}

/// A veth pair between two namespaces, each end with an address and up; deleted on drop.
///
/// Checksum offload and segmentation are turned off on both ends: a veth hands the kernel's
/// partial checksums and 64 KiB segments to the other side unchanged, which a packet socket
/// there (the data plane's `net_af_packet`, tcpdump) would see as broken or oversized frames.
#[derive(Debug)]
pub struct Veth {
    ns_a: String,
    if_a: String,
}

impl Veth {
    /// Creates interface `if_a` in `ns_a` with `addr_a` (`A.B.C.D/LEN`) paired with `if_b` in
    /// `ns_b` with `addr_b`. The pair is made directly inside the namespaces, so interface
    /// names need only be unique within each namespace.
    pub fn new(
        ns_a: &Netns,
        if_a: &str,
        addr_a: &str,
        ns_b: &Netns,
        if_b: &str,
        addr_b: &str,
    ) -> Result<Veth> {
        parse_test_cidr(addr_a)?;
        parse_test_cidr(addr_b)?;
        run(&[
            "ip", "link", "add", "name", if_a, "netns", &ns_a.name, "type", "veth", "peer", "name",
            if_b, "netns", &ns_b.name,
        ])?;
        let veth = Veth {
            ns_a: ns_a.name.clone(),
            if_a: if_a.to_owned(),
        };
        for (ns, ifname, addr) in [(ns_a, if_a, addr_a), (ns_b, if_b, addr_b)] {
            ns.ip(&["addr", "add", addr, "dev", ifname])?;
            ns.run(&["ethtool", "-K", ifname, "tx", "off"])?;
            // Best effort: with `tx off` the kernel already stops offering TSO; GSO and GRO
            // are not switchable on every kernel.
            for feature in ["tso", "gso", "gro"] {
                let _ = ns.run(&["ethtool", "-K", ifname, feature, "off"]);
            }
            ns.ip(&["link", "set", ifname, "up"])?;
        }
        Ok(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes both; if the namespace went first, both are gone already.
        sh(&["ip", "-n", &self.ns_a, "link", "del", &self.if_a]);
    }
}

/// A child process that is stopped by its PID if the test ends before it does.
#[derive(Debug)]
pub struct KillOnDrop(pub Option<Child>);

impl KillOnDrop {
    /// Takes charge of `child`.
    pub fn new(child: Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }

    /// The process's PID, while it is in charge of one.
    pub fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// Its exit status if it has exited (without waiting).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.0.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGTERM to the PID and waits up to `grace` for the process to exit, then sends
    /// SIGKILL. Returns how it exited (`None` if it had to be killed or was gone already).
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.0.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `ready` every 20 ms until it returns `Some` or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_benchmarking_range_is_accepted() {
        assert!(check_test_address(Ipv4Addr::new(198, 18, 0, 1)).is_ok());
        assert!(check_test_address(Ipv4Addr::new(198, 19, 255, 254)).is_ok());
        for bad in [
            [198, 17, 0, 1],
            [198, 20, 0, 1],
            [10, 0, 0, 1],
            [192, 168, 1, 1],
        ] {
            assert!(check_test_address(Ipv4Addr::from(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_test_cidr("198.18.30.1/24").unwrap(),
            (Ipv4Addr::new(198, 18, 30, 1), 24)
        );
        assert!(parse_test_cidr("198.18.30.1").is_err());
        assert!(parse_test_cidr("198.18.30.1/33").is_err());
        assert!(parse_test_cidr("172.16.0.1/24").is_err());
    }

    #[test]
    fn wait_until_is_bounded() {
        let start = Instant::now();
        assert_eq!(wait_until(Duration::from_millis(50), || None::<()>), None);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(wait_until(Duration::from_secs(5), || Some(7)), Some(7));
    }
}
