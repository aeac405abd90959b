//! `relayctl`: the operator's command line for the relay's call-detail records.
//!
//! Reading records (`cdr list|show|export`) needs a just-in-time grant
//! (`access grant --reason ... --ttl 1h`); grants and every read are audited. Anonymised
//! statistics (`stats`) need no grant.
//!
//! Exit status: 0 done, nothing damaged; 2 not done (bad arguments, no grant, key file
//! refused, wrong KEK, I/O error); 3 done, but damage was found (what was readable is printed,
//! each finding is on stderr).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use relay_control::cdr::access::{parse_ttl, Access, Grant, GrantScope, Revealed};
use relay_control::cdr::stats::{self, HourStats};
use relay_control::cdr::trace;
use relay_control::cdr::{
    self, day_of, CallRecord, CdrConfig, CdrReader, Clock, Finding, Kek, SystemClock,
};

const EXIT_CODES: &str = "Exit status:
  0  done; nothing was damaged (a torn tail left by a crash is noted on stderr, it is not damage)
  2  not done: bad arguments, no active grant, key file refused, wrong KEK, I/O error
  3  done, but damage was found: records, segments, manifests, segment lists or statistics
     altered, truncated or missing, or the audit log broken; what was readable is printed,
     and each finding is on stderr";

#[derive(Parser)]
#[command(
    name = "relayctl",
    version,
    about = "Operator CLI of the SRTP relay: call-detail records, access grants, statistics",
    after_help = EXIT_CODES
)]
struct Cli {
    /// The CDR data directory (segments, statistics, grants, audit log).
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
    /// The key directory (wrapped day keys), outside the data directory. Default: the data
    /// directory's sibling `<name>-keys` (/var/lib/relay/cdr-keys).
    #[arg(long, env = "RELAY_CDR_KEYS", global = true)]
    keys: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    fn config(&self) -> CdrConfig {
        let mut config = CdrConfig::new(&self.dir, &self.kek);
        if let Some(keys) = &self.keys {
            config.keys_dir = keys.clone();
        }
        config
    }
}

/// How a command that ran went.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    /// Nothing damaged.
    Clean,
    /// Damage found and reported on stderr (exit status 3).
    Damaged,
}

impl Status {
    fn and(self, other: Status) -> Status {
        if self == Status::Damaged || other == Status::Damaged {
            Status::Damaged
        } else {
            Status::Clean
        }
    }
}

