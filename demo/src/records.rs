//! The run's call records, read back after relay-control stopped, the way an operator reads
//! them: `relayctl access grant` (an automatic, audited diagnostic grant naming the run) and
//! `relayctl cdr export --format json`, then compared with what the callers saw.

use std::path::Path;

use anyhow::{anyhow, Context as _, Result};
use relay_control::cdr::{CallRecord, EndedBy};

/// What the records say, summed.
#[derive(Debug, Default)]
pub struct RecordSummary {
    /// The grant they were read under.
    pub grant: String,
    /// Records.
    pub records: usize,
    /// Of them, answered calls.
    pub answered: usize,
    /// Ended by the caller (the cloud side), by the callee (the operator side), by the relay.
    pub ended_by: [usize; 3],
    /// Media packets the relay accepted from the cloud leg and from the operator leg.
    pub packets_from: [u64; 2],
    /// SRTP tags that failed, and replays, on any leg.
    pub auth_failures: u64,
    /// The suites on the cloud leg and the operator leg, as recorded (first record).
    pub suites: [Option<String>; 2],
}

fn relayctl(bin: &Path, run_dir: &Path, args: &[&str]) -> Result<String> {
    let out = relay_testsupport::appliance::relayctl(bin, run_dir, "relay-demo", args)?;
    if !out.status.success() {
        return Err(anyhow!(
            "relayctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reads the run's records under a fresh grant.
pub fn read_back(relayctl_bin: &Path, run_dir: &Path, run_id: &str) -> Result<RecordSummary> {
    let granted = relayctl(
        relayctl_bin,
        run_dir,
        &[
            "access",
            "grant",
            "--reason",
            &format!("relay-demo run {run_id}: read back the run's records for its summary"),
            "--ttl",
            "10m",
        ],
    )?;
    let grant = granted
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let export = relayctl(
        relayctl_bin,
        run_dir,
        &["cdr", "export", "--format", "json"],
    )?;
    let mut s = RecordSummary {
        grant,
        ..RecordSummary::default()
    };
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        let r: CallRecord = serde_json::from_str(line).context("a record from cdr export")?;
        s.records += 1;
        if r.answered() {
            s.answered += 1;
        }
        s.ended_by[match r.ended_by {
            EndedBy::Caller => 0,
            EndedBy::Callee => 1,
            EndedBy::Relay => 2,
        }] += 1;
        for m in &r.media {
            let leg = usize::from(m.leg.min(1));
            s.packets_from[leg] += m.packets;
            s.auth_failures += m.auth_failures + m.replay_drops;
            if s.suites[leg].is_none() {
                s.suites[leg] = Some(m.srtp_suite.clone().unwrap_or_else(|| "plain RTP".into()));
            }
        }
    }
    Ok(s)
}
