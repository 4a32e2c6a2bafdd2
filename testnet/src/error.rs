//! Why a testnet command failed. Every message says what to do next where there is
//! something to do.

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

use crate::byzantine::ByzantineMode;
use crate::config::ConfigError;

#[derive(Debug, Error)]
pub enum TestnetError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("no testnet in {dir} (no testnet.json); start one with `bastion testnet up --dir {dir}`")]
    NoTestnet { dir: PathBuf },
    #[error("validators must be between 1 and {max}, not {got}")]
    BadValidatorCount { got: usize, max: usize },
    #[error(
        "the testnet in {dir} has {existing} validators, not {requested}; add --reset to make a new one"
    )]
    CountMismatch { dir: PathBuf, existing: usize, requested: usize },
    #[error("the testnet in {dir} was made {existing_mode}; add --reset to make a new one {requested_mode}")]
    ModeMismatch { dir: PathBuf, existing_mode: &'static str, requested_mode: &'static str },
    #[error("the testnet in {dir} is already running (validator pids {pids:?}); stop it with `bastion testnet down --dir {dir}`")]
    AlreadyRunning { dir: PathBuf, pids: Vec<u32> },
    #[error("no validator {index}: the testnet has validators 0..{count}")]
    UnknownValidator { index: u16, count: usize },
    #[error("cannot find the `bastion-node` binary: looked in {searched}. Build it with `cargo build --release -p bastion-node` or set $BASTION_NODE_BIN")]
    BinaryMissing { searched: String },
    #[error("validator {index}: {proto} port {addr} is taken by another process{hint}")]
    PortTaken { index: u16, proto: &'static str, addr: SocketAddr, hint: &'static str },
    #[error("no free {proto} port on 127.0.0.1: {source}")]
    NoFreePort { proto: &'static str, source: std::io::Error },
    #[error("cannot start validator {index} ({binary}): {source}")]
    Spawn { index: u16, binary: PathBuf, source: std::io::Error },
    #[error("validator {index} exited during start-up ({status}).{}", tail_text(log, log_tail))]
    ValidatorExited { index: u16, status: String, log: PathBuf, log_tail: Vec<String> },
    #[error(
        "validator {index} was not ready after {waited_secs}s (last answer: {last}).{}",
        tail_text(log, log_tail)
    )]
    NotReady { index: u16, waited_secs: u64, last: String, log: PathBuf, log_tail: Vec<String> },
    #[error("interrupted while starting; stopped the validators")]
    Interrupted,
    #[error("validator {index} is given two Byzantine modes ({first} and {second}); give each validator at most one")]
    ByzantineTwice { index: u16, first: ByzantineMode, second: ByzantineMode },
}

fn tail_text(log: &std::path::Path, tail: &[String]) -> String {
    if tail.is_empty() {
        format!(" Its log {} is empty.", log.display())
    } else {
        format!(" Last {} lines of {}:\n{}", tail.len(), log.display(), tail.join("\n"))
    }
}

impl TestnetError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| TestnetError::Io { action, path, source }
    }
}
