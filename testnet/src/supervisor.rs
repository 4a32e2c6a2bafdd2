//! Starting, watching and stopping a local testnet's validator processes.
//!
//! * [`launch`] starts every validator and waits until each answers `GET /health` with 200.
//!   It fails fast: a validator that exits, or is not ready within the timeout, stops all
//!   the others, and the error carries that validator's last log lines and the reason.
//! * [`RunningTestnet::supervise`] is the foreground mode: it reports validators that exit
//!   (a `kill` from another terminal is a fault to inject, not a reason to stop the others)
//!   and returns when the caller's stop flag is set (Ctrl-C); [`RunningTestnet::stop`] then
//!   stops every validator listed in `testnet.json`, including ones restarted meanwhile by
//!   `bastion testnet restart`.
//! * [`status`], [`down`], [`kill`] and [`restart`] act on a testnet by the pids in
//!   `testnet.json`, and only on processes that are that testnet's validators.
//!
//! `testnet.json` is re-read before each update, because other `bastion testnet`
//! commands may change it while a foreground supervisor runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::byzantine::ByzantineMode;
use crate::error::TestnetError;
use crate::generate::Testnet;
use crate::logs::{tail_of_last_run, FAILURE_TAIL_LINES, START_MARKER};
use crate::manifest::Manifest;
use crate::ports;
use crate::probe::{self, Health};
use crate::process::{self, StopOutcome};

#[derive(Clone, Debug)]
pub struct LaunchOptions {
    pub node_binary: PathBuf,
    /// How long each validator may take to answer `/health` with 200.
    pub ready_timeout: Duration,
    /// Between two rounds of health checks.
    pub poll_interval: Duration,
    /// Between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
}

impl LaunchOptions {
    pub fn new(node_binary: PathBuf) -> Self {
        LaunchOptions {
            node_binary,
            ready_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
            stop_grace: Duration::from_secs(10),
        }
    }
}

/// Progress of a launch, for the caller to display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaunchEvent {
    Spawned { index: u16, pid: u32 },
    Ready { index: u16, elapsed: Duration },
}

/// A validator that exited while supervised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitNotice {
    pub index: u16,
    pub pid: u32,
    pub status: String,
    pub log: PathBuf,
}

/// A started testnet whose validators are this process's children.
#[derive(Debug)]
pub struct RunningTestnet {
    pub testnet: Testnet,
    children: Vec<(u16, Child)>,
}

const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

fn api_addr(testnet: &Testnet, index: u16) -> SocketAddr {
    testnet.configs[usize::from(index)].api_listen
}

/// Starts every validator of `testnet` and waits until all are ready (see module docs).
/// `interrupt` aborts the wait (stopping what was started).
pub fn launch(
    mut testnet: Testnet,
    options: &LaunchOptions,
    interrupt: &AtomicBool,
    mut on_event: impl FnMut(LaunchEvent),
) -> Result<RunningTestnet, TestnetError> {
    check_ports(&testnet)?;
    let mut children: Vec<(u16, Child)> = Vec::with_capacity(testnet.count());
    for index in 0..testnet.count() as u16 {
        match start_validator(&testnet, index, &options.node_binary) {
            Ok(child) => {
                on_event(LaunchEvent::Spawned { index, pid: child.id() });
                if let Some(entry) = testnet.manifest.validator_mut(index) {
                    entry.pid = Some(child.id());
                }
                children.push((index, child));
            }
            Err(e) => {
                stop_children(&mut children, options.stop_grace);
                return Err(e);
            }
        }
    }
    testnet.save_manifest()?;
    let mut running = RunningTestnet { testnet, children };
    if let Err(e) = running.wait_all_ready(options, interrupt, &mut on_event) {
        running.stop(options.stop_grace)?;
        return Err(e);
    }
    Ok(running)
}

fn check_ports(testnet: &Testnet) -> Result<(), TestnetError> {
    for (i, config) in testnet.configs.iter().enumerate() {
        let index = i as u16;
        if !ports::tcp_free(config.api_listen) {
            return Err(TestnetError::PortTaken {
                index,
                proto: "API (TCP)",
                addr: config.api_listen,
                hint: "; run `bastion testnet up` again to pick a new one",
            });
        }
        if !ports::udp_free(config.quic_listen) {
            return Err(TestnetError::PortTaken {
                index,
                proto: "QUIC (UDP)",
                addr: config.quic_listen,
                hint: "; free it or add --reset to make a new testnet",
            });
        }
    }
    Ok(())
}

/// Starts validator `index`, in the Byzantine mode `testnet.json` lists for it, if any.
fn start_validator(testnet: &Testnet, index: u16, binary: &std::path::Path) -> Result<Child, TestnetError> {
    use std::io::Write;
    let log = testnet.dir.log(index);
    let vdir = testnet.dir.validator(index);
    let extra: Vec<String> = match testnet.manifest.validator(index).and_then(|v| v.byzantine) {
        Some(mode) => vec!["--byzantine".into(), mode.to_string()],
        None => Vec::new(),
    };
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&log) {
        let _ = writeln!(
            file,
            "{START_MARKER} {} --config {}{}",
            binary.display(),
            vdir.display(),
            extra.iter().map(|a| format!(" {a}")).collect::<String>()
        );
    }
    process::spawn_node_with(binary, &vdir, &log, index, &extra)
}

