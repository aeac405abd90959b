//! The counters the data plane reports over the control socket and in `--stats-json`
//! (`docs/control-socket.md`): per leg, per call, per worker, and the core map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Drops by reason name (`unknown_flow`, `auth_failed`, ...); reasons never seen are left out.
pub type Drops = BTreeMap<String, u64>;

/// One leg's counters: what it sent and was accepted, and what the relay sent to it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LegCounters {
    /// Packets from the leg that were accepted.
    pub rx_packets: u64,
    /// Their bytes (UDP payload).
    pub rx_bytes: u64,
    /// Of them, RTCP.
    pub rx_rtcp: u64,
    /// Packets the relay sent to the leg.
    pub tx_packets: u64,
    /// Their bytes (UDP payload).
    pub tx_bytes: u64,
    /// RTP packets expected (RFC 3550 A.3).
    pub rtp_expected: u64,
    /// RTP packets lost (RFC 3550 A.3; negative loss, from duplicates, reads as 0).
    pub rtp_lost: u64,
    /// Interarrival jitter in milliseconds (RFC 3550 A.8) at the leg's clock rate.
    pub jitter_ms: f64,
    /// The data plane's monotonic time of the leg's last accepted packet (0: none yet), for
    /// media timeouts.
    pub last_rx_ns: u64,
    /// The leg's packets dropped, by reason.
    #[serde(default)]
    pub drops: Drops,
    /// Where the SRTP streams this leg sends stand (added within version 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub srtp_receive: Vec<crate::schema::StreamPosition>,
    /// Where the SRTP streams the relay sends to this leg stand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub srtp_send: Vec<crate::schema::StreamPosition>,
}

/// One media pair's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaCounters {
    /// Leg a.
    pub a: LegCounters,
    /// Leg b.
    pub b: LegCounters,
}

/// One call's counters (`stats` with an id, and the answer to `remove_call`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCounters {
    /// The call's id.
    pub id: String,
    /// Per media pair, in the call's order.
    pub media: Vec<MediaCounters>,
}

/// A worker's counters, or all workers' summed (`stats` without an id, with `workers`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerCounters {
    /// Frames received.
    pub rx: u64,
    /// Frames forwarded.
    pub forwarded: u64,
    /// Local answers sent (ARP, ICMP, neighbour advertisements).
    pub replies: u64,
    /// Frames received there and passed to the worker owning their call (software dispatch).
    pub handed_over: u64,
    /// Frames relayed towards a next hop whose MAC was being asked for: held until it
    /// answered, then counted in `forwarded`, or given up on and counted in the drop
    /// `neighbour_unresolved` (added within version 1).
    #[serde(default)]
    pub held: u64,
    /// Frames dropped, by reason.
    #[serde(default)]
    pub drops: Drops,
    /// Of the frames forwarded, those re-keyed (SRTP authenticated and decrypted, or
    /// encrypted, by the relay). Added within version 1 (0 from older data planes).
    #[serde(default)]
    pub srtp: u64,
    /// Nanoseconds the worker's loop has run (added within version 1).
    #[serde(default)]
    pub run_ns: u64,
    /// Of them, in loop rounds that found packets: `busy_ns / run_ns` is how busy the core
    /// is (added within version 1).
    #[serde(default)]
    pub busy_ns: u64,
    /// In a sum: each worker's own counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<WorkerCounters>>,
}

impl WorkerCounters {
    /// The sum of `workers`, holding each of them in [`WorkerCounters::workers`].
    pub fn sum(workers: Vec<WorkerCounters>) -> WorkerCounters {
        let mut total = WorkerCounters::default();
        for w in &workers {
            total.rx += w.rx;
            total.forwarded += w.forwarded;
            total.replies += w.replies;
            total.handed_over += w.handed_over;
            total.held += w.held;
            total.srtp += w.srtp;
            total.run_ns += w.run_ns;
            total.busy_ns += w.busy_ns;
            for (reason, n) in &w.drops {
                *total.drops.entry(reason.clone()).or_default() += n;
            }
        }
        total.workers = Some(workers);
        total
    }
}

/// How packets reach one worker on one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Steering {
    /// The only worker.
    Single,
    /// The NIC steers by RSS on the UDP destination port.
    Rss,
    /// The workers that receive hand packets to their owners (software dispatch).
    Dispatch,
}

/// One port as one worker uses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorePort {
    /// The port's name (`--port`).
    pub name: String,
    /// The worker's transmit queue on the port.
    pub queue: u16,
    /// The receive queues the worker polls there (none if packets are handed to it).
    pub rx_queues: Vec<u16>,
    /// How packets reach the worker.
    pub steering: Steering,
    /// The port's addresses (added within version 1: absent from older data planes).
    #[serde(default)]
    pub addresses: Vec<std::net::IpAddr>,
    /// The redirection-table size frames to the port are steered by (the NIC's with RSS,
    /// 128 with software dispatch, 0 with one worker); with `addresses`, what a port
    /// allocator needs to place calls as the data plane does (`relay_proto::rss::Placement`).
    #[serde(default)]
    pub reta_size: u16,
}

/// One worker: its lcore and ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreWorker {
    /// The EAL lcore it runs on.
    pub lcore: u32,
    /// Every port, in `--port` order.
    pub ports: Vec<CorePort>,
}

/// The answer to `core_map`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreMap {
    /// The lcore serving the control socket.
    pub main_lcore: u32,
    /// The workers, in order (worker `i` owns the calls placed on `i`).
    pub workers: Vec<CoreWorker>,
}

/// What `run --stats-json FILE` writes when the data plane stops.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalCounters {
    /// All workers' counters summed.
    pub worker: WorkerCounters,
    /// Each worker's.
    pub workers: Vec<WorkerCounters>,
    /// Every call still installed.
    pub calls: Vec<CallCounters>,
}
