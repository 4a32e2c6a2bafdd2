//! `bastion-node --config <dir> [--byzantine MODE]`: runs one validator until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use bastion_node::byzantine::ByzantineMode;
use bastion_testnet::config::NodeConfig;
use clap::{Parser, ValueEnum};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A Bastion validator.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Directory holding config.toml (relative paths in it are relative to this directory).
    #[arg(long)]
    config: PathBuf,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Fault testing only: misbehave on purpose. MODE is one of equivocate, double-vote,
    /// bad-signatures, silent, stale.
    #[arg(long, value_name = "MODE")]
    byzantine: Option<ByzantineMode>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_env("BASTION_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let config = match NodeConfig::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("bastion-node: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = config.worker_threads {
        builder.worker_threads(threads);
    }
    let runtime = match builder.enable_all().thread_name("bastion").build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bastion-node: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(bastion_node::run_with(config, args.byzantine, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bastion-node: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