impl RunningTestnet {
    fn wait_all_ready(
        &mut self,
        options: &LaunchOptions,
        interrupt: &AtomicBool,
        on_event: &mut impl FnMut(LaunchEvent),
    ) -> Result<(), TestnetError> {
        let started = Instant::now();
        let mut pending: Vec<u16> = self.children.iter().map(|(i, _)| *i).collect();
        let mut last: Vec<Health> = vec![Health::Unreachable("not started".into()); self.testnet.count()];
        loop {
            if interrupt.load(Ordering::SeqCst) {
                return Err(TestnetError::Interrupted);
            }
            for (index, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(exited_error(&self.testnet, *index, status.to_string()));
                }
            }
            let mut still = Vec::with_capacity(pending.len());
            for index in pending {
                let health = probe::health(api_addr(&self.testnet, index), PROBE_TIMEOUT);
                if health.is_ready() {
                    on_event(LaunchEvent::Ready { index, elapsed: started.elapsed() });
                } else {
                    still.push(index);
                }
                last[usize::from(index)] = health;
            }
            pending = still;
            let Some(&first) = pending.first() else { return Ok(()) };
            if started.elapsed() >= options.ready_timeout {
                let log = self.testnet.dir.log(first);
                return Err(TestnetError::NotReady {
                    index: first,
                    waited_secs: started.elapsed().as_secs(),
                    last: last[usize::from(first)].describe(),
                    log_tail: tail_of_last_run(&log, FAILURE_TAIL_LINES),
                    log,
                });
            }
            std::thread::sleep(options.poll_interval);
        }
    }

    /// Reports validators that exit, until `stop` is set. Returns so the caller can call
    /// [`RunningTestnet::stop`].
    pub fn supervise(&mut self, stop: &AtomicBool, poll: Duration, mut on_exit: impl FnMut(ExitNotice)) {
        while !stop.load(Ordering::SeqCst) {
            let mut exited = Vec::new();
            self.children.retain_mut(|(index, child)| match child.try_wait() {
                Ok(Some(status)) => {
                    exited.push((*index, child.id(), status.to_string()));
                    false
                }
                _ => true,
            });
            for (index, pid, status) in exited {
                clear_pid(&self.testnet, index, pid);
                on_exit(ExitNotice { index, pid, status, log: self.testnet.dir.log(index) });
            }
            std::thread::sleep(poll);
        }
    }

    /// Stops every validator of the testnet (own children and any listed in
    /// `testnet.json`), SIGTERM then SIGKILL after `grace`, and clears the pids.
    pub fn stop(mut self, grace: Duration) -> Result<Vec<(u16, StopOutcome)>, TestnetError> {
        let outcomes = down_with(&self.testnet, grace, || {
            for (_, child) in &mut self.children {
                let _ = child.try_wait();
            }
        })?;
        stop_children(&mut self.children, Duration::ZERO);
        Ok(outcomes)
    }

    /// Leaves the validators running on their own.
    pub fn detach(self) -> Testnet {
        self.testnet
    }

    pub fn pids(&self) -> Vec<(u16, u32)> {
        self.children.iter().map(|(i, c)| (*i, c.id())).collect()
    }
}

fn exited_error(testnet: &Testnet, index: u16, status: String) -> TestnetError {
    let log = testnet.dir.log(index);
    TestnetError::ValidatorExited { index, status, log_tail: tail_of_last_run(&log, FAILURE_TAIL_LINES), log }
}

/// Stops and reaps this process's own children.
fn stop_children(children: &mut Vec<(u16, Child)>, grace: Duration) {
    let pids: Vec<u32> = children.iter().map(|(_, c)| c.id()).collect();
    process::stop_all(&pids, grace, || {
        for (_, child) in children.iter_mut() {
            let _ = child.try_wait();
        }
    });
    for (_, child) in children.iter_mut() {
        let _ = child.wait();
    }
    children.clear();
}

/// Sets validator `index`'s pid to `None` in `testnet.json` if it is still `pid`.
fn clear_pid(testnet: &Testnet, index: u16, pid: u32) {
    if let Ok(mut manifest) = Manifest::load_dir(&testnet.dir) {
        if let Some(entry) = manifest.validator_mut(index).filter(|e| e.pid == Some(pid)) {
            entry.pid = None;
            let _ = manifest.save_dir(&testnet.dir);
        }
    }
}

/// One row of `bastion testnet status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorStatus {
    pub index: u16,
    pub pid: Option<u32>,
    /// The pid is alive and is this validator's process.
    pub running: bool,
    pub api_url: String,
    pub quic_addr: SocketAddr,
    pub health: Health,
    pub committed_height: Option<u64>,
    /// The Byzantine mode it was started in, if any.
    pub byzantine: Option<ByzantineMode>,
}

