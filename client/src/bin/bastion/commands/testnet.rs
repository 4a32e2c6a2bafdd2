//! `bastion testnet up | status | down | kill | restart | logs | compose`: the clap side of
//! `bastion-testnet` (which does the work).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bastion_ledger::Address;
use bastion_testnet::dev_keys::{dev_keys, DEV_BALANCE};
use bastion_testnet::process::{locate_node_binary, StopOutcome};
use bastion_testnet::supervisor::{self, ExitNotice, LaunchEvent, LaunchOptions};
use bastion_testnet::{compose, logs, setup, SetupOptions, SetupOutcome, Testnet};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::args::{LogsArgs, TestnetArgs, TestnetCommand, UpArgs};
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{table, Out};

pub fn run(ctx: &Context, args: TestnetArgs) -> anyhow::Result<Exit> {
    let dir = args.dir.as_path();
    match args.command {
        TestnetCommand::Up(up) => self::up(ctx.out, dir, up),
        TestnetCommand::Status => status(ctx.out, dir),
        TestnetCommand::Down => down(ctx.out, dir),
        TestnetCommand::Kill { index } => {
            let testnet = Testnet::open(dir)?;
            let killed = supervisor::kill(&testnet, index)?;
            if ctx.out.json {
                ctx.out.json(&json!({ "index": index, "killed_pid": killed }));
            } else {
                match killed {
                    Some(pid) => println!("killed validator {index} (pid {pid}) with SIGKILL"),
                    None => println!("validator {index} was not running"),
                }
            }
            Ok(Exit::Success)
        }
        TestnetCommand::Restart { index } => restart(ctx.out, dir, index),
        TestnetCommand::Logs(logs_args) => show_logs(dir, logs_args),
        TestnetCommand::Compose => {
            let testnet = Testnet::open(dir)?;
            let path = compose::write_compose(&testnet)?;
            if ctx.out.json {
                ctx.out.json(&json!({ "path": path }));
            } else {
                println!("wrote {}", path.display());
                println!(
                    "stop the local validators first (`bastion testnet down`), then: docker compose -f {} up",
                    path.display()
                );
            }
            Ok(Exit::Success)
        }
    }
}

fn launch_options(ready_timeout: Duration) -> anyhow::Result<LaunchOptions> {
    let mut options = LaunchOptions::new(locate_node_binary()?);
    options.ready_timeout = ready_timeout;
    Ok(options)
}

fn up(out: Out, dir: &Path, args: UpArgs) -> anyhow::Result<Exit> {
    // Fail fast on a missing binary before writing anything.
    let options = launch_options(Duration::from_secs(args.ready_timeout))?;
    let interrupt = supervisor::interrupt_flag()?;
    let setup_options =
        SetupOptions { validators: args.validators, consensus_only: args.consensus_only, reset: args.reset };
    let (testnet, outcome) = setup(dir, &setup_options)?;
    let verb = if outcome == SetupOutcome::Created { "created" } else { "reusing" };
    if !out.json {
        eprintln!("{verb} testnet {} in {}", testnet.manifest.chain_id, testnet.dir.root().display());
        eprintln!("starting {} validators ({})", testnet.count(), options.node_binary.display());
    }
    let bar = if out.json { ProgressBar::hidden() } else { ProgressBar::new(testnet.count() as u64) };
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} validators ready {pos}/{len} ({elapsed}) {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    let launched = supervisor::launch(testnet, &options, &interrupt, |event| match event {
        LaunchEvent::Spawned { index, pid } => {
            bar.set_message(format!("started validator {index} (pid {pid})"))
        }
        LaunchEvent::Ready { index, .. } => {
            bar.inc(1);
            bar.set_message(format!("validator {index} ready"));
        }
    });
    bar.finish_and_clear();
    let mut running = launched?;
    print_ready(out, &running.testnet, args.detach);
    if args.detach {
        running.detach();
        return Ok(Exit::Success);
    }
    running.supervise(&interrupt, Duration::from_millis(200), |notice: ExitNotice| {
        eprintln!(
            "validator {} (pid {}) exited: {}; the others keep running. Log: {}. Restart it with `bastion testnet restart {} --dir {}`",
            notice.index,
            notice.pid,
            notice.status,
            notice.log.display(),
            notice.index,
            dir.display()
        );
    });
    interrupt.store(false, Ordering::SeqCst);
    eprintln!("stopping validators…");
    let outcomes = running.stop(options.stop_grace)?;
    for (index, outcome) in outcomes {
        if outcome == StopOutcome::Killed {
            eprintln!("validator {index} did not stop within {}s: killed", options.stop_grace.as_secs());
        }
    }
    eprintln!("testnet stopped (data kept; `bastion testnet up` resumes it, --reset starts over)");
    Ok(Exit::Success)
}

