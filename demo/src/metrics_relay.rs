//! `--metrics ADDR`: relay-control's Prometheus endpoint listens on the loopback of the SBC's
//! namespace, which the host cannot reach; this relays TCP connections from `ADDR` on the
//! host into it, so a browser, `curl` or a Prometheus server on the host can scrape it while
//! the demo runs.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};

/// Relays connections to `listen` (on the host) to `target` inside namespace `netns` until
/// `stop` is set. Returns once listening.
pub fn start(
    listen: SocketAddr,
    netns: &str,
    target: SocketAddr,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .with_context(|| format!("listening on {listen} for --metrics"))?;
    listener.set_nonblocking(true)?;
    let netns = netns.to_owned();
    std::thread::Builder::new()
        .name("metrics-relay".into())
        .spawn(move || {
            // The listener stays on the host; what this thread connects from now on is in
            // the SBC's namespace.
            if let Err(e) = relay_testsupport::netns::move_thread_into(&netns) {
                eprintln!("relay-demo: --metrics: {e}");
                return;
            }
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        match TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
                            Ok(upstream) => splice(client, upstream),
                            Err(e) => eprintln!("relay-demo: --metrics: {target}: {e}"),
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })?;
    Ok(())
}

/// Copies both ways between `a` and `b` on two threads (a scrape is one request and one
/// answer; each side closes when its copy ends).
fn splice(a: TcpStream, b: TcpStream) {
    let (Ok(mut a2), Ok(mut b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let (mut a, mut b) = (a, b);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut a, &mut b);
        let _ = b.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut b2, &mut a2);
        let _ = a2.shutdown(std::net::Shutdown::Write);
    });
}
