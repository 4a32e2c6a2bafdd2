//! Network faults of a local testnet: which validators can reach which (a partition), and
//! the delay and loss added to what each validator sends. [`relay`](crate::relay) enforces
//! them; `bastion testnet partition | heal | latency | loss` change them.
//!
//! Semantics (the same as `tc netem` on each validator's own link, which this machine's
//! kernel lacks):
//! * **Partition**: `groups` lists disjoint sets of validators; validators not listed form
//!   one more group together. A datagram crosses between two groups never, in either
//!   direction. No groups: everyone reaches everyone.
//! * **Delay**: `delay_ms[i]` is added to every datagram validator `i` sends, so the round
//!   trip between `i` and `j` grows by `delay_ms[i] + delay_ms[j]` (25 ms everywhere: 50 ms
//!   round trips).
//! * **Loss**: each datagram validator `i` sends is dropped with probability
//!   `loss_percent[i] / 100`, independently.
//!
//! On disk: `DIR/network.json` (the rules plus a generation number) is written by the
//! commands; the relay applies a new generation and writes it to `DIR/network.applied`,
//! which the commands wait for, so a command returns only once its rules are in force.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::generate::Testnet;

pub const RULES_FILE: &str = "network.json";
pub const APPLIED_FILE: &str = "network.applied";
/// The largest delay a rule may add (a minute: beyond that, use `kill`).
pub const MAX_DELAY_MS: u32 = 60_000;
/// How long a command waits for the relay to apply its rules.
const APPLY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum FaultError {
    #[error(transparent)]
    Testnet(#[from] crate::TestnetError),
    #[error("{0}")]
    BadRule(String),
    #[error("the testnet in {dir} was made without --faults, so its traffic cannot be shaped; make one with `bastion testnet up --faults --reset --dir {dir}`")]
    NoRelay { dir: PathBuf },
    #[error("the network relay of the testnet in {dir} is not running; start the testnet with `bastion testnet up --dir {dir}`")]
    RelayNotRunning { dir: PathBuf },
    #[error("the network relay did not apply rules generation {generation} within {waited:?}; see {log}")]
    NotApplied { generation: u64, waited: Duration, log: PathBuf },
    #[error("the network relay exited during start-up ({status}); last lines of {log}:\n{tail}")]
    RelayExited { status: String, log: PathBuf, tail: String },
    #[error("cannot {action} {path}: {message}")]
    File { action: &'static str, path: PathBuf, message: String },
}

/// What the relay does to the testnet's traffic (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkRules {
    #[serde(default)]
    pub groups: Vec<Vec<u16>>,
    /// Per validator (missing entries: 0).
    #[serde(default)]
    pub delay_ms: Vec<u32>,
    /// Per validator, 0 to 100 (missing entries: 0).
    #[serde(default)]
    pub loss_percent: Vec<f64>,
}

impl NetworkRules {
    /// Whether a datagram from validator `from` reaches validator `to`.
    pub fn reachable(&self, from: u16, to: u16) -> bool {
        self.group_of(from) == self.group_of(to)
    }

    /// Index into `groups`, or `groups.len()` for the implicit group of everyone unlisted.
    fn group_of(&self, index: u16) -> usize {
        self.groups.iter().position(|g| g.contains(&index)).unwrap_or(self.groups.len())
    }

    pub fn delay(&self, from: u16) -> Duration {
        Duration::from_millis(self.delay_ms.get(usize::from(from)).copied().unwrap_or(0).into())
    }

    /// The probability (0 to 1) that a datagram from `from` is dropped.
    pub fn loss(&self, from: u16) -> f64 {
        self.loss_percent.get(usize::from(from)).copied().unwrap_or(0.0) / 100.0
    }

    /// Checks the rules against a testnet of `count` validators.
    pub fn validate(&self, count: usize) -> Result<(), FaultError> {
        let mut seen = vec![false; count];
        for index in self.groups.iter().flatten() {
            let slot = seen.get_mut(usize::from(*index)).ok_or_else(|| {
                FaultError::BadRule(format!("no validator {index}: the testnet has validators 0..{count}"))
            })?;
            if *slot {
                return Err(FaultError::BadRule(format!("validator {index} is in two groups")));
            }
            *slot = true;
        }
        if self.delay_ms.len() > count || self.loss_percent.len() > count {
            return Err(FaultError::BadRule(format!(
                "no validator {}: the testnet has validators 0..{count}",
                self.delay_ms.len().max(self.loss_percent.len()) - 1
            )));
        }
        if self.groups.iter().any(Vec::is_empty) {
            return Err(FaultError::BadRule("a partition group is empty".into()));
        }
        if let Some(d) = self.delay_ms.iter().find(|d| **d > MAX_DELAY_MS) {
            return Err(FaultError::BadRule(format!(
                "a delay of {d} ms is above the {MAX_DELAY_MS} ms limit"
            )));
        }
        if let Some(l) = self.loss_percent.iter().find(|l| !(0.0..=100.0).contains(*l)) {
            return Err(FaultError::BadRule(format!("a loss of {l}% is not between 0 and 100")));
        }
        Ok(())
    }

    /// Lists the implicit group (validators of `0..count` in no group) explicitly, so the
    /// rules read as they act.
    pub fn normalize(&mut self, count: usize) {
        if self.groups.is_empty() {
            return;
        }
        let rest: Vec<u16> =
            (0..count as u16).filter(|i| !self.groups.iter().flatten().any(|g| g == i)).collect();
        if !rest.is_empty() {
            self.groups.push(rest);
        }
    }

    /// Sets validator `index`'s delay (growing the list as needed).
    pub fn set_delay(&mut self, index: u16, ms: u32) {
        set_at(&mut self.delay_ms, index, ms);
    }

    pub fn set_loss(&mut self, index: u16, percent: f64) {
        set_at(&mut self.loss_percent, index, percent);
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.groups.is_empty() {
            let groups: Vec<String> = self
                .groups
                .iter()
                .map(|g| g.iter().map(u16::to_string).collect::<Vec<_>>().join(","))
                .collect();
            parts.push(format!("partition {}", groups.join(" | ")));
        }
        if self.delay_ms.iter().any(|d| *d > 0) {
            parts.push(format!("delay ms per validator {:?}", self.delay_ms));
        }
        if self.loss_percent.iter().any(|l| *l > 0.0) {
            parts.push(format!("loss % per validator {:?}", self.loss_percent));
        }
        if parts.is_empty() {
            "healed (no partition, delay or loss)".into()
        } else {
            parts.join("; ")
        }
    }
}

fn set_at<T: Copy + Default>(list: &mut Vec<T>, index: u16, value: T) {
    let i = usize::from(index);
    if list.len() <= i {
        list.resize(i + 1, T::default());
    }
    list[i] = value;
}

/// `DIR/network.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RulesFile {
    pub generation: u64,
    #[serde(flatten)]
    pub rules: NetworkRules,
}

