//! Which cores do what: the main core (control work) and the worker cores (one poll loop
//! each), checked against the machine before DPDK starts.

use std::fmt::Write as _;

/// A validated core assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorePlan {
    /// The main lcore's CPU: control socket, statistics, start-up.
    pub main: u32,
    /// One worker per CPU, in ascending order (the order DPDK walks its lcores); without a
    /// map, worker `i` polls receive queue `i` of every port.
    pub workers: Vec<u32>,
    /// An explicit map of receive queues to worker cores (`--map`).
    pub rx: Option<RxMap>,
}

/// Which core polls each receive queue of each port (`--map PORT:QUEUE@CORE,...`).
///
/// Every port has receive queues `0..n`, each polled by exactly one core. Every worker has
/// a transmit queue on every port whatever the map says (a call's outbound leg may leave on
/// any port). A worker that receives a packet of a call another worker owns hands it over
/// (software dispatch), so any map keeps each stream on its one owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxMap {
    /// `by_port[p][q]`: the core polling receive queue `q` of the `p`-th `--port`.
    pub by_port: Vec<Vec<u32>>,
}

impl RxMap {
    /// Parses `--map` against the `--port` device names, in order. A port is named as in
    /// `--port` (a PCI address's own colons are fine: queue and core are split off the end)
    /// or by its position in the `--port` list.
    pub fn parse(s: &str, ports: &[String]) -> Result<RxMap, String> {
        let mut by_port: Vec<Vec<Option<u32>>> = vec![Vec::new(); ports.len()];
        for entry in s.split(',').map(str::trim) {
            let bad =
                || format!("--map entry {entry:?} is not PORT:QUEUE@CORE (e.g. net_ring0:1@3)");
            let (port_queue, core) = entry.rsplit_once('@').ok_or_else(bad)?;
            let (port, queue) = port_queue.rsplit_once(':').ok_or_else(bad)?;
            let queue: u16 = queue.parse().map_err(|_| bad())?;
            let core: u32 = core.parse().map_err(|_| bad())?;
            let p = ports
                .iter()
                .position(|name| name == port)
                .or_else(|| port.parse::<usize>().ok().filter(|&i| i < ports.len()))
                .ok_or_else(|| {
                    format!(
                        "--map entry {entry:?}: no --port named {port:?} (ports: {})",
                        ports.join(", ")
                    )
                })?;
            let queues = &mut by_port[p];
            if queues.len() <= usize::from(queue) {
                queues.resize(usize::from(queue) + 1, None);
            }
            if let Some(other) = queues[usize::from(queue)].replace(core) {
                return Err(format!(
                    "--map: receive queue {queue} of {} is given to core {other} and core {core}; one core polls each queue",
                    ports[p]
                ));
            }
        }
        let by_port = by_port
            .into_iter()
            .zip(ports)
            .map(|(queues, name)| {
                if queues.is_empty() {
                    return Err(format!(
                        "--map names no receive queue of {name}: give it at least {name}:0@CORE"
                    ));
                }
                queues
                    .iter()
                    .enumerate()
                    .map(|(q, c)| {
                        c.ok_or_else(|| {
                            format!(
                                "--map: receive queue {q} of {name} has no core (its queues {} need one each, or nothing arrives on them)",
                                if queues.len() == 2 { "0 and 1".to_owned() } else { format!("0-{}", queues.len() - 1) }
                            )
                        })
                    })
                    .collect::<Result<Vec<u32>, String>>()
            })
            .collect::<Result<_, String>>()?;
        Ok(RxMap { by_port })
    }

    /// The cores the map names, ascending.
    pub fn cores(&self) -> Vec<u32> {
        let mut cores: Vec<u32> = self.by_port.iter().flatten().copied().collect();
        cores.sort_unstable();
        cores.dedup();
        cores
    }

    /// The receive queues of the `port`-th port that `core` polls.
    pub fn queues_of(&self, port: usize, core: u32) -> Vec<u16> {
        self.by_port[port]
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c == core)
            .map(|(q, _)| q as u16)
            .collect()
    }
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
    let mut plan = plan_cores(main, workers, online)?;
    plan.workers.sort_unstable();
    Ok(plan)
}

