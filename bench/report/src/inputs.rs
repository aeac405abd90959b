//! What the runs of `scripts/bench.sh` left in its output folder, read back: the searches
//! `relay-gen ndr --json` wrote, the engine's rows from `srtp-bench --json`, the relay's
//! final counters, and the run's facts (`meta.txt`: `key=value` lines).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// One trial of a search (`relay-gen ndr --json`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Trial {
    pub(crate) rate_pps: f64,
    pub(crate) loss_ratio: f64,
    pub(crate) generator_limited: bool,
    pub(crate) attacks: u64,
    /// Packets made, and delivered verified (0 in files that predate them).
    #[serde(default)]
    pub(crate) intended: u64,
    #[serde(default)]
    pub(crate) delivered: u64,
}

impl Trial {
    /// The trial failed for the generator alone: it fell behind its schedule, and the far
    /// end delivered every packet it was given.
    fn failed_for_the_generator(&self) -> bool {
        self.generator_limited && self.delivered >= self.intended
    }
}

/// One NDR/PDR search.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Search {
    pub(crate) streams: usize,
    pub(crate) flood: u8,
    pub(crate) ndr_pps: f64,
    pub(crate) pdr_pps: f64,
    pub(crate) trials: Vec<Trial>,
    pub(crate) latency_at_ndr_ns: [u64; 5],
}

impl Search {
    /// Whether the generator, not the far end, bounded the NDR: the first rate the search
    /// tried above it failed only because the generator fell behind its schedule (the far
    /// end was never offered it, so its own limit may lie higher).
    pub(crate) fn ndr_bounded_by_generator(&self) -> bool {
        self.first_above_limited(self.ndr_pps)
    }

    /// Whether the generator, not the far end, bounded the PDR.
    pub(crate) fn pdr_bounded_by_generator(&self) -> bool {
        self.first_above_limited(self.pdr_pps)
    }

    /// Whether the generator fell behind in the first trial above the NDR (whether or not
    /// the far end lost packets there too).
    pub(crate) fn ndr_next_up_generator_limited(&self) -> bool {
        self.first_above(self.ndr_pps)
            .is_some_and(|t| t.generator_limited)
    }

    /// Whether the lowest-rate trial above `found` failed for the generator alone.
    fn first_above_limited(&self, found: f64) -> bool {
        self.first_above(found)
            .is_some_and(Trial::failed_for_the_generator)
    }

    /// The lowest-rate trial above `found`.
    fn first_above(&self, found: f64) -> Option<&Trial> {
        self.trials
            .iter()
            .filter(|t| t.rate_pps > found)
            .min_by(|a, b| a.rate_pps.total_cmp(&b.rate_pps))
    }
}

/// One row of `srtp-bench --json`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct EngineRow {
    pub(crate) suite: String,
    pub(crate) operation: String,
    pub(crate) packets_per_s: f64,
    pub(crate) ratio: Option<f64>,
}

/// What a relay run carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mode {
    /// SRTP in, SRTP out with another key.
    Srtp,
    /// Plain RTP both ways.
    Rtp,
}

impl Mode {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Mode::Srtp => "SRTP re-key (AES_CM_128_HMAC_SHA1_80)",
            Mode::Rtp => "RTP to RTP",
        }
    }

    /// The UDP payload of a G.711 20 ms packet: RTP header, 160 bytes, the 80-bit tag.
    pub(crate) fn udp_payload(self) -> u64 {
        match self {
            Mode::Srtp => 12 + 160 + 10,
            Mode::Rtp => 12 + 160,
        }
    }
}

/// One relay search (`relay-<mode>-<streams>[-flood].json`) and its final counters if
/// kept (`.stats.json`).
#[derive(Clone, Debug)]
pub(crate) struct RelayRun {
    pub(crate) mode: Mode,
    pub(crate) streams: u64,
    pub(crate) flooded: bool,
    pub(crate) search: Search,
    pub(crate) stats: Option<serde_json::Value>,
}

/// Everything the report is made of.
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) engine: Vec<EngineRow>,
    pub(crate) looped: Option<Search>,
    pub(crate) relay: Vec<RelayRun>,
    /// rtpengine re-keying SRTP over loopback UDP (`rtpengine-srtp-<streams>.json`).
    pub(crate) rtpengine: Option<Search>,
    /// The same stream rate without and with the flood (`fixed-flood0`, `fixed-flood1`).
    pub(crate) fixed: Option<[FixedRun; 2]>,
}

