//! The report's text: a `bench/RESULTS.md` section with the run's facts, the table of rates
//! and ratios, the latencies, the flood's cost and links to the plots.

use std::fmt::Write as _;

use crate::inputs::{FixedRun, Inputs, Mode, RelayRun, Search};

/// Ethernet's cost of a UDP/IPv4 packet beyond its payload: UDP 8, IPv4 20, Ethernet
/// header 14 and FCS 4, preamble and start delimiter 8, inter-frame gap 12.
const WIRE_OVERHEAD: u64 = 8 + 20 + 14 + 4 + 8 + 12;

/// Packets per second at line rate for a UDP payload of `payload` bytes at `gbps`.
pub(crate) fn line_rate_pps(payload: u64, gbps: f64) -> f64 {
    gbps * 1e9 / ((payload + WIRE_OVERHEAD) * 8) as f64
}

/// Concurrent G.711 calls a rate carries: a call is two streams of 50 packets/s.
pub(crate) fn g711_calls(pps: f64) -> f64 {
    pps / 100.0
}

fn mpps(pps: f64) -> String {
    format!("{:.3}", pps / 1e6)
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

fn line_fractions(pps: f64, mode: Mode) -> String {
    [10.0, 25.0, 100.0]
        .iter()
        .map(|g| {
            format!(
                "{:.1}%",
                100.0 * pps / line_rate_pps(mode.udp_payload(), *g)
            )
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

/// The section, with the plots linked under `plots` (a path relative to where the text
/// goes).
pub(crate) fn section(inputs: &Inputs, plots: &str) -> String {
    let m = |k: &str| inputs.meta.get(k).map_or("?", String::as_str);
    let mut s = String::new();
    let quick = m("quick") == "yes";
    let _ = writeln!(
        s,
        "## Throughput runs over memif: relay-gen against relay-dataplane ({}{})\n",
        m("date"),
        if quick {
            "; --quick: debug-size run, figures not meaningful"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "Command: `{}` (took {} s).  ",
        m("command"),
        m("seconds")
    );
    let _ = writeln!(
        s,
        "Commit {}; DPDK {}; {}; binaries: {} build.  ",
        m("commit"),
        m("dpdk"),
        m("rustc"),
        m("profile")
    );
    let _ = writeln!(
        s,
        "CPU: {} ({} CPUs); flags: {}.  ",
        m("cpu"),
        m("cpus"),
        m("flags")
    );
    let _ = writeln!(
        s,
        "Topology: relay-gen on cpu {} and relay-dataplane on cpu {} (one worker), joined by two \
         `net_memif` links (rings of 2^{} slots); G.711 20 ms packets; each rate is an RFC 2544 \
         search over paced trials of {} s (NDR: no loss; PDR: at most 0.5%).\n",
        m("gen_cpu"),
        m("relay_cpu"),
        m("memif_rsize"),
        m("trial_seconds")
    );

    let srtp_1k = inputs
        .relay
        .iter()
        .find(|r| r.mode == Mode::Srtp && !r.flooded)
        .map(|r| r.search.ndr_pps);
    let (engine, ipsec) = inputs.engine_rekey("AES_CM_128_HMAC_SHA1_80");
    let ceiling = inputs.looped.as_ref().map(|l| l.ndr_pps);
    let _ = writeln!(
        s,
        "| measurement | streams | NDR Mpps | PDR Mpps | ratio | G.711 calls per core | share of 10 / 25 / 100 GbE | notes |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    if let Some(l) = &inputs.looped {
        let _ = writeln!(
            s,
            "| I/O ceiling: `dpdk-testpmd` forwarding the same SRTP over the same memif links | {} | {} | {} | 1.00x | - | {} | {} |",
            l.streams,
            mpps(l.ndr_pps),
            mpps(l.pdr_pps),
            line_fractions(l.ndr_pps, Mode::Srtp),
            limited(l),
        );
    }
    for r in inputs.relay.iter().filter(|r| !r.flooded) {
        let mut ratios = vec![format!(
            "{} of the ceiling",
            ratio(r.search.ndr_pps, ceiling)
        )];
        if r.mode == Mode::Srtp {
            ratios.push(format!(
                "{} of the engine",
                ratio(r.search.ndr_pps, engine.map(|e| e.packets_per_s))
            ));
            if let Some(first) = srtp_1k.filter(|_| r.streams > 1000) {
                ratios.push(format!(
                    "{} of the first row",
                    ratio(r.search.ndr_pps, Some(first))
                ));
            }
        }
        let _ = writeln!(
            s,
            "| relay, {} | {} | {} | {} | {} | {:.0} | {} | {} |",
            r.mode.label(),
            r.streams,
            mpps(r.search.ndr_pps),
            mpps(r.search.pdr_pps),
            ratios.join(", "),
            g711_calls(r.search.ndr_pps),
            line_fractions(r.search.ndr_pps, r.mode),
            limited(&r.search),
        );
    }
    if let Some(e) = engine {
        let _ = writeln!(
            s,
            "| SRTP engine alone, burst re-key of 32 (`srtp-bench`, no I/O) | - | {} | - | {} of ipsec_mb | {:.0} | - | on the relay's cpu |",
            mpps(e.packets_per_s),
            e.ratio.map_or("-".into(), |r| format!("{r:.2}x")),
            g711_calls(e.packets_per_s)
        );
    }
    if let Some(b) = ipsec {
        let _ = writeln!(
            s,
            "| `dpdk-test-crypto-perf`, ipsec_mb, two operations per re-key | - | {} | - | 1.00x | - | - | encrypt-then-auth and auth-then-decrypt rates combined |",
            mpps(b.packets_per_s)
        );
    }
    if let Some(e) = &inputs.rtpengine {
        let relay_same = inputs
            .relay
            .iter()
            .find(|r| r.mode == Mode::Srtp && !r.flooded && r.search.streams == e.streams)
            .map(|r| r.search.ndr_pps);
        let _ = writeln!(
            s,
            "| rtpengine {} (userspace, one thread on the relay's cpu, loopback UDP), SRTP re-key | {} | {} | {} | relay / rtpengine: {} | {:.0} | {} | {} |",
            inputs.meta.get("rtpengine").map_or("", String::as_str),
            e.streams,
            mpps(e.ndr_pps),
            mpps(e.pdr_pps),
            relay_same.map_or("-".into(), |r| ratio(r, Some(e.ndr_pps))),
            g711_calls(e.ndr_pps),
            line_fractions(e.ndr_pps, Mode::Srtp),
            limited(e),
        );
    } else if let Some(rtpengine) = inputs.meta.get("rtpengine") {
        let _ = writeln!(s, "\nrtpengine: {rtpengine}");
    }

    let _ = writeln!(
        s,
        "\nLatency at the NDR (generator to generator through the relay, microseconds):\n"
    );
    let _ = writeln!(s, "| run | streams | p50 | p90 | p99 | p99.9 | max |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let mut rows: Vec<(String, usize, [u64; 5])> = Vec::new();
    if let Some(l) = &inputs.looped {
        rows.push(("testpmd loop".into(), l.streams, l.latency_at_ndr_ns));
    }
    for r in &inputs.relay {
        rows.push((run_name(r), r.search.streams, r.search.latency_at_ndr_ns));
    }
    if let Some(e) = &inputs.rtpengine {
        rows.push(("rtpengine SRTP".into(), e.streams, e.latency_at_ndr_ns));
    }
    for (name, streams, l) in rows {
        let _ = writeln!(
            s,
            "| {name} | {streams} | {} | {} | {} | {} | {} |",
            us(l[0]),
            us(l[1]),
            us(l[2]),
            us(l[3]),
            us(l[4])
        );
    }

    for f in inputs.relay.iter().filter(|r| r.flooded) {
        s.push_str(&flood(inputs, f));
    }

    let _ = writeln!(
        s,
        "\n![NDR against streams]({plots}/throughput.svg)\n![latency at the NDR]({plots}/latency.svg)\n![the searches' trials]({plots}/ndr-trace.svg)\n"
    );
    s
}

fn limited(search: &Search) -> &'static str {
    match (
        search.ndr_bounded_by_generator(),
        search.pdr_bounded_by_generator(),
    ) {
        (true, true) => {
            "NDR and PDR generator-bound: at the next rate up the generator, not the far end, fell behind"
        }
        (true, false) => {
            "NDR generator-bound: at the next rate up the generator, not the far end, fell behind"
        }
        (false, true) => {
            "PDR generator-bound: at the next rate up the generator, not the far end, fell behind"
        }
        (false, false) => "",
    }
}

/// What an attack packet costs the worker, from its busy time at one stream rate without
/// and with the flood.
fn attack_cost([clean, flooded]: &[FixedRun; 2]) -> String {
    let mut s = String::new();
    if clean.offered == 0 || flooded.attacks == 0 || clean.rx == 0 {
        return s;
    }
    // The flooded run's stream packets at the clean run's cost each; the rest of its busy
    // time went on the attack packets.
    let per_stream = clean.busy_ns as f64 / clean.offered as f64;
    let attack_ns =
        (flooded.busy_ns as f64 - per_stream * flooded.offered as f64) / flooded.attacks as f64;
    let _ = writeln!(
        s,
        "At one fixed rate, {} Mpps of stream packets, the worker was busy {:.0} ms without the \
         flood and {:.0} ms with {} attack packets besides: about {:.0} ns of worker time per \
         attack packet, against {:.0} ns per relayed packet at that rate (its own busy-time \
         counter; at a light load a packet also carries its poll's cost). The established \
         streams delivered {} of {} packets with the flood, {} of {} without.",
        mpps(clean.offered_pps),
        clean.busy_ns as f64 / 1e6,
        flooded.busy_ns as f64 / 1e6,
        flooded.attacks,
        attack_ns.max(0.0),
        per_stream,
        flooded.delivered,
        flooded.offered,
        clean.delivered,
        clean.offered,
    );
    s
}

/// A run's short name for tables and legends.
pub(crate) fn run_name(r: &RelayRun) -> String {
    format!(
        "relay {}{}",
        match r.mode {
            Mode::Srtp => "SRTP",
            Mode::Rtp => "RTP",
        },
        if r.flooded { " flooded" } else { "" }
    )
}

/// The flood's paragraph: the established streams' NDR with attack packets mixed in, what
/// one attack packet cost, and what the relay counted.
fn flood(inputs: &Inputs, f: &RelayRun) -> String {
    let mut s = String::new();
    let clean = inputs
        .relay
        .iter()
        .find(|r| !r.flooded && r.mode == f.mode && r.streams == f.streams);
    let n = f.search.flood.max(1);
    let _ = writeln!(
        s,
        "\nUnder attack ({}, {} streams): {} attack packet(s) per stream packet, in turn to a port \
         without a flow and with a forged tag just before the real packet. The established \
         streams' NDR: {} Mpps (with {} Mpps of attack packets besides){}.",
        f.mode.label(),
        f.streams,
        n,
        mpps(f.search.ndr_pps),
        mpps(f.search.ndr_pps * f64::from(n)),
        clean.map_or(String::new(), |c| format!(
            ", {} of the {} Mpps without the flood",
            ratio(f.search.ndr_pps, Some(c.search.ndr_pps)),
            mpps(c.search.ndr_pps)
        ))
    );
    let resolvable = |c: &&RelayRun| {
        c.search.ndr_pps > 0.0
            && f.search.ndr_pps > 0.0
            && f.search.ndr_pps < c.search.ndr_pps
            && !c.search.ndr_bounded_by_generator()
            && !f.search.ndr_bounded_by_generator()
    };
    // The worker's own busy time at a fixed rate says it better than the NDRs (the flooded
    // NDR can be set by the generator, or by bursts the rings could not hold).
    if let Some(fixed) = &inputs.fixed {
        s.push_str(&attack_cost(fixed));
    } else if clean.is_some() && !clean.is_some_and(|c| resolvable(&c)) {
        let _ = writeln!(
            s,
            "What an attack packet costs is not resolved by this run: the flood did not lower \
             the NDR measurably, or the generator and not the relay set one of the two NDRs."
        );
    }
    if let Some(c) = clean.filter(resolvable).filter(|_| inputs.fixed.is_none()) {
        // Per stream packet at the NDR the core is full: 1/clean per packet alone,
        // 1/flooded per packet and its n attack packets.
        let good_ns = 1e9 / c.search.ndr_pps;
        let attack_ns = (1e9 / f.search.ndr_pps - good_ns) / f64::from(n);
        // The generator at its own limit just above the flooded NDR (the far end losing
        // there too): the flooded NDR may be partly the generator's, the cost an upper bound.
        let bound = if f.search.ndr_next_up_generator_limited() {
            " at most (the generator was at its own limit just above the flooded NDR too)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "A relayed packet costs {good_ns:.0} ns of the worker at the NDR; an attack packet \
             about {attack_ns:.0} ns{bound} (the two kinds averaged)."
        );
    }
    let attacks: u64 = f.search.trials.iter().map(|t| t.attacks).sum();
    if let Some(drops) = f
        .stats
        .as_ref()
        .and_then(|st| st.pointer("/worker/drops"))
        .and_then(|d| d.as_object())
    {
        let list: Vec<String> = drops
            .iter()
            .map(|(k, v)| format!("{k} {}", v.as_u64().unwrap_or(0)))
            .collect();
        let _ = writeln!(
            s,
            "The relay's drop counters over the warm-up and the search: {} ({} attack packets offered in the search's trials).",
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            },
            attacks
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attack_packet_costs_the_busy_time_it_adds() {
        let run = |busy_ms: u64, attacks: u64| FixedRun {
            offered: 2_000_000,
            delivered: 2_000_000,
            offered_pps: 400_000.0,
            attacks,
            rx: 2_000_000 + attacks,
            busy_ns: busy_ms * 1_000_000,
        };
        let text = attack_cost(&[run(2000, 0), run(2400, 2_000_000)]);
        assert!(
            text.contains("about 200 ns of worker time per attack packet"),
            "{text}"
        );
        assert!(
            text.contains("against 1000 ns per relayed packet"),
            "{text}"
        );
        assert!(text.contains("0.400 Mpps of stream packets"), "{text}");
        // Nothing to say without a flood.
        assert_eq!(attack_cost(&[run(2000, 0), run(2000, 0)]), "");
    }

    #[test]
    fn line_rates_of_g711() {
        // 182-byte SRTP payload: 248 bytes on the wire, 5.04 Mpps at 10 GbE.
        let pps = line_rate_pps(Mode::Srtp.udp_payload(), 10.0);
        assert!((pps - 5.04e6).abs() < 0.01e6, "{pps}");
        assert_eq!(g711_calls(3.0e6), 30_000.0);
    }
}
