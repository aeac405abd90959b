//! `relayctl`: the operator's command line for the relay's call-detail records.
//!
//! Reading records (`cdr list|show|export`) needs a just-in-time grant
//! (`access grant --reason ... --ttl 1h`); grants and every read are audited. Anonymised
//! statistics (`stats`) need no grant.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use relay_control::cdr::access::{parse_ttl, Access, Grant};
use relay_control::cdr::stats::{self, HourStats};
use relay_control::cdr::{self, day_of, CallRecord, CdrConfig, CdrReader, Clock, Kek, SystemClock};

#[derive(Parser)]
#[command(
    name = "relayctl",
    version,
    about = "Operator CLI of the SRTP relay: call-detail records, access grants, statistics"
)]
struct Cli {
    /// The CDR store directory.
    #[arg(
        long,
        env = "RELAY_CDR_DIR",
        default_value = "/var/lib/relay/cdr",
        global = true
    )]
    dir: PathBuf,
    /// The key-encryption key file.
    #[arg(
        long,
        env = "RELAY_CDR_KEK",
        default_value = "/etc/relay/cdr.kek",
        global = true
    )]
    kek: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Active calls in relay-control (numbers masked), from its admin socket.
    Calls {
        /// relay-control's admin socket.
        #[arg(
            long,
            env = "RELAY_ADMIN_SOCKET",
            default_value = "/run/relay/control.sock"
        )]
        admin_socket: PathBuf,
    },
    /// Trunk peers' health from relay-control's OPTIONS, from its admin socket.
    Trunks {
        /// relay-control's admin socket.
        #[arg(
            long,
            env = "RELAY_ADMIN_SOCKET",
            default_value = "/run/relay/control.sock"
        )]
        admin_socket: PathBuf,
    },
    /// Create a new random key-encryption key file (mode 0600).
    Keygen {
        /// Where to write it; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Just-in-time access grants.
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// Call-detail records (need an active grant).
    Cdr {
        #[command(subcommand)]
        command: CdrCommand,
    },
    /// Anonymised hourly statistics per trunk (no grant needed).
    Stats {
        #[command(flatten)]
        range: Range,
        /// Only this trunk.
        #[arg(long)]
        trunk: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run the purge now (it also runs at start-up and hourly in the control plane).
    Purge {
        /// Days to keep (at most 30).
        #[arg(long, default_value_t = cdr::MAX_RETENTION_DAYS)]
        retention_days: u32,
    },
}

#[derive(Subcommand)]
enum AccessCommand {
    /// Grant yourself read access for a limited time, for a stated reason.
    Grant {
        /// Why: a ticket number or a sentence. Written to the audit log.
        #[arg(long)]
        reason: String,
        /// How long, e.g. 30m, 1h (at most 24h).
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Active grants.
    List,
    /// Withdraw a grant before it lapses.
    Revoke {
        /// The grant's id.
        id: String,
    },
}

#[derive(Subcommand)]
enum CdrCommand {
    /// One line per call.
    List {
        #[command(flatten)]
        filter: Filter,
    },
    /// One record in full (JSON).
    Show {
        /// The record id (from `cdr list`).
        record_id: String,
        #[command(flatten)]
        range: Range,
    },
    /// Records as JSON lines or CSV.
    Export {
        #[command(flatten)]
        filter: Filter,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the log.
    Show {
        /// Only the last N entries.
        #[arg(long)]
        last: Option<usize>,
    },
    /// Check the hash chain.
    Verify,
}

#[derive(clap::Args, Clone)]
struct Range {
    /// From (YYYY-MM-DD or RFC 3339, UTC); default 30 days ago.
    #[arg(long)]
    from: Option<String>,
    /// To (YYYY-MM-DD, inclusive, or RFC 3339); default now.
    #[arg(long)]
    to: Option<String>,
}

#[derive(clap::Args, Clone)]
struct Filter {
    #[command(flatten)]
    range: Range,
    /// Only calls with this Call-ID on either leg.
    #[arg(long)]
    call_id: Option<String>,
    /// Only calls with this number (calling or called) on either leg.
    #[arg(long)]
    number: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Json,
    Csv,
}

fn who() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Milliseconds for a date (`YYYY-MM-DD`; `end` = last millisecond of that day) or RFC 3339.
fn parse_time(s: &str, end: bool) -> Result<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let date = time::Date::parse(
        s,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .with_context(|| format!("{s:?} is neither YYYY-MM-DD nor RFC 3339"))?;
    let start = date.midnight().assume_utc().unix_timestamp() * 1000;
    Ok(if end { start + 86_400_000 - 1 } else { start })
}

impl Range {
    fn resolve(&self, now: i64) -> Result<(i64, i64)> {
        let from = self
            .from
            .as_deref()
            .map(|s| parse_time(s, false))
            .transpose()?
            .unwrap_or(now - 31 * 86_400_000);
        let to = self
            .to
            .as_deref()
            .map(|s| parse_time(s, true))
            .transpose()?
            .unwrap_or(now);
        if from > to {
            bail!("--from is after --to");
        }
        Ok((from, to))
    }
}

impl Filter {
    fn matches(&self, r: &CallRecord) -> bool {
        self.call_id
            .as_ref()
            .is_none_or(|id| r.legs.iter().any(|l| &l.call_id == id))
            && self.number.as_ref().is_none_or(|n| {
                r.legs
                    .iter()
                    .any(|l| l.from_number.as_ref() == Some(n) || l.to_number.as_ref() == Some(n))
            })
    }

    fn describe(&self, from: i64, to: i64) -> String {
        let mut d = format!("from {} to {}", day_of(from), day_of(to));
        if let Some(c) = &self.call_id {
            d.push_str(&format!(" call-id {c}"));
        }
        if let Some(n) = &self.number {
            d.push_str(&format!(" number {n}"));
        }
        d
    }
}

fn time_str(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Reads records under `grant`, prints the findings, audits the read.
fn read_records(
    cli: &Cli,
    access: &Access,
    grant: &Grant,
    action: &str,
    filter: &Filter,
    now: i64,
) -> Result<Vec<CallRecord>> {
    let (from, to) = filter.range.resolve(now)?;
    let reader = CdrReader::open(&cli.dir, &cli.kek, grant)?;
    let report = reader.read_range(from, to)?;
    for f in &report.findings {
        eprintln!("relayctl: warning: {f}");
    }
    let records: Vec<CallRecord> = report
        .records
        .into_iter()
        .filter(|r| filter.matches(r))
        .collect();
    let ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
    access.audit(
        now,
        &who(),
        action,
        Some(grant),
        &format!(
            "{}; {} records: {}",
            filter.describe(from, to),
            records.len(),
            ids.join(" ")
        ),
    )?;
    Ok(records)
}

fn run(cli: Cli) -> Result<()> {
    let now = SystemClock.now_ms();
    let access = Access::new(&cli.dir);
    match &cli.command {
        Command::Calls { admin_socket } | Command::Trunks { admin_socket } => {
            return live(admin_socket, matches!(cli.command, Command::Calls { .. }));
        }
        Command::Keygen { out } => {
            Kek::generate(out)?;
            println!(
                "wrote a new key-encryption key to {} (mode 0600)",
                out.display()
            );
        }
        Command::Access { command } => match command {
            AccessCommand::Grant { reason, ttl } => {
                let g = access.grant(&who(), reason, parse_ttl(ttl)?, now)?;
                println!(
                    "grant {} for {} until {} (reason: {})",
                    g.id,
                    g.who,
                    time_str(g.expires_ms),
                    g.reason
                );
            }
            AccessCommand::List => {
                for g in access.active(now)? {
                    println!(
                        "{}  {:<12} until {}  {}",
                        g.id,
                        g.who,
                        time_str(g.expires_ms),
                        g.reason
                    );
                }
            }
            AccessCommand::Revoke { id } => {
                access.revoke(id, &who(), now)?;
                println!("revoked {id}");
            }
        },
        Command::Cdr { command } => {
            let grant = access.require(&who(), now)?;
            match command {
                CdrCommand::List { filter } => {
                    let records = read_records(&cli, &access, &grant, "cdr list", filter, now)?;
                    println!(
                        "{:<20} {:<25} {:<18} {:<18} {:>8} end",
                        "record", "ended (UTC)", "from", "to", "secs"
                    );
                    for r in &records {
                        let leg = r.legs.first();
                        println!(
                            "{:<20} {:<25} {:<18} {:<18} {:>8} {}",
                            r.record_id,
                            time_str(r.end_ms),
                            leg.and_then(|l| l.from_number.clone()).unwrap_or_default(),
                            leg.and_then(|l| l.to_number.clone()).unwrap_or_default(),
                            r.duration_ms() / 1000,
                            r.end_reason.label()
                        );
                    }
                    eprintln!("{} records", records.len());
                }
                CdrCommand::Show { record_id, range } => {
                    let filter = Filter {
                        range: range.clone(),
                        call_id: None,
                        number: None,
                    };
                    let records = read_records(&cli, &access, &grant, "cdr show", &filter, now)?;
                    let r = records
                        .iter()
                        .find(|r| &r.record_id == record_id)
                        .with_context(|| format!("no record {record_id} in that time range"))?;
                    println!("{}", serde_json::to_string_pretty(r)?);
                }
                CdrCommand::Export { filter, format } => {
                    let records = read_records(&cli, &access, &grant, "cdr export", filter, now)?;
                    match format {
                        ExportFormat::Json => {
                            for r in &records {
                                println!("{}", serde_json::to_string(r)?);
                            }
                        }
                        ExportFormat::Csv => {
                            println!("record_id,setup,answer,end,duration_s,ended_by,end_reason,leg0_call_id,leg0_from,leg0_to,leg0_trunk,leg1_call_id,leg1_trunk");
                            for r in &records {
                                let l0 = r.legs.first();
                                let l1 = r.legs.get(1);
                                let cols = [
                                    r.record_id.clone(),
                                    time_str(r.setup_ms),
                                    r.answer_ms.map(time_str).unwrap_or_default(),
                                    time_str(r.end_ms),
                                    (r.duration_ms() / 1000).to_string(),
                                    format!("{:?}", r.ended_by).to_lowercase(),
                                    r.end_reason.label(),
                                    l0.map(|l| l.call_id.clone()).unwrap_or_default(),
                                    l0.and_then(|l| l.from_number.clone()).unwrap_or_default(),
                                    l0.and_then(|l| l.to_number.clone()).unwrap_or_default(),
                                    l0.map(|l| l.trunk.clone()).unwrap_or_default(),
                                    l1.map(|l| l.call_id.clone()).unwrap_or_default(),
                                    l1.map(|l| l.trunk.clone()).unwrap_or_default(),
                                ];
                                println!(
                                    "{}",
                                    cols.iter()
                                        .map(|c| csv_field(c))
                                        .collect::<Vec<_>>()
                                        .join(",")
                                );
                            }
                        }
                    }
                }
            }
        }
        Command::Stats {
            range,
            trunk,
            format,
        } => {
            let (from, to) = range.resolve(now)?;
            let mut rows: Vec<HourStats> =
                stats::load_folded(&cli.dir, &day_of(from), &day_of(to))?
                    .into_values()
                    .flatten()
                    .collect();
            // Days not purged yet are aggregated on the fly; only aggregates leave this process.
            let folded: std::collections::BTreeSet<String> =
                rows.iter().map(|r| r.hour[..10].to_owned()).collect();
            rows.extend(live_stats(&cli, from, to, &folded)?);
            rows.retain(|r| trunk.as_ref().is_none_or(|t| &r.trunk == t));
            rows.sort_by(|a, b| (&a.hour, &a.trunk).cmp(&(&b.hour, &b.trunk)));
            match format {
                Format::Csv => print!("{}", stats::to_csv(&rows)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                Format::Table => {
                    println!(
                        "{:<18} {:<12} {:>9} {:>9} {:>6} {:>9}  failed",
                        "hour", "trunk", "attempted", "answered", "ASR", "minutes"
                    );
                    for r in &rows {
                        let failed: Vec<String> =
                            r.failed.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        println!(
                            "{:<18} {:<12} {:>9} {:>9} {:>5.1}% {:>9.1}  {}",
                            r.hour,
                            r.trunk,
                            r.attempted,
                            r.answered,
                            100.0 * r.asr(),
                            r.minutes,
                            failed.join(" ")
                        );
                    }
                }
            }
        }
        Command::Audit { command } => match command {
            AuditCommand::Show { last } => {
                let entries = access.entries()?;
                let skip = last.map_or(0, |n| entries.len().saturating_sub(n));
                for e in entries.iter().skip(skip) {
                    println!(
                        "{}  {:<10} {:<11} grant={} reason={:?} {}",
                        time_str(e.ts_ms),
                        e.who,
                        e.action,
                        e.grant_id.as_deref().unwrap_or("-"),
                        e.reason.as_deref().unwrap_or(""),
                        e.detail
                    );
                }
            }
            AuditCommand::Verify => println!("audit log intact: {} entries", access.verify()?),
        },
        Command::Purge { retention_days } => {
            let mut config = CdrConfig::new(&cli.dir, &cli.kek);
            config.retention_days = *retention_days;
            let kek = Kek::load(&cli.kek)?;
            let report = cdr::purge(&config, &kek, now)?;
            access.audit(
                now,
                &who(),
                "purge",
                None,
                &format!("days {:?}", report.days_purged),
            )?;
            println!(
                "purged days: {:?} ({} records folded into statistics)",
                report.days_purged, report.records_folded
            );
        }
    }
    Ok(())
}

/// Aggregates of the days in range that are not folded yet.
fn live_stats(
    cli: &Cli,
    from: i64,
    to: i64,
    folded: &std::collections::BTreeSet<String>,
) -> Result<Vec<HourStats>> {
    let reader = match cdr::stats_reader(&cli.dir, &cli.kek) {
        Ok(r) => r,
        // Without the KEK only folded statistics can be shown.
        Err(cdr::CdrError::KeyFile(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut records = Vec::new();
    for day in reader
        .days()?
        .into_iter()
        .filter(|d| *d >= day_of(from) && *d <= day_of(to) && !folded.contains(d))
    {
        records.extend(
            reader
                .read_day(&day)?
                .records
                .into_iter()
                .filter(|r| r.end_ms >= from && r.end_ms <= to),
        );
    }
    Ok(stats::fold(&records))
}

/// `relayctl calls` / `relayctl trunks`: what relay-control says on its admin socket.
fn live(socket: &std::path::Path, calls: bool) -> Result<()> {
    use relay_control::shell::observe::{admin_request, AdminAnswer, AdminRequest};
    let req = if calls {
        AdminRequest::Calls
    } else {
        AdminRequest::Trunks
    };
    let answer = admin_request(socket, &req).with_context(|| {
        format!(
            "relay-control's admin socket {} (is relay-control running? --admin-socket)",
            socket.display()
        )
    })?;
    match answer {
        AdminAnswer::Calls(calls) => {
            println!(
                "{:<18} {:<24} {:<8} {:<8} {:<10} {:>6} {:>5}",
                "call", "trunks", "from", "to", "state", "held", "age"
            );
            for c in &calls {
                println!(
                    "{:<18} {:<24} {:<8} {:<8} {:<10} {:>6} {:>4}s",
                    c.id, c.trunks, c.from, c.to, c.state, c.held, c.age_s
                );
            }
            println!("{} active", calls.len());
        }
        AdminAnswer::Trunks(peers) => {
            println!(
                "{:<12} {:<36} {:<8} {:>9} {:>6} {:>8}",
                "trunk", "peer", "state", "rtt", "sent", "timeouts"
            );
            for p in &peers {
                let rtt = p.rtt_ms.map_or("-".into(), |r| format!("{r:.1} ms"));
                println!(
                    "{:<12} {:<36} {:<8} {:>9} {:>6} {:>8}",
                    p.trunk, p.peer, p.state, rtt, p.sent, p.timeouts
                );
            }
        }
        AdminAnswer::Error(e) => bail!("relay-control: {e}"),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relayctl: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