/// A run at a fixed rate: the generator's report (`relay-gen run --json`) and the relay's
/// worker counters.
#[derive(Clone, Debug)]
pub(crate) struct FixedRun {
    /// Stream packets offered, and delivered verified.
    pub(crate) offered: u64,
    pub(crate) delivered: u64,
    pub(crate) offered_pps: f64,
    /// Attack packets offered besides.
    pub(crate) attacks: u64,
    /// Frames the worker received, and its time spent on them.
    pub(crate) rx: u64,
    pub(crate) busy_ns: u64,
}

impl FixedRun {
    fn read(dir: &Path, name: &str) -> anyhow::Result<Option<FixedRun>> {
        let report = dir.join(format!("{name}.json"));
        let Some(stats) = worker_totals(dir, name)? else {
            return Ok(None);
        };
        if !report.exists() {
            return Ok(None);
        }
        let report: serde_json::Value = json(&report)?;
        let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
        Ok(Some(FixedRun {
            offered: n(&report, "offered"),
            delivered: n(&report, "delivered"),
            offered_pps: report["offered_pps"].as_f64().unwrap_or(0.0),
            attacks: n(&report, "attacks"),
            rx: n(&stats["worker"], "rx"),
            busy_ns: n(&stats["worker"], "busy_ns"),
        }))
    }
}

fn json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The relay's final counters of run `name` as far as the report uses them: the worker's
/// totals (`{"worker": {...}}`, its per-worker and per-call lists left out). Read from
/// `name.stats.json` while it is there (bench.sh removes those, a megabyte each) and kept
/// in `name.worker.json`, so the folder can be reported again later.
fn worker_totals(dir: &Path, name: &str) -> anyhow::Result<Option<serde_json::Value>> {
    let (full, kept) = (
        dir.join(format!("{name}.stats.json")),
        dir.join(format!("{name}.worker.json")),
    );
    if full.exists() {
        let stats: serde_json::Value = json(&full)?;
        let mut worker = stats["worker"].clone();
        if let Some(w) = worker.as_object_mut() {
            w.remove("workers");
        }
        let totals = serde_json::json!({ "worker": worker });
        std::fs::write(&kept, serde_json::to_string_pretty(&totals)?)
            .with_context(|| format!("writing {}", kept.display()))?;
        return Ok(Some(totals));
    }
    if kept.exists() {
        return Ok(Some(json(&kept)?));
    }
    Ok(None)
}

/// `relay-srtp-1000-flood.json` -> (Srtp, 1000, true).
fn relay_name(name: &str) -> Option<(Mode, u64, bool)> {
    let rest = name.strip_prefix("relay-")?.strip_suffix(".json")?;
    if rest.ends_with(".stats") {
        return None;
    }
    let (rest, flooded) = match rest.strip_suffix("-flood") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (mode, streams) = rest.split_once('-')?;
    let mode = match mode {
        "srtp" => Mode::Srtp,
        "rtp" => Mode::Rtp,
        _ => return None,
    };
    Some((mode, streams.parse().ok()?, flooded))
}

