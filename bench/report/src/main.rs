//! `bench-report`: turns what `scripts/bench.sh`'s runs wrote into a folder (`relay-gen ndr
//! --json` searches, `srtp-bench --json` rows, the relay's final counters, `meta.txt`) into
//! a `bench/RESULTS.md` section (`report.md`) and three SVG plots beside it.

#![forbid(unsafe_code)]

mod inputs;
mod plots;
mod table;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Writes scripts/bench.sh's report (markdown) and plots (SVG) from its runs' JSON"
)]
struct Cli {
    /// The folder the runs wrote to; the report and plots go there too.
    dir: PathBuf,
    /// How the markdown links the plots (a path relative to where the section is pasted).
    #[arg(long, default_value = ".")]
    plots_link: String,
    /// Append the section to this file too (bench/RESULTS.md).
    #[arg(long)]
    append_to: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let inputs = inputs::Inputs::read(&cli.dir)?;
    plots::throughput(&inputs, &cli.dir.join("throughput.svg"))?;
    plots::latency(&inputs, &cli.dir.join("latency.svg"))?;
    plots::trace(&inputs, &cli.dir.join("ndr-trace.svg"))?;
    let text = table::section(&inputs, &cli.plots_link);
    let report = cli.dir.join("report.md");
    std::fs::write(&report, &text).with_context(|| format!("writing {}", report.display()))?;
    if let Some(path) = &cli.append_to {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {} to append", path.display()))?;
        write!(f, "\n{text}").with_context(|| format!("appending to {}", path.display()))?;
    }
    println!(
        "report: {} (plots throughput.svg, latency.svg, ndr-trace.svg beside it)",
        report.display()
    );
    Ok(())
}
