//! What `/proc` says about this machine and the benchmark's processes: the CPU line printed
//! with every figure, CPU time per process or thread, memory (RSS, or PSS over a group that
//! shares pages), and a process tree.

/// CPU model, flags that matter here, cores, kernel.
pub fn machine() -> String {
    format!(
        "CPU: {}; kernel {}",
        crate::machine::cpu(),
        crate::machine::kernel()
    )
}

/// utime + stime of `/proc/{what}` (a PID: the process, all its threads; `PID/task/TID`:
/// one thread), in clock ticks.
pub(super) fn cpu_ticks(what: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{what}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15.
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

fn status_kib(pid: u32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Memory of a group of processes: RSS for one, PSS summed for several (they share pages).
pub(super) fn mem_kib(pids: &[u32]) -> u64 {
    match pids {
        [one] => status_kib(*one, "status", "VmRSS:"),
        many => many
            .iter()
            .map(|p| status_kib(*p, "smaps_rollup", "Pss:"))
            .sum(),
    }
}

/// `pid` and every process below it.
pub(super) fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    let entries: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| {
                    let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                    let rest = stat.rsplit_once(')')?.1.to_owned();
                    let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
                    Some((p, ppid))
                })
                .collect()
        })
        .unwrap_or_default();
    while i < all.len() {
        let parent = all[i];
        all.extend(
            entries
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    all
}