fn print_ready(out: Out, testnet: &Testnet, detached: bool) {
    let devs: Vec<(String, Address)> =
        dev_keys().into_iter().map(|(name, key)| (name, Address::from_public_key(&key.public()))).collect();
    if out.json {
        out.json(&json!({
            "chain_id": testnet.manifest.chain_id,
            "dir": testnet.dir.root(),
            "validators": testnet.manifest.validators,
            "dev_accounts": devs.iter().map(|(name, address)| json!({
                "name": name, "address": address, "balance": DEV_BALANCE,
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    let mut t = table(&["validator", "API URL", "QUIC address", "pid", "status"]);
    for v in &testnet.manifest.validators {
        t.add_row(vec![
            v.index.to_string(),
            v.api_url.clone(),
            v.quic_addr.to_string(),
            v.pid.map(|p| p.to_string()).unwrap_or_default(),
            "ready".to_string(),
        ]);
    }
    println!("testnet {} is ready\n{t}", testnet.manifest.chain_id);
    println!("\ndev accounts (published keys, {DEV_BALANCE} each; never use them outside a local testnet):");
    for (name, address) in &devs {
        println!("  {name:<5} {address}");
    }
    let dir_flag = if testnet.dir.root().ends_with(bastion_testnet::layout::DEFAULT_DIR) {
        String::new()
    } else {
        format!(" --dir {}", testnet.dir.root().display())
    };
    println!("\ntry:");
    println!("  bastion account dev0 --proof");
    println!("  bastion transfer --from dev0 --to dev1 --amount 1000 --wait");
    println!("  bastion deploy --from dev0 examples/contracts/counter.wat --wait");
    println!("  bastion watch");
    println!("  bastion testnet status{dir_flag}");
    if detached {
        println!("\nrunning in the background; stop with `bastion testnet down{dir_flag}`");
    } else {
        println!("\nCtrl-C stops the testnet");
    }
}

fn status(out: Out, dir: &Path) -> anyhow::Result<Exit> {
    let testnet = Testnet::open(dir)?;
    let rows = supervisor::status(&testnet);
    if out.json {
        out.json(&json!({
            "chain_id": testnet.manifest.chain_id,
            "dir": testnet.dir.root(),
            "validators": rows.iter().map(|r| json!({
                "index": r.index,
                "pid": r.pid,
                "running": r.running,
                "api_url": r.api_url,
                "quic_addr": r.quic_addr,
                "ready": r.health.is_ready(),
                "health": r.health.describe(),
                "committed_height": r.committed_height,
            })).collect::<Vec<_>>(),
        }));
        return Ok(Exit::Success);
    }
    let mut t = table(&["validator", "pid", "process", "API URL", "health", "height"]);
    for r in &rows {
        t.add_row(vec![
            r.index.to_string(),
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            if r.running { "running" } else { "stopped" }.to_string(),
            r.api_url.clone(),
            r.health.summary(),
            r.committed_height.map(|h| h.to_string()).unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("testnet {} in {}\n{t}", testnet.manifest.chain_id, testnet.dir.root().display());
    Ok(Exit::Success)
}

fn down(out: Out, dir: &Path) -> anyhow::Result<Exit> {
    let testnet = Testnet::open(dir)?;
    let outcomes = supervisor::down(&testnet, Duration::from_secs(10))?;
    let describe = |o: StopOutcome| match o {
        StopOutcome::Terminated => "stopped",
        StopOutcome::Killed => "killed after the grace period",
        StopOutcome::NotRunning => "was not running",
    };
    if out.json {
        out.json(
            &outcomes.iter().map(|(i, o)| json!({ "index": i, "outcome": describe(*o) })).collect::<Vec<_>>(),
        );
    } else {
        for (index, outcome) in &outcomes {
            println!("validator {index}: {}", describe(*outcome));
        }
    }
    Ok(Exit::Success)
}

fn restart(out: Out, dir: &Path, index: u16) -> anyhow::Result<Exit> {
    let testnet = Testnet::open(dir)?;
    testnet.check_index(index)?;
    let options = launch_options(Duration::from_secs(60))?;
    let spinner = out.spinner(format!("restarting validator {index}"));
    let result = supervisor::restart(&testnet, index, &options);
    spinner.finish_and_clear();
    let restarted = result?;
    if out.json {
        out.json(&json!({
            "index": index,
            "pid": restarted.pid,
            "ready": restarted.health.is_ready(),
            "health": restarted.health.describe(),
        }));
    } else if restarted.health.is_ready() {
        println!("validator {index} restarted (pid {}) and ready", restarted.pid);
    } else {
        println!(
            "validator {index} restarted (pid {}) but not ready yet ({}); see `bastion testnet status`",
            restarted.pid,
            restarted.health.describe()
        );
    }
    Ok(Exit::Success)
}

fn show_logs(dir: &Path, args: LogsArgs) -> anyhow::Result<Exit> {
    let testnet = Testnet::open(dir)?;
    testnet.check_index(args.index)?;
    let path = testnet.dir.log(args.index);
    if !path.exists() {
        anyhow::bail!("validator {} has no log yet ({})", args.index, path.display());
    }
    let lines = match args.lines {
        Some(n) => logs::tail(&path, n),
        None => std::fs::read_to_string(&path)?.lines().map(str::to_string).collect(),
    };
    for line in lines {
        println!("{line}");
    }
    if args.follow {
        let interrupt = supervisor::interrupt_flag()?;
        let mut stdout = std::io::stdout();
        logs::follow(&path, &mut stdout, Duration::from_millis(200), || interrupt.load(Ordering::SeqCst))?;
    }
    Ok(Exit::Success)
}