pub fn rules_path(dir: &Path) -> PathBuf {
    dir.join(RULES_FILE)
}

pub fn applied_path(dir: &Path) -> PathBuf {
    dir.join(APPLIED_FILE)
}

/// The rules on disk (defaults if there are none yet).
pub fn load(dir: &Path) -> Result<RulesFile, FaultError> {
    let path = rules_path(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| FaultError::File {
            action: "parse",
            path,
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RulesFile::default()),
        Err(e) => Err(FaultError::File { action: "read", path, message: e.to_string() }),
    }
}

/// Writes atomically, so the relay never reads half a file.
pub fn save(dir: &Path, file: &RulesFile) -> Result<(), FaultError> {
    let path = rules_path(dir);
    let text = serde_json::to_string_pretty(file).map_err(|e| FaultError::File {
        action: "encode",
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &(text + "\n"))
}

pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), FaultError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| FaultError::File {
        action: "write",
        path: path.into(),
        message: e.to_string(),
    })
}

/// The generation the relay last applied, if any.
pub fn applied(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(applied_path(dir)).ok()?.trim().parse().ok()
}

/// Clears every fault (a new generation), without waiting for a relay: `up` calls this
/// before starting the relay.
pub fn reset(dir: &Path) -> Result<u64, FaultError> {
    let generation = load(dir).map(|f| f.generation).unwrap_or(0) + 1;
    save(dir, &RulesFile { generation, rules: NetworkRules::default() })?;
    Ok(generation)
}