/// Checks `--main-core` and the cores of `--map` against the online CPUs.
pub fn plan_map(main: u32, map: RxMap, online: &[u32]) -> Result<CorePlan, String> {
    let mut plan = plan_cores(main, &map.cores(), online)?;
    plan.rx = Some(map);
    Ok(plan)
}

fn plan_cores(main: u32, workers: &[u32], online: &[u32]) -> Result<CorePlan, String> {
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
        rx: None,
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
            let mut polls = Vec::new();
            for (p, (name, pn)) in ports.iter().enumerate() {
                let rx = match &self.rx {
                    Some(map) => map.queues_of(p, w),
                    None => vec![i as u16],
                };
                if rx.is_empty() {
                    continue;
                }
                let list: Vec<String> = rx.iter().map(u16::to_string).collect();
                polls.push(format!(
                    "{name} rx queue{} {}",
                    if rx.len() > 1 { "s" } else { "" },
                    list.join(",")
                ));
                if let (Some(a), Some(b)) = (wn, *pn) {
                    if a != b {
                        warnings.push(format!("worker {i} on cpu {w} (NUMA {a}) polls {name} on NUMA {b}: cross-node memory traffic"));
                    }
                }
            }
            if polls.is_empty() {
                polls.push("no receive queue (packets are handed to it)".into());
            }
            let _ = writeln!(
                out,
                "worker {i:<3} cpu {w:<3} (NUMA {}): {}; tx queue {i} of every port",
                node(wn),
                polls.join(", ")
            );
        }
        let identity = self.rx.as_ref().is_none_or(|map| {
            map.by_port
                .iter()
                .all(|cores| cores.as_slice() == self.workers.as_slice())
        });
        let _ = writeln!(
            out,
            "steering   {}",
            match (self.workers.len(), identity) {
                (1, _) => "one worker: every call on it",
                (_, true) => "RSS on the UDP destination port where the port has it, else software dispatch; a call is installed on the worker its local ports map to",
                (_, false) => "software dispatch (the map is not one queue per worker in order): the worker that receives a packet hands it to the worker owning its call",
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
        assert_eq!(plan(0, &[3, 1], &online).unwrap().workers, vec![1, 3]);
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn queue_maps() {
        let ports = names(&["0000:03:00.0", "net_ring1"]);
        let map = RxMap::parse("0000:03:00.0:0@2, 0000:03:00.0:1@3,1:0@2", &ports).unwrap();
        assert_eq!(map.by_port, vec![vec![2, 3], vec![2]]);
        assert_eq!(map.cores(), vec![2, 3]);
        assert_eq!(map.queues_of(0, 3), vec![1]);
        assert_eq!(map.queues_of(1, 3), Vec::<u16>::new());
        let plan = plan_map(1, map.clone(), &[0, 1, 2, 3]).unwrap();
        assert_eq!(plan.workers, vec![2, 3]);
        let (text, _) = plan.describe(&[(ports[0].clone(), None), (ports[1].clone(), None)]);
        assert!(text.contains("cpu 3   (NUMA"), "{text}");
        assert!(
            text.contains("0000:03:00.0 rx queue 1; tx queue 1"),
            "{text}"
        );
        assert!(text.contains("software dispatch (the map"), "{text}");
        assert!(plan_map(2, map, &[0, 1, 2, 3])
            .unwrap_err()
            .contains("is the main core"));
        let refused = [
            ("net_ring1:0@2", "names no receive queue of 0000:03:00.0"),
            ("0:0@2,0:0@3,1:0@2", "given to core 2 and core 3"),
            ("0:1@2,1:0@2", "receive queue 0 of 0000:03:00.0 has no core"),
            ("net_ring7:0@2", "no --port named \"net_ring7\""),
            ("0:0", "is not PORT:QUEUE@CORE"),
            ("0:x@1", "is not PORT:QUEUE@CORE"),
        ];
        for (text, why) in refused {
            let e = RxMap::parse(text, &ports).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
