//! `relay-dataplane`: the DPDK data plane binary.
//!
//! At this stage it runs the port loop (generator -> forwarder -> sink over two DPDK ports)
//! and prints what it forwarded. EAL arguments follow `--`; without any, an embedded default
//! runs on two `net_ring` virtual devices with no NIC and no hugepages.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use relay_dataplane::dpdk::{Eal, PktMbufPool, Port, PortConfig};
use relay_dataplane::portloop::{self, PortLoopConfig};

/// EAL arguments used when none are given: two looping ring devices, no hugepages, no PCI.
const DEFAULT_EAL_ARGS: &[&str] = &[
    "--no-huge",
    "-m",
    "256",
    "--no-pci",
    "--no-shconf",
    "-l",
    "0",
    "--log-level=notice",
    "--vdev=net_ring0",
    "--vdev=net_ring1",
];

#[derive(Parser)]
#[command(
    name = "relay-dataplane",
    version,
    about = "DPDK poll-mode SRTP media relay: data plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate frames on port A, forward A -> B rewriting Ethernet addresses, verify on B.
    ///
    /// Each port must loop its transmissions back to itself (net_ringN does).
    Portloop {
        /// Frames to generate.
        #[arg(long, default_value_t = 1_000_000)]
        packets: u64,
        /// UDP payload bytes per frame (172 = RTP header + 20 ms of G.711).
        #[arg(long, default_value_t = 172)]
        payload: usize,
        /// Stop after this many seconds even if frames are missing.
        #[arg(long, default_value_t = 30)]
        time_limit: u64,
        /// Device name of port A.
        #[arg(long, default_value = "net_ring0")]
        port_a: String,
        /// Device name of port B.
        #[arg(long, default_value = "net_ring1")]
        port_b: String,
        /// EAL arguments (after `--`); default: two net_ring vdevs without hugepages.
        #[arg(last = true)]
        eal: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("relay-dataplane: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Portloop {
            packets,
            payload,
            time_limit,
            port_a,
            port_b,
            eal,
        } => {
            let eal_args: Vec<String> = if eal.is_empty() {
                DEFAULT_EAL_ARGS.iter().map(|s| s.to_string()).collect()
            } else {
                eal
            };
            if !(8..=1458).contains(&payload) {
                bail!(
                    "--payload must be between 8 and 1458 bytes (one untagged 1500-byte IPv4 MTU)"
                );
            }
            println!("EAL arguments: {}", eal_args.join(" "));
            let eal = Eal::init(eal_args).context("starting the DPDK EAL")?;
            let pool = PktMbufPool::create(
                &eal,
                "portloop",
                8191,
                256,
                PktMbufPool::default_data_room(),
                -1,
            )
            .context("creating the mbuf pool (try a larger -m)")?;
            let config = PortConfig::default();
            let a_id = Port::id_by_name(&eal, &port_a)
                .with_context(|| format!("port A ({port_a}): pass it with --vdev"))?;
            let b_id = Port::id_by_name(&eal, &port_b)
                .with_context(|| format!("port B ({port_b}): pass it with --vdev"))?;
            if a_id == b_id {
                bail!("port A and port B are the same device ({port_a})");
            }
            let a = Port::open(&eal, a_id, &config, pool)
                .with_context(|| format!("opening {port_a}"))?;
            let b = Port::open(&eal, b_id, &config, pool)
                .with_context(|| format!("opening {port_b}"))?;
            println!("port A: {} (id {}, mac {})", a.name(), a.id(), a.mac());
            println!("port B: {} (id {}, mac {})", b.name(), b.id(), b.mac());

            let loop_config = PortLoopConfig {
                packets,
                payload_len: payload,
                time_limit: Duration::from_secs(time_limit),
            };
            let r = portloop::run(&eal, pool, &a, &b, &loop_config)?;
            println!("generated   {:>12} frames on {}", r.generated, a.name());
            println!(
                "forwarded   {:>12} frames ({} bytes) {} -> {}, {:.2} Mpps",
                r.forwarded,
                r.forwarded_bytes,
                a.name(),
                b.name(),
                r.forwarded_pps() / 1e6
            );
            println!("received    {:>12} frames on {}", r.received, b.name());
            println!(
                "verified    {:>12} frames byte-identical to what was generated",
                r.verified
            );
            println!(
                "problems    corrupt {} out-of-order {} dropped (tx full) {}",
                r.corrupt, r.out_of_order, r.dropped_tx_full
            );
            println!(
                "port stats  {}: rx {} tx {}; {}: rx {} tx {}",
                a.name(),
                r.port_a.rx_packets,
                r.port_a.tx_packets,
                b.name(),
                r.port_b.rx_packets,
                r.port_b.tx_packets
            );
            let ok = r.verified == packets && r.corrupt == 0 && r.out_of_order == 0;
            println!("result      {}", if ok { "OK" } else { "INCOMPLETE" });
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
