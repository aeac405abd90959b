//! `relay-control`: the SBC's signalling process. Reads `control.toml`, connects to the data
//! plane's control socket, serves SIP, and programs every call's media.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use relay_control::config::ControlConfig;

#[derive(Parser)]
#[command(
    name = "relay-control",
    version,
    about = "SIP over TLS B2BUA that anchors media in the relay's data plane"
)]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        default_value = "/etc/relay/control.toml",
        env = "RELAY_CONTROL_CONFIG"
    )]
    config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RELAY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = match ControlConfig::load(&cli.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("relay-control: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        println!(
            "{}: OK ({} trunks, {} routes)",
            cli.config.display(),
            settings.b2bua.trunks.len(),
            settings.b2bua.routes.len()
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("relay-control: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        relay_control::shell::run(settings, Some(cli.config.clone()), stop).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay-control: {e}");
            ExitCode::from(1)
        }
    }
}
