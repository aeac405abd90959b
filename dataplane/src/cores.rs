//! Which cores do what: the main core (control work) and the worker cores (one poll loop
//! each), checked against the machine before DPDK starts.

use std::fmt::Write as _;

/// A validated core assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorePlan {
    /// The main lcore's CPU: control socket, statistics, start-up.
    pub main: u32,
    /// One worker per CPU, in order; worker `i` polls queue `i` of every port.
    pub workers: Vec<u32>,
}

/// Parses a CPU list such as `2-5` or `1,3,7-8`.
pub fn parse_list(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>(), b.parse::<u32>()),
            None => (part.parse::<u32>(), part.parse::<u32>()),
        };
        let (Ok(lo), Ok(hi)) = (lo, hi) else {
            return Err(format!("{s:?} is not a CPU list like 2-5 or 1,3"));
        };
        if lo > hi {
            return Err(format!("range {part:?} runs backwards"));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// The CPUs the kernel has online (`/sys/devices/system/cpu/online`).
pub fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_list(s.trim()).ok())
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get() as u32)).collect()
        })
}

/// The NUMA node of a CPU, where the kernel tells.
pub fn cpu_node(cpu: u32) -> Option<u32> {
    let dir = std::fs::read_dir(format!("/sys/devices/system/cpu/cpu{cpu}")).ok()?;
    dir.filter_map(|e| {
        e.ok()?
            .file_name()
            .to_str()?
            .strip_prefix("node")?
            .parse()
            .ok()
    })
    .next()
}

/// The NUMA node of a PCI device (`0000:03:00.0`), where the kernel tells.
pub fn pci_node(addr: &str) -> Option<u32> {
    let n: i64 = std::fs::read_to_string(format!("/sys/bus/pci/devices/{addr}/numa_node"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    u32::try_from(n).ok()
}

/// Checks `--main-core` and `--workers` against the online CPUs.
pub fn plan(main: u32, workers: &[u32], online: &[u32]) -> Result<CorePlan, String> {
    if workers.is_empty() {
        return Err("--workers needs at least one CPU".into());
    }
    for &c in std::iter::once(&main).chain(workers) {
        if !online.contains(&c) {
            return Err(format!(
                "CPU {c} does not exist or is offline (online: {})",
                list(online)
            ));
        }
    }
    if workers.contains(&main) {
        return Err(format!(
            "CPU {main} is the main core; workers need cores of their own"
        ));
    }
    for (i, w) in workers.iter().enumerate() {
        if workers[..i].contains(w) {
            return Err(format!("CPU {w} is listed twice in --workers"));
        }
    }
    Ok(CorePlan {
        main,
        workers: workers.to_vec(),
    })
}

fn list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl CorePlan {
    /// EAL arguments that give DPDK exactly these cores (lcore ids = CPU ids).
    pub fn eal_args(&self) -> Vec<String> {
        let mut cpus = vec![self.main];
        cpus.extend(&self.workers);
        vec![
            "-l".into(),
            list(&cpus),
            "--main-lcore".into(),
            self.main.to_string(),
        ]
    }

    /// A human-readable map: which core polls which queue of which port, with NUMA nodes,
    /// and warnings for workers on another node than a port.
    pub fn describe(&self, ports: &[(String, Option<u32>)]) -> (String, Vec<String>) {
        let node = |n: Option<u32>| n.map_or("?".to_owned(), |n| n.to_string());
        let mut out = String::new();
        let mut warnings = Vec::new();
        let _ = writeln!(
            out,
            "main core  cpu {:<3} (NUMA {}): control socket, statistics",
            self.main,
            node(cpu_node(self.main))
        );
        for (i, &w) in self.workers.iter().enumerate() {
            let wn = cpu_node(w);
            let queues: Vec<String> = ports
                .iter()
                .map(|(name, _)| format!("{name} rx/tx queue {i}"))
                .collect();
            let _ = writeln!(
                out,
                "worker {i:<3} cpu {w:<3} (NUMA {}): {}",
                node(wn),
                queues.join(", ")
            );
            for (name, pn) in ports {
                if let (Some(a), Some(b)) = (wn, *pn) {
                    if a != b {
                        warnings.push(format!("worker {i} on cpu {w} (NUMA {a}) polls {name} on NUMA {b}: cross-node memory traffic"));
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "steering   {}",
            if self.workers.len() > 1 {
                "RSS on the UDP destination port; a call is installed on the worker its local ports map to"
            } else {
                "one worker: every call on it"
            }
        );
        (out, warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_refusals() {
        assert_eq!(parse_list("2-5").unwrap(), vec![2, 3, 4, 5]);
        assert_eq!(parse_list("1,3,7-8").unwrap(), vec![1, 3, 7, 8]);
        assert!(parse_list("5-2").is_err());
        assert!(parse_list("x").is_err());
        let online = [0, 1, 2, 3];
        assert_eq!(
            plan(0, &[1, 2], &online).unwrap().eal_args(),
            vec!["-l", "0,1,2", "--main-lcore", "0"]
        );
        assert!(plan(0, &[4], &online)
            .unwrap_err()
            .contains("does not exist"));
        assert!(plan(1, &[1, 2], &online)
            .unwrap_err()
            .contains("is the main core"));
        assert!(plan(0, &[2, 2], &online)
            .unwrap_err()
            .contains("listed twice"));
        assert!(plan(0, &[], &online).is_err());
    }
}
