//! The Byzantine modes a validator can be started in, for fault testing, by name.
//!
//! `bastion-node --byzantine MODE` runs one of these (the behaviour lives in the node's
//! `byzantine` module); `bastion testnet up --byzantine I=MODE` starts validator `I` that way
//! and records the mode in `testnet.json` so `restart` and `status` keep it. The names are
//! defined once, here, because both the node and the CLI parse them and the CLI must not
//! link the node.
//!
//! Safety is only promised while at most `f = (n - 1) / 3` validators misbehave.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::TestnetError;
use crate::generate::Testnet;

/// One way a validator deliberately lies about consensus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ByzantineMode {
    /// As leader, signs two different proposals for its round: one half of the other
    /// validators receives the first, the other half the second.
    Equivocate,
    /// Signs a second vote, for a different block of the same round, every time it votes.
    DoubleVote,
    /// Corrupts the signature of every proposal, vote and timeout it sends.
    BadSignatures,
    /// Sends no consensus message at all (still runs, serves its API).
    Silent,
    /// Replays proposals, votes and timeouts it sent at least ten rounds earlier.
    Stale,
    /// Adds a transaction with a forged signature to every batch it seals (and seals one
    /// every batch delay even when it has nothing else to batch).
    BadBatches,
}

impl ByzantineMode {
    pub const ALL: [ByzantineMode; 6] = [
        ByzantineMode::Equivocate,
        ByzantineMode::DoubleVote,
        ByzantineMode::BadSignatures,
        ByzantineMode::Silent,
        ByzantineMode::Stale,
        ByzantineMode::BadBatches,
    ];

    /// The name used on command lines and in `testnet.json`.
    pub fn name(self) -> &'static str {
        match self {
            ByzantineMode::Equivocate => "equivocate",
            ByzantineMode::DoubleVote => "double-vote",
            ByzantineMode::BadSignatures => "bad-signatures",
            ByzantineMode::Silent => "silent",
            ByzantineMode::Stale => "stale",
            ByzantineMode::BadBatches => "bad-batches",
        }
    }

    /// One line saying what a validator in this mode does.
    pub fn describe(self) -> &'static str {
        match self {
            ByzantineMode::Equivocate => "sends two conflicting, validly signed proposals per round it leads",
            ByzantineMode::DoubleVote => "signs a second vote for a different block in every round it votes",
            ByzantineMode::BadSignatures => "corrupts the signature of every proposal, vote and timeout",
            ByzantineMode::Silent => "sends no consensus messages",
            ByzantineMode::Stale => "replays its own messages from at least ten rounds ago",
            ByzantineMode::BadBatches => "puts a transaction with a forged signature in every batch it seals",
        }
    }

    /// `equivocate, double-vote, ...`, for error messages and help.
    pub fn names() -> String {
        Self::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for ByzantineMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ByzantineParseError {
    #[error("unknown Byzantine mode {0:?}; the modes are {modes}", modes = ByzantineMode::names())]
    UnknownMode(String),
    #[error("{0:?} is not <validator index>=<mode> (e.g. 0=equivocate)")]
    NotAnAssignment(String),
}

impl FromStr for ByzantineMode {
    type Err = ByzantineParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| ByzantineParseError::UnknownMode(s.to_string()))
    }
}

/// `I=MODE`: validator `I` runs `MODE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByzantineAssignment {
    pub index: u16,
    pub mode: ByzantineMode,
}

impl FromStr for ByzantineAssignment {
    type Err = ByzantineParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let not_assignment = || ByzantineParseError::NotAnAssignment(s.to_string());
        let (index, mode) = s.split_once('=').ok_or_else(not_assignment)?;
        let index = index.trim().parse().map_err(|_| not_assignment())?;
        Ok(ByzantineAssignment { index, mode: mode.parse()? })
    }
}

/// The most Byzantine validators a committee of `n` tolerates: `f = (n - 1) / 3`.
pub fn max_faulty(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// Sets each validator's mode in `testnet`'s manifest (in memory; [`crate::launch`] saves
/// it): the assigned ones run their mode, every other validator runs honestly. Refuses an
/// index outside the committee and a validator given two modes.
pub fn assign(testnet: &mut Testnet, assignments: &[ByzantineAssignment]) -> Result<(), TestnetError> {
    let mut modes: BTreeMap<u16, ByzantineMode> = BTreeMap::new();
    for a in assignments {
        testnet.check_index(a.index)?;
        if let Some(first) = modes.insert(a.index, a.mode).filter(|first| *first != a.mode) {
            return Err(TestnetError::ByzantineTwice { index: a.index, first, second: a.mode });
        }
    }
    for entry in &mut testnet.manifest.validators {
        entry.byzantine = modes.get(&entry.index).copied();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_parses_from_its_name_and_serializes_as_it() {
        for mode in ByzantineMode::ALL {
            assert_eq!(mode.name().parse::<ByzantineMode>(), Ok(mode));
            assert_eq!(mode.to_string(), mode.name());
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.name());
        }
    }

    #[test]
    fn assignments_parse_and_bad_ones_say_why() {
        assert_eq!(
            "3=double-vote".parse::<ByzantineAssignment>(),
            Ok(ByzantineAssignment { index: 3, mode: ByzantineMode::DoubleVote })
        );
        let unknown = "0=lie".parse::<ByzantineAssignment>().unwrap_err();
        assert!(unknown.to_string().contains("equivocate, double-vote, bad-signatures, silent, stale"));
        for bad in ["equivocate", "x=silent", "-1=silent", "=silent", "70000=silent"] {
            assert_eq!(
                bad.parse::<ByzantineAssignment>(),
                Err(ByzantineParseError::NotAnAssignment(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn assign_marks_only_the_named_validators_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::SetupOptions { validators: Some(4), ..Default::default() };
        let (mut testnet, _) = crate::setup(dir.path(), &options).unwrap();
        let parse = |s: &str| s.parse::<ByzantineAssignment>().unwrap();
        assign(&mut testnet, &[parse("2=silent"), parse("0=stale"), parse("2=silent")]).unwrap();
        let modes: Vec<_> = testnet.manifest.validators.iter().map(|v| v.byzantine).collect();
        assert_eq!(modes, [Some(ByzantineMode::Stale), None, Some(ByzantineMode::Silent), None]);

        let twice = assign(&mut testnet, &[parse("1=silent"), parse("1=stale")]).unwrap_err();
        assert!(matches!(twice, TestnetError::ByzantineTwice { index: 1, .. }), "{twice}");
        let outside = assign(&mut testnet, &[parse("4=silent")]).unwrap_err();
        assert!(matches!(outside, TestnetError::UnknownValidator { index: 4, count: 4 }), "{outside}");
        // A later `up` without assignments makes everyone honest again.
        assign(&mut testnet, &[]).unwrap();
        assert!(testnet.manifest.validators.iter().all(|v| v.byzantine.is_none()));
    }

    #[test]
    fn tolerated_faults_follow_n_equals_3f_plus_1() {
        assert_eq!([1, 3, 4, 6, 7, 10].map(max_faulty), [0, 0, 1, 1, 2, 3]);
    }
}