/// Changes the rules of a running testnet and waits until its relay applies them.
pub fn apply(testnet: &Testnet, change: impl FnOnce(&mut NetworkRules)) -> Result<NetworkRules, FaultError> {
    let dir = testnet.dir.root();
    if !crate::relay::uses_relay(testnet) {
        return Err(FaultError::NoRelay { dir: dir.into() });
    }
    if crate::relay::running_pid(&testnet.dir).is_none() {
        return Err(FaultError::RelayNotRunning { dir: dir.into() });
    }
    let mut file = load(dir)?;
    change(&mut file.rules);
    file.rules.validate(testnet.count())?;
    file.rules.normalize(testnet.count());
    file.generation += 1;
    save(dir, &file)?;
    wait_applied(testnet, file.generation, APPLY_TIMEOUT)?;
    Ok(file.rules)
}

fn wait_applied(testnet: &Testnet, generation: u64, limit: Duration) -> Result<(), FaultError> {
    let dir = testnet.dir.root();
    let started = Instant::now();
    while applied(dir).is_none_or(|g| g < generation) {
        if started.elapsed() >= limit {
            return Err(FaultError::NotApplied {
                generation,
                waited: limit,
                log: crate::relay::log_path(&testnet.dir),
            });
        }
        if crate::relay::running_pid(&testnet.dir).is_none() {
            return Err(FaultError::RelayNotRunning { dir: dir.into() });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlisted_validators_form_one_group() {
        let rules = NetworkRules { groups: vec![vec![3]], ..Default::default() };
        assert!(rules.reachable(0, 1) && rules.reachable(2, 0));
        assert!(!rules.reachable(0, 3) && !rules.reachable(3, 2));
        assert!(rules.reachable(3, 3));
        let two = NetworkRules { groups: vec![vec![0, 1], vec![2, 3]], ..Default::default() };
        assert!(two.reachable(0, 1) && two.reachable(3, 2) && !two.reachable(1, 2));
        assert!(NetworkRules::default().reachable(0, 5));
        let mut normal = rules.clone();
        normal.normalize(4);
        assert_eq!(normal.groups, vec![vec![3], vec![0, 1, 2]]);
        assert!((0..4).all(|a| (0..4).all(|b| normal.reachable(a, b) == rules.reachable(a, b))));
    }

    #[test]
    fn bad_rules_are_refused() {
        let bad = |rules: NetworkRules| rules.validate(4).is_err();
        assert!(bad(NetworkRules { groups: vec![vec![0], vec![0, 1]], ..Default::default() }));
        assert!(bad(NetworkRules { groups: vec![vec![4]], ..Default::default() }));
        assert!(bad(NetworkRules { groups: vec![vec![]], ..Default::default() }));
        assert!(bad(NetworkRules { delay_ms: vec![MAX_DELAY_MS + 1], ..Default::default() }));
        assert!(bad(NetworkRules { loss_percent: vec![0.0, 101.0], ..Default::default() }));
        assert!(bad(NetworkRules { loss_percent: vec![f64::NAN], ..Default::default() }));
        let good = NetworkRules {
            groups: vec![vec![0, 1, 2], vec![3]],
            delay_ms: vec![25; 4],
            loss_percent: vec![5.0],
        };
        assert!(good.validate(4).is_ok());
    }

    #[test]
    fn delay_and_loss_default_to_zero() {
        let mut rules = NetworkRules::default();
        rules.set_delay(2, 25);
        rules.set_loss(1, 50.0);
        assert_eq!(rules.delay_ms, vec![0, 0, 25]);
        assert_eq!(rules.delay(2), Duration::from_millis(25));
        assert_eq!(rules.delay(7), Duration::ZERO);
        assert_eq!(rules.loss(1), 0.5);
        assert_eq!(rules.loss(0), 0.0);
    }

    #[test]
    fn rules_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), RulesFile::default());
        assert_eq!(reset(dir.path()).unwrap(), 1);
        let file = RulesFile {
            generation: 7,
            rules: NetworkRules { groups: vec![vec![3]], delay_ms: vec![10], loss_percent: vec![] },
        };
        save(dir.path(), &file).unwrap();
        assert_eq!(load(dir.path()).unwrap(), file);
        assert_eq!(reset(dir.path()).unwrap(), 8);
    }
}