impl Inputs {
    /// Reads the folder; files a run did not write are left out of the report.
    pub(crate) fn read(dir: &Path) -> anyhow::Result<Inputs> {
        let mut inputs = Inputs::default();
        let meta = dir.join("meta.txt");
        if meta.exists() {
            let text = std::fs::read_to_string(&meta)
                .with_context(|| format!("reading {}", meta.display()))?;
            for line in text.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    inputs.meta.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        }
        let engine = dir.join("engine.json");
        if engine.exists() {
            inputs.engine = json(&engine)?;
        }
        let looped = dir.join("loop.json");
        if looped.exists() {
            inputs.looped = Some(json(&looped)?);
        }
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            if name.starts_with("rtpengine-srtp-") && name.ends_with(".json") {
                inputs.rtpengine = Some(json(&dir.join(&name))?);
                continue;
            }
            let Some((mode, streams, flooded)) = relay_name(&name) else {
                continue;
            };
            let stats = worker_totals(dir, &name.replace(".json", ""))?;
            inputs.relay.push(RelayRun {
                mode,
                streams,
                flooded,
                search: json(&dir.join(&name))?,
                stats,
            });
        }
        inputs.relay.sort_by_key(|r| (r.flooded, r.mode, r.streams));
        if let (Some(clean), Some(flooded)) = (
            FixedRun::read(dir, "fixed-flood0")?,
            FixedRun::read(dir, "fixed-flood1")?,
        ) {
            inputs.fixed = Some([clean, flooded]);
        }
        anyhow::ensure!(
            !inputs.relay.is_empty() || inputs.looped.is_some() || !inputs.engine.is_empty(),
            "{} holds no results (relay-*.json, loop.json, engine.json)",
            dir.display()
        );
        Ok(inputs)
    }

    /// The engine's burst re-key rate and ipsec_mb's two-operation rate for a suite.
    pub(crate) fn engine_rekey(&self, suite: &str) -> (Option<&EngineRow>, Option<&EngineRow>) {
        let find = |op: &str| {
            self.engine
                .iter()
                .find(|r| r.suite == suite && r.operation == op)
        };
        (find("rekey burst32"), find("(b) 2 ops = rekey"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(rate_pps: f64, loss_ratio: f64, generator_limited: bool) -> Trial {
        // A generator-limited trial here delivered all it made unless its loss says not.
        let intended = 1000;
        Trial {
            rate_pps,
            loss_ratio,
            generator_limited,
            attacks: 0,
            intended,
            delivered: if generator_limited && loss_ratio < 1.0 {
                900
            } else {
                intended
            },
        }
    }

    fn search(ndr_pps: f64, pdr_pps: f64, trials: Vec<Trial>) -> Search {
        Search {
            streams: 1000,
            flood: 0,
            ndr_pps,
            pdr_pps,
            trials,
            latency_at_ndr_ns: [0; 5],
        }
    }

    #[test]
    fn generator_bounds_only_when_the_next_rate_up_fell_behind() {
        // The far end lost packets at 2 M; the generator fell behind only at 4 M.
        let relay_bound = search(
            1.5e6,
            1.5e6,
            vec![
                trial(4e6, 1.0, true),
                trial(2e6, 0.02, false),
                trial(1.5e6, 0.0, false),
            ],
        );
        assert!(!relay_bound.ndr_bounded_by_generator());
        assert!(!relay_bound.pdr_bounded_by_generator());
        // The relay lost at 2 M (NDR 1.5 M); at 0.5% loss the generator stopped it at 4 M.
        let pdr_only = search(
            1.5e6,
            2e6,
            vec![
                trial(4e6, 1.0, true),
                trial(2e6, 0.002, false),
                trial(1.5e6, 0.0, false),
            ],
        );
        assert!(!pdr_only.ndr_bounded_by_generator());
        assert!(pdr_only.pdr_bounded_by_generator());
        // The first failure above the NDR was the generator's.
        let generator_bound = search(
            1.5e6,
            1.5e6,
            vec![
                trial(4e6, 1.0, true),
                trial(2e6, 1.0, true),
                trial(1.5e6, 0.0, false),
            ],
        );
        assert!(generator_bound.ndr_bounded_by_generator());
        // Both behind: the generator fell behind and the far end lost some of what it got.
        let both = search(
            1.5e6,
            1.5e6,
            vec![trial(2e6, 0.5, true), trial(1.5e6, 0.0, false)],
        );
        assert!(!both.ndr_bounded_by_generator());
        // Nothing failed: the search's ceiling bounded it.
        assert!(!search(4e6, 4e6, vec![trial(4e6, 0.0, false)]).ndr_bounded_by_generator());
    }

    #[test]
    fn relay_file_names_say_what_ran() {
        assert_eq!(
            relay_name("relay-srtp-1000.json"),
            Some((Mode::Srtp, 1000, false))
        );
        assert_eq!(
            relay_name("relay-rtp-1000000-flood.json"),
            Some((Mode::Rtp, 1_000_000, true))
        );
        assert_eq!(relay_name("relay-srtp-1000.stats.json"), None);
        assert_eq!(relay_name("relay-x-1.json"), None);
        assert_eq!(relay_name("loop.json"), None);
    }
}