/// Prints the findings on stderr; damage if any is not a torn tail.
fn report(findings: &[Finding]) -> Status {
    let mut status = Status::Clean;
    for f in findings {
        if f.is_damage() {
            eprintln!("relayctl: damage: {f}");
            status = Status::Damaged;
        } else {
            eprintln!("relayctl: note: {f}");
        }
    }
    status
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
    /// A live view of the running appliance: calls, records, trunks, and per data-plane
    /// worker packets/s, re-keys/s, busy fraction and drops/s (from both local sockets).
    /// Redraws in place on a terminal; plain lines otherwise.
    Top {
        /// relay-control's admin socket.
        #[arg(
            long,
            env = "RELAY_ADMIN_SOCKET",
            default_value = "/run/relay/control.sock"
        )]
        admin_socket: PathBuf,
        /// The data plane's control socket.
        #[arg(
            long,
            env = "RELAY_DATAPLANE_SOCKET",
            default_value = "/run/relay/dataplane.sock"
        )]
        dataplane_socket: PathBuf,
        /// Seconds between views.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Stop after this many views (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
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
    /// Just-in-time SIP traces: written by relay-control only while a trace grant lasts,
    /// encrypted, purged with the records of their day.
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
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
enum TraceCommand {
    /// Start a trace: relay-control writes every SIP message (keys redacted) until the
    /// grant lapses or is stopped. Audited like a read grant.
    Start {
        /// Why: a ticket number or a sentence. Written to the audit log.
        #[arg(long)]
        reason: String,
        /// How long, e.g. 15m, 1h (at most 24h).
        #[arg(long, default_value = "30m")]
        ttl: String,
    },
    /// Stop a trace before its grant lapses.
    Stop {
        /// The trace grant's id (from `trace start` or `access list`).
        id: String,
    },
    /// Print the traced messages (needs a read grant; the read is audited).
    Show {
        #[command(flatten)]
        range: Range,
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
    /// Print the log (and check it, as `verify` does).
    Show {
        /// Only the last N entries.
        #[arg(long)]
        last: Option<usize>,
        /// Also print the sealed query terms (numbers, Call-IDs) of reads whose key still
        /// exists. Needs an active grant, and is itself audited.
        #[arg(long)]
        reveal: bool,
    },
    /// Check the hash chain, every entry's MAC and the anchor of the newest entry.
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

    /// The query without personal data: the range, and which filters were used.
    fn describe(&self, from: i64, to: i64) -> String {
        let mut d = format!("from {} to {}", day_of(from), day_of(to));
        let used: Vec<&str> = self.terms().iter().map(|(name, _)| *name).collect();
        if !used.is_empty() {
            d.push_str(&format!(" by {} (sealed)", used.join(", ")));
        }
        d
    }

    /// The personal query terms, sealed in the audit entry.
    fn terms(&self) -> Vec<(&'static str, &str)> {
        let mut t = Vec::new();
        if let Some(c) = &self.call_id {
            t.push(("call-id", c.as_str()));
        }
        if let Some(n) = &self.number {
            t.push(("number", n.as_str()));
        }
        t
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
) -> Result<(Vec<CallRecord>, Status)> {
    let (from, to) = filter.range.resolve(now)?;
    let reader = CdrReader::open(&cli.config(), grant)?;
    // Filtered while reading: only matching records are kept in memory.
    let mut records = Vec::new();
    let findings = reader.visit_range(from, to, &mut |r| {
        if filter.matches(r) {
            records.push(r.clone());
        }
    })?;
    let status = report(&findings);
    let ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
    access.audit_read(
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
        &filter.terms(),
    )?;
    Ok((records, status))
}

fn print_csv(records: &[CallRecord]) {
    println!("record_id,setup,answer,end,duration_s,ended_by,end_reason,leg0_call_id,leg0_from,leg0_to,leg0_trunk,leg1_call_id,leg1_trunk");
    for r in records {
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

fn print_stats(rows: &[HourStats], format: Format) -> Result<()> {
    match format {
        Format::Csv => print!("{}", stats::to_csv(rows)),
        Format::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        Format::Table => {
            println!(
                "{:<18} {:<12} {:>9} {:>9} {:>6} {:>9}  failed",
                "hour", "trunk", "attempted", "answered", "ASR", "minutes"
            );
            for r in rows {
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
    Ok(())
}

/// Checks the audit log; a break is reported on stderr as damage.
fn audit_check(access: &Access) -> Result<(Status, usize)> {
    let check = access.verify()?;
    match &check.problem {
        Some(p) => {
            eprintln!("relayctl: damage: {p}");
            Ok((Status::Damaged, check.entries))
        }
        None => {
            if !check.anchored {
                eprintln!("relayctl: note: the audit log was written by the first version and is not anchored yet; the next audited action anchors it");
            }
            Ok((Status::Clean, check.entries))
        }
    }
}

fn run(cli: Cli) -> Result<Status> {
    let now = SystemClock.now_ms();
    let config = cli.config();
    if let Command::Top {
        admin_socket,
        dataplane_socket,
        interval,
        count,
    } = &cli.command
    {
        top(admin_socket, dataplane_socket, *interval, *count)?;
        return Ok(Status::Clean);
    }
    if let Command::Calls { admin_socket } | Command::Trunks { admin_socket } = &cli.command {
        live(admin_socket, matches!(cli.command, Command::Calls { .. }))?;
        return Ok(Status::Clean);
    }
    if let Command::Keygen { out } = &cli.command {
        Kek::generate(out)?;
        println!(
            "wrote a new key-encryption key to {} (mode 0600)",
            out.display()
        );
        return Ok(Status::Clean);
    }
    // Every other command opens the store, and refuses a bad KEK the same way.
    let access = Access::open(&config)?;
    let mut status = Status::Clean;
    match &cli.command {
        Command::Keygen { .. }
        | Command::Calls { .. }
        | Command::Trunks { .. }
        | Command::Top { .. } => {
            unreachable!("handled above")
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
                        "{}  {:<12} {:<5} until {}  {}",
                        g.id,
                        g.who,
                        match g.scope {
                            GrantScope::Read => "read",
                            GrantScope::Trace => "trace",
                        },
                        time_str(g.expires_ms),
                        g.reason
                    );
                }
                for f in access.forged()? {
                    eprintln!("relayctl: damage: grant file {f} is not authentic (written or changed by hand): refused");
                    status = Status::Damaged;
                }
            }
            AccessCommand::Revoke { id } => {
                access.revoke(id, &who(), now)?;
                println!("revoked {id}");
            }
        },
        Command::Trace { command } => match command {
            TraceCommand::Start { reason, ttl } => {
                let g =
                    access.grant_scoped(&who(), reason, parse_ttl(ttl)?, GrantScope::Trace, now)?;
                println!(
                    "trace {} until {}: relay-control traces SIP within a few seconds (reason: {})",
                    g.id,
                    time_str(g.expires_ms),
                    g.reason
                );
            }
            TraceCommand::Stop { id } => {
                access.revoke(id, &who(), now)?;
                println!("stopped trace {id}");
            }
            TraceCommand::Show { range } => {
                let grant = access.require(&who(), now)?;
                let (from, to) = range.resolve(now)?;
                let read = trace::read(&config, &grant, &day_of(from), &day_of(to))?;
                for f in &read.findings {
                    eprintln!("relayctl: {f}");
                }
                for (trace_id, e) in &read.entries {
                    if e.ts_ms < from || e.ts_ms > to {
                        continue;
                    }
                    let arrow = match e.direction {
                        trace::Direction::In => "<-",
                        trace::Direction::Out => "->",
                    };
                    println!(
                        "== {} {arrow} {} {} (trace {trace_id})",
                        time_str(e.ts_ms),
                        e.transport,
                        e.peer
                    );
                    println!("{}", e.text.trim_end());
                }
                access.audit_read(
                    now,
                    &who(),
                    "trace show",
                    Some(&grant),
                    &format!(
                        "{} .. {}; {} messages",
                        time_str(from),
                        time_str(to),
                        read.entries.len()
                    ),
                    &[],
                )?;
                if !read.findings.is_empty() {
                    status = Status::Damaged;
                }
            }
        },
        Command::Cdr { command } => {
            let grant = access.require(&who(), now)?;
            match command {
                CdrCommand::List { filter } => {
                    let (records, s) =
                        read_records(&cli, &access, &grant, "cdr list", filter, now)?;
                    status = s;
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
                    let (records, s) =
                        read_records(&cli, &access, &grant, "cdr show", &filter, now)?;
                    status = s;
                    let r = records
                        .iter()
                        .find(|r| &r.record_id == record_id)
                        .with_context(|| format!("no record {record_id} in that time range"))?;
                    println!("{}", serde_json::to_string_pretty(r)?);
                }
                CdrCommand::Export { filter, format } => {
                    let (records, s) =
                        read_records(&cli, &access, &grant, "cdr export", filter, now)?;
                    status = s;
                    match format {
                        ExportFormat::Json => {
                            for r in &records {
                                println!("{}", serde_json::to_string(r)?);
                            }
                        }
                        ExportFormat::Csv => print_csv(&records),
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
            let (first, last) = (day_of(from), day_of(to));
            let mut rows: Vec<HourStats> = stats::load_folded(&cli.dir, &first, &last)?
                .into_values()
                .flatten()
                .collect();
            // Days not purged yet come from their sealed checkpoints; only aggregates leave.
            let folded: BTreeSet<String> = rows.iter().map(|r| r.hour[..10].to_owned()).collect();
            let live = cdr::live_stats(&config, &first, &last, &folded)?;
            status = report(&live.findings);
            rows.extend(live.rows);
            // Whole hours: an hour is shown if it starts inside the range.
            let (from_hour, to_hour) = (stats_hour(from), stats_hour(to));
            rows.retain(|r| {
                trunk.as_ref().is_none_or(|t| &r.trunk == t)
                    && r.hour.as_str() >= from_hour.as_str()
                    && r.hour.as_str() <= to_hour.as_str()
            });
            rows.sort_by(|a, b| (&a.hour, &a.trunk).cmp(&(&b.hour, &b.trunk)));
            print_stats(&rows, *format)?;
        }
        Command::Audit { command } => match command {
            AuditCommand::Show { last, reveal } => {
                let grant = if *reveal {
                    let g = access.require(&who(), now)?;
                    access.audit(now, &who(), "audit reveal", Some(&g), "query terms shown")?;
                    Some(g)
                } else {
                    None
                };
                let entries = access.entries()?;
                let skip = last.map_or(0, |n| entries.len().saturating_sub(n));
                for e in entries.iter().skip(skip) {
                    let terms = match (&grant, access.reveal(e)?) {
                        (None, Revealed::None) | (Some(_), Revealed::None) => String::new(),
                        (None, _) => " terms=<sealed>".into(),
                        (Some(_), Revealed::Shredded) => " terms=<shredded: key destroyed>".into(),
                        (Some(_), Revealed::Damaged) => {
                            status = Status::Damaged;
                            " terms=<damaged>".into()
                        }
                        (Some(_), Revealed::Terms(t)) => format!(
                            " terms={}",
                            t.iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                    };
                    println!(
                        "{}  {:<10} {:<13} grant={} reason={:?} {}{terms}",
                        time_str(e.ts_ms),
                        e.who,
                        e.action,
                        e.grant_id.as_deref().unwrap_or("-"),
                        e.reason.as_deref().unwrap_or(""),
                        e.detail
                    );
                }
                status = status.and(audit_check(&access)?.0);
            }
            AuditCommand::Verify => {
                let (s, entries) = audit_check(&access)?;
                status = s;
                if s == Status::Clean {
                    println!("audit log intact: {entries} entries");
                }
            }
        },
        Command::Purge { retention_days } => {
            let mut config = config.clone();
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
    Ok(status)
}

/// The hour label (`YYYY-MM-DDTHH:00Z`) of the hour containing `ms`.
fn stats_hour(ms: i64) -> String {
    let hour = ms.div_euclid(3_600_000).rem_euclid(24);
    format!("{}T{hour:02}:00Z", day_of(ms))
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
        AdminAnswer::Status(_) => bail!("relay-control answered a status to another request"),
        AdminAnswer::Error(e) => bail!("relay-control: {e}"),
    }
    Ok(())
}

/// `relayctl top`.
fn top(
    admin: &std::path::Path,
    dataplane: &std::path::Path,
    interval: f64,
    count: Option<u64>,
) -> Result<()> {
    use std::io::IsTerminal;
    if !(0.1..=3600.0).contains(&interval) {
        bail!("--interval must be between 0.1 and 3600 seconds");
    }
    let tty = std::io::stdout().is_terminal();
    let mut before = relay_control::top::sample(admin, dataplane);
    let mut shown = 0u64;
    while count.is_none_or(|c| shown < c) {
        std::thread::sleep(std::time::Duration::from_secs_f64(interval));
        let now = relay_control::top::sample(admin, dataplane);
        let lines = relay_control::top::render(&before, &now);
        let stamp = time_str(SystemClock.now_ms());
        if tty {
            // Home and clear, then the view: it redraws in place.
            print!("\x1b[H\x1b[2J");
            println!("relayctl top  {stamp}  every {interval} s  (Ctrl-C to stop)");
        } else {
            println!("== {stamp}");
        }
        for l in &lines {
            println!("{l}");
        }
        shown += 1;
        before = now;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(Status::Clean) => ExitCode::SUCCESS,
        Ok(Status::Damaged) => ExitCode::from(3),
        Err(e) => {
            eprintln!("relayctl: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
