//! `bastion`: the Bastion command line (see `bastion --help`, and client/README.md).
//!
//! Every command prints one JSON document with `--json`, text otherwise; errors go to
//! stderr (and, with `--json`, also as `{"error": {...}}` on stdout); the exit code says
//! what kind of outcome it was (`args::EXIT_CODES`).

mod args;
mod commands;
mod context;
mod exit;
mod output;

use clap::Parser;
use serde_json::json;

use crate::args::{Cli, Command, TestnetCommand};
use crate::context::Context;
use crate::exit::Exit;
use crate::output::Out;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are successes; a usage error is a local error (1).
            let code = if e.use_stderr() { Exit::Local.code() } else { Exit::Success.code() };
            std::process::exit(code);
        }
    };
    let supervises =
        matches!(&cli.command, Command::Testnet(t) if matches!(t.command, TestnetCommand::Up(_)));
    if !supervises {
        die_quietly_on_closed_pipe();
    }
    let ctx = Context { out: Out { json: cli.json }, node_flag: cli.node };
    let result = run(&ctx, cli.command);
    let exit = match result {
        Ok(exit) => exit,
        Err(error) => {
            let exit = Exit::classify(&error);
            eprintln!("error: {error:#}");
            if ctx.out.json {
                let client_error =
                    error.chain().find_map(|c| c.downcast_ref::<bastion_client::ClientError>());
                ctx.out.json(&json!({
                    "error": {
                        "message": format!("{error:#}"),
                        "exit_code": exit.code(),
                        "code": client_error.and_then(|e| e.code()),
                        "http_status": client_error.and_then(|e| e.status()),
                    }
                }));
            }
            exit
        }
    };
    std::process::exit(exit.code());
}

fn run(ctx: &Context, command: Command) -> anyhow::Result<Exit> {
    match command {
        // Local commands run without an async runtime.
        Command::Testnet(args) => commands::testnet::run(ctx, args),
        Command::Keys(args) => commands::keys::run(ctx, args),
        Command::Bench(args) => commands::bench::run(ctx, args),
        Command::Account(args) => block_on(commands::account::run(ctx, args)),
        Command::Transfer(args) => block_on(commands::send::transfer(ctx, args)),
        Command::Deploy(args) => block_on(commands::send::deploy(ctx, args)),
        Command::Call(args) => block_on(commands::send::call(ctx, args)),
        Command::View(args) => block_on(commands::query::view(ctx, args)),
        Command::Tx(args) => block_on(commands::query::tx(ctx, args)),
        Command::Block(args) => block_on(commands::query::block(ctx, args)),
        Command::Watch(args) => block_on(commands::watch::run(ctx, args)),
    }
}

fn block_on(task: impl std::future::Future<Output = anyhow::Result<Exit>>) -> anyhow::Result<Exit> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(task)
}

/// `bastion ... | head` should end quietly when `head` exits, like any Unix tool, instead
/// of panicking on the first write to a closed pipe (Rust ignores SIGPIPE by default). Not
/// for a foreground `testnet up`: a supervisor must outlive its output and stop its validators.
fn die_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
