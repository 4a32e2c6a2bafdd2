//! `bastion testnet up | status | down | kill | restart | logs | compose` and the network
//! faults `partition | heal | latency | loss`: the clap side of `bastion-testnet` (which
//! does the work).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bastion_ledger::Address;
use bastion_testnet::byzantine::{self, ByzantineMode};
use bastion_testnet::dev_keys::{dev_keys, DEV_BALANCE};
use bastion_testnet::faults::{self, NetworkRules};
use bastion_testnet::process::{locate_node_binary, StopOutcome};
use bastion_testnet::relay;
use bastion_testnet::supervisor::{self, ExitNotice, LaunchEvent, LaunchOptions};
use bastion_testnet::{compose, logs, setup, SetupOptions, SetupOutcome, Testnet};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::args::{IndexList, LogsArgs, TestnetArgs, TestnetCommand, UpArgs};
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
        TestnetCommand::Partition { groups } => {
            shape(ctx.out, dir, |rules| rules.groups = groups.into_iter().map(|g| g.0).collect())
        }
        TestnetCommand::Heal => shape(ctx.out, dir, |rules| *rules = NetworkRules::default()),
        TestnetCommand::Latency { ms, only } => {
            let testnet = Testnet::open(dir)?;
            let targets = targets(&testnet, only);
            shape(ctx.out, dir, |rules| targets.iter().for_each(|i| rules.set_delay(*i, ms)))
        }
        TestnetCommand::Loss { pct, only } => {
            let testnet = Testnet::open(dir)?;
            let targets = targets(&testnet, only);
            shape(ctx.out, dir, |rules| targets.iter().for_each(|i| rules.set_loss(*i, pct)))
        }
        TestnetCommand::Relay => {
            let testnet = Testnet::open(dir)?;
            let stop = supervisor::interrupt_flag()?;
            relay::serve(&testnet, &stop)?;
            Ok(Exit::Success)
        }
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
    let (mut testnet, outcome) = setup(dir, &setup_options)?;
    byzantine::assign(&mut testnet, &args.byzantine)?;
    warn_byzantine(&testnet);
    prepare_faults(&mut testnet, outcome, args.faults)?;
    let verb = if outcome == SetupOutcome::Created { "created" } else { "reusing" };
    if !out.json {
        eprintln!("{verb} testnet {} in {}", testnet.manifest.chain_id, testnet.dir.root().display());
        eprintln!("starting {} validators ({})", testnet.count(), options.node_binary.display());
    }
    start_relay(out, &testnet)?;
    let bar = if out.json { ProgressBar::hidden() } else { ProgressBar::new(testnet.count() as u64) };
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} validators ready {pos}/{len} ({elapsed}) {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    let testnet_dir = testnet.dir.clone();
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
    let mut running = match launched {
        Ok(running) => running,
        Err(e) => {
            relay::stop(&testnet_dir, options.stop_grace);
            return Err(e.into());
        }
    };
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

/// `--faults`: a new testnet gets relay addresses; an existing one must have been made so.
fn prepare_faults(testnet: &mut Testnet, outcome: SetupOutcome, faults: bool) -> anyhow::Result<()> {
    if !faults || relay::uses_relay(testnet) {
        return Ok(());
    }
    if outcome == SetupOutcome::Created {
        relay::prepare(testnet)?;
        return Ok(());
    }
    anyhow::bail!(
        "the testnet in {} was made without --faults; add --reset to make a new one with it",
        testnet.dir.root().display()
    )
}

/// Starts the relay of a `--faults` testnet (its validators reach each other only through
/// it), before its validators.
fn start_relay(out: Out, testnet: &Testnet) -> anyhow::Result<()> {
    if !relay::uses_relay(testnet) {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let args = [
        "testnet".into(),
        "--dir".into(),
        testnet.dir.root().as_os_str().to_owned(),
        relay::RELAY_ARG.into(),
    ];
    let pid = relay::spawn(testnet, &exe, &args)?;
    if !out.json {
        eprintln!(
            "network relay started (pid {pid}, log {}); shape traffic with `bastion testnet partition | heal | latency | loss`",
            relay::log_path(&testnet.dir).display()
        );
    }
    Ok(())
}

/// The validators a `--only` list names, or all.
fn targets(testnet: &Testnet, only: Option<IndexList>) -> Vec<u16> {
    match only {
        Some(list) => list.0,
        None => (0..testnet.count() as u16).collect(),
    }
}

/// Changes the network rules of a running `--faults` testnet and prints them.
fn shape(out: Out, dir: &Path, change: impl FnOnce(&mut NetworkRules)) -> anyhow::Result<Exit> {
    let testnet = Testnet::open(dir)?;
    let rules = faults::apply(&testnet, change)?;
    if out.json {
        out.json(&json!({ "network": rules, "description": rules.describe() }));
    } else {
        println!("network: {}", rules.describe());
    }
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
    let any_byzantine = testnet.manifest.validators.iter().any(|v| v.byzantine.is_some());
    let mut header = vec!["validator", "API URL", "QUIC address", "pid", "status"];
    if any_byzantine {
        header.push("mode");
    }
    let mut t = table(&header);
    for v in &testnet.manifest.validators {
        let mut row = vec![
            v.index.to_string(),
            v.api_url.clone(),
            v.quic_addr.to_string(),
            v.pid.map(|p| p.to_string()).unwrap_or_default(),
            "ready".to_string(),
        ];
        if any_byzantine {
            row.push(mode_cell(v.byzantine));
        }
        t.add_row(row);
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
                "byzantine": r.byzantine,
            })).collect::<Vec<_>>(),
        }));
        return Ok(Exit::Success);
    }
    let any_byzantine = rows.iter().any(|r| r.byzantine.is_some());
    let mut header = vec!["validator", "pid", "process", "API URL", "health", "height"];
    if any_byzantine {
        header.push("mode");
    }
    let mut t = table(&header);
    for r in &rows {
        let mut row = vec![
            r.index.to_string(),
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            if r.running { "running" } else { "stopped" }.to_string(),
            r.api_url.clone(),
            r.health.summary(),
            r.committed_height.map(|h| h.to_string()).unwrap_or_else(|| "-".into()),
        ];
        if any_byzantine {
            row.push(mode_cell(r.byzantine));
        }
        t.add_row(row);
    }
    println!("testnet {} in {}\n{t}", testnet.manifest.chain_id, testnet.dir.root().display());
    if relay::uses_relay(&testnet) {
        let running =
            relay::running_pid(&testnet.dir).map_or("not running".to_string(), |p| format!("pid {p}"));
        let rules = faults::load(testnet.dir.root()).map(|f| f.rules).unwrap_or_default();
        println!("network relay: {running}; {}", rules.describe());
    }
    Ok(Exit::Success)
}

/// `byzantine: <mode>` or `honest`, for the tables of a testnet with Byzantine validators.
fn mode_cell(mode: Option<ByzantineMode>) -> String {
    mode.map_or_else(|| "honest".into(), |m| format!("byzantine: {m}"))
}

/// Says loudly (on stderr) which validators misbehave, and when there are more than the
/// committee tolerates.
fn warn_byzantine(testnet: &Testnet) {
    let byzantine: Vec<_> =
        testnet.manifest.validators.iter().filter_map(|v| v.byzantine.map(|m| (v.index, m))).collect();
    for (index, mode) in &byzantine {
        eprintln!("validator {index} runs Byzantine mode {mode}: it {}", mode.describe());
    }
    let f = byzantine::max_faulty(testnet.count());
    if byzantine.len() > f {
        eprintln!(
            "warning: {} of {} validators are Byzantine, more than f = {f}: safety (no two different blocks committed at one height) is only promised with at most {f}",
            byzantine.len(),
            testnet.count()
        );
    }
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
