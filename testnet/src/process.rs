//! Validator processes: finding the `bastion-node` binary, starting it, and signalling it
//! by pid.
//!
//! Every validator runs in its own process group, so a Ctrl-C in the terminal reaches only
//! the supervisor, which then stops the validators in order (SIGTERM, then SIGKILL after a
//! grace period), and `--detach`ed validators outlive the terminal.
//!
//! Pids in `testnet.json` may be stale (the validator died and the pid was reused), so
//! before signalling one the tooling checks that it is a live process whose command line
//! names that validator's directory ([`is_validator_process`]).

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::TestnetError;

/// The validator binary's name.
pub const NODE_BINARY: &str = "bastion-node";
/// Environment variable naming the validator binary explicitly.
pub const NODE_BINARY_ENV: &str = "BASTION_NODE_BIN";

/// Finds `bastion-node`: `$BASTION_NODE_BIN` if set (and only there), else next to the
/// running executable (where `cargo build` puts both binaries), else on `PATH`.
pub fn locate_node_binary() -> Result<PathBuf, TestnetError> {
    let exe_dir = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf));
    find_node_binary(std::env::var_os(NODE_BINARY_ENV), exe_dir, std::env::var_os("PATH"))
}

/// [`locate_node_binary`] with its inputs explicit.
pub fn find_node_binary(
    explicit: Option<std::ffi::OsString>,
    exe_dir: Option<PathBuf>,
    path_var: Option<std::ffi::OsString>,
) -> Result<PathBuf, TestnetError> {
    if let Some(explicit) = explicit.filter(|e| !e.is_empty()) {
        // An explicit choice that is wrong is an error, not a reason to run another binary.
        let path = PathBuf::from(explicit);
        if is_executable(&path) {
            return Ok(path);
        }
        return Err(TestnetError::BinaryMissing {
            searched: format!("${NODE_BINARY_ENV}, which names {} (not an executable file)", path.display()),
        });
    }
    let mut searched = Vec::new();
    if let Some(dir) = exe_dir {
        let path = dir.join(NODE_BINARY);
        if is_executable(&path) {
            return Ok(path);
        }
        searched.push(dir.display().to_string());
    }
    for dir in std::env::split_paths(&path_var.unwrap_or_default()) {
        let path = dir.join(NODE_BINARY);
        if is_executable(&path) {
            return Ok(path);
        }
    }
    searched.push("$PATH".into());
    Err(TestnetError::BinaryMissing { searched: searched.join(", ") })
}

/// Whether `path` is a file someone may execute.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Starts `binary --config <validator_dir>` in its own process group, with stdout and
/// stderr appended to `log`.
pub fn spawn_node(
    binary: &Path,
    validator_dir: &Path,
    log: &Path,
    index: u16,
) -> Result<Child, TestnetError> {
    spawn_node_with(binary, validator_dir, log, index, &[])
}

/// [`spawn_node`] with `extra_args` after `--config <validator_dir>` (e.g. `--byzantine MODE`).
pub fn spawn_node_with(
    binary: &Path,
    validator_dir: &Path,
    log: &Path,
    index: u16,
    extra_args: &[String],
) -> Result<Child, TestnetError> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(TestnetError::io("cannot open", log))?;
    let mut command = Command::new(binary);
    command.arg("--config").arg(validator_dir).args(extra_args).stdin(Stdio::null()).process_group(0);
    // A binary written a moment ago (a build, a copy, a test's script) can still be open for
    // writing in a child some other thread forked before the writer closed it; until that child
    // execs, the kernel refuses to run the file with "Text file busy". That clears by itself.
    let mut backoff = Duration::from_millis(5);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let err = out.try_clone().map_err(TestnetError::io("cannot open", log))?;
        let stdout = out.try_clone().map_err(TestnetError::io("cannot open", log))?;
        match command.stdout(stdout).stderr(err).spawn() {
            Err(source)
                if source.kind() == std::io::ErrorKind::ExecutableFileBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(200));
            }
            result => {
                return result.map_err(|source| TestnetError::Spawn {
                    index,
                    binary: binary.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Whether `pid` is a live process (zombies count as dead).
pub fn is_alive(pid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else { return false };
    if raw <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let exists = unsafe { libc::kill(raw, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    // /proc/<pid>/stat is "pid (comm) S ...": the state follows the last ')'.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Whether `pid` is alive and runs with `validator_dir` on its command line. Where
/// `/proc` is unavailable, being alive is taken as enough.
pub fn is_validator_process(pid: u32, validator_dir: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let wanted = validator_dir.as_os_str().as_encoded_bytes();
            cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
        }
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

/// Sends `signal` to `pid`.
pub fn send_signal(pid: u32, signal: Signal) -> std::io::Result<()> {
    let raw =
        libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill has no memory-safety preconditions; the pid was checked by the caller.
    if unsafe { libc::kill(raw, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// How a validator was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Exited within the grace period after SIGTERM.
    Terminated,
    /// Still running after the grace period: SIGKILLed.
    Killed,
    /// Was not running.
    NotRunning,
}

/// Stops every pid: SIGTERM to all, then SIGKILL to those still alive after `grace`.
/// `reap` is called while waiting so the caller can collect its own exited children
/// (which would otherwise linger as zombies).
pub fn stop_all(pids: &[u32], grace: Duration, mut reap: impl FnMut()) -> Vec<StopOutcome> {
    let mut outcomes: Vec<StopOutcome> = pids
        .iter()
        .map(|pid| match send_signal(*pid, Signal::Term) {
            Ok(()) => StopOutcome::Terminated,
            Err(_) => StopOutcome::NotRunning,
        })
        .collect();
    let deadline = Instant::now() + grace;
    loop {
        reap();
        let alive = pids.iter().any(|pid| is_alive(*pid));
        if !alive || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (pid, outcome) in pids.iter().zip(outcomes.iter_mut()) {
        if *outcome == StopOutcome::Terminated && is_alive(*pid) && send_signal(*pid, Signal::Kill).is_ok() {
            *outcome = StopOutcome::Killed;
        }
    }
    reap();
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_terminates_then_kills() {
        // One process that exits on SIGTERM, one that ignores it.
        let mut polite = Command::new("sleep").arg("30").spawn().unwrap();
        let mut stubborn = Command::new("sh").args(["-c", "trap '' TERM; exec sleep 30"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let pids = [polite.id(), stubborn.id()];
        let started = Instant::now();
        let outcomes = stop_all(&pids, Duration::from_millis(500), || {
            let _ = polite.try_wait();
            let _ = stubborn.try_wait();
        });
        assert_eq!(outcomes, vec![StopOutcome::Terminated, StopOutcome::Killed]);
        assert!(started.elapsed() < Duration::from_secs(5));
        polite.wait().unwrap();
        stubborn.wait().unwrap();
        assert!(!is_alive(pids[0]) && !is_alive(pids[1]));
    }

    #[test]
    fn validator_process_is_recognised_by_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake");
        std::fs::write(&script, "#!/bin/sh\nsleep 30\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let vdir = dir.path().join("validator-0");
        let mut child = spawn_node(&script, &vdir, &dir.path().join("log"), 0).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(is_validator_process(child.id(), &vdir));
        assert!(!is_validator_process(child.id(), &dir.path().join("validator-1")));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_alive(child.id()));
    }
}