/// Every validator's process and API state.
pub fn status(testnet: &Testnet) -> Vec<ValidatorStatus> {
    let manifest = Manifest::load_dir(&testnet.dir).unwrap_or_else(|_| testnet.manifest.clone());
    manifest
        .validators
        .iter()
        .map(|v| {
            let running =
                v.pid.is_some_and(|pid| process::is_validator_process(pid, &testnet.dir.validator(v.index)));
            let (health, committed_height) = match v.api_addr() {
                Some(addr) => {
                    (probe::health(addr, PROBE_TIMEOUT), probe::committed_height(addr, PROBE_TIMEOUT))
                }
                None => (Health::Unreachable(format!("bad API URL {}", v.api_url)), None),
            };
            ValidatorStatus {
                index: v.index,
                pid: v.pid,
                running,
                api_url: v.api_url.clone(),
                quic_addr: v.quic_addr,
                health,
                committed_height,
                byzantine: v.byzantine,
            }
        })
        .collect()
}

/// Stops every validator listed in `testnet.json` (only processes that are its
/// validators), SIGTERM then SIGKILL after `grace`, and clears the pids.
pub fn down(testnet: &Testnet, grace: Duration) -> Result<Vec<(u16, StopOutcome)>, TestnetError> {
    down_with(testnet, grace, || {})
}

fn down_with(
    testnet: &Testnet,
    grace: Duration,
    reap: impl FnMut(),
) -> Result<Vec<(u16, StopOutcome)>, TestnetError> {
    let mut manifest = Manifest::load_dir(&testnet.dir)?;
    let mut targets = Vec::new();
    let mut outcomes = Vec::new();
    for v in &mut manifest.validators {
        match v.pid.take() {
            Some(pid) if process::is_validator_process(pid, &testnet.dir.validator(v.index)) => {
                targets.push((v.index, pid))
            }
            _ => outcomes.push((v.index, StopOutcome::NotRunning)),
        }
    }
    let pids: Vec<u32> = targets.iter().map(|(_, pid)| *pid).collect();
    let stopped = process::stop_all(&pids, grace, reap);
    outcomes.extend(targets.iter().map(|(i, _)| *i).zip(stopped));
    outcomes.sort_by_key(|(i, _)| *i);
    manifest.save_dir(&testnet.dir)?;
    // A `--faults` testnet's relay goes with its validators.
    crate::relay::stop(&testnet.dir, grace);
    Ok(outcomes)
}

/// SIGKILLs validator `index` (fault injection). Returns the pid killed, if it was running.
pub fn kill(testnet: &Testnet, index: u16) -> Result<Option<u32>, TestnetError> {
    testnet.check_index(index)?;
    let mut manifest = Manifest::load_dir(&testnet.dir)?;
    let Some(entry) = manifest.validator_mut(index) else { return Ok(None) };
    let Some(pid) =
        entry.pid.filter(|pid| process::is_validator_process(*pid, &testnet.dir.validator(index)))
    else {
        entry.pid = None;
        manifest.save_dir(&testnet.dir)?;
        return Ok(None);
    };
    process::send_signal(pid, process::Signal::Kill)
        .map_err(TestnetError::io("cannot kill", format!("pid {pid}")))?;
    entry.pid = None;
    manifest.save_dir(&testnet.dir)?;
    Ok(Some(pid))
}

/// What `restart` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartOutcome {
    pub stopped: Option<(u32, StopOutcome)>,
    pub pid: u32,
    /// `Ready`, or the last answer when the timeout passed (the validator is left running:
    /// it may still be catching up).
    pub health: Health,
}

/// Stops validator `index` if it runs, starts it again (detached) and waits for it to be
/// ready. A validator that exits during start-up is an error with its log lines.
pub fn restart(
    testnet: &Testnet,
    index: u16,
    options: &LaunchOptions,
) -> Result<RestartOutcome, TestnetError> {
    testnet.check_index(index)?;
    let vdir = testnet.dir.validator(index);
    let mut manifest = Manifest::load_dir(&testnet.dir)?;
    let old = manifest
        .validator(index)
        .and_then(|v| v.pid)
        .filter(|pid| process::is_validator_process(*pid, &vdir));
    let stopped = old.map(|pid| (pid, process::stop_all(&[pid], options.stop_grace, || {})[0]));
    let mut child = start_validator(testnet, index, &options.node_binary)?;
    let pid = child.id();
    if let Some(entry) = manifest.validator_mut(index) {
        entry.pid = Some(pid);
    }
    manifest.save_dir(&testnet.dir)?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            clear_pid(testnet, index, pid);
            return Err(exited_error(testnet, index, status.to_string()));
        }
        let health = probe::health(api_addr(testnet, index), PROBE_TIMEOUT);
        if health.is_ready() || started.elapsed() >= options.ready_timeout {
            return Ok(RestartOutcome { stopped, pid, health });
        }
        std::thread::sleep(options.poll_interval);
    }
}

/// A flag set by SIGINT (Ctrl-C) and SIGTERM, for [`launch`] and
/// [`RunningTestnet::supervise`].
pub fn interrupt_flag() -> std::io::Result<std::sync::Arc<AtomicBool>> {
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, flag.clone())?;
    Ok(flag)
}
