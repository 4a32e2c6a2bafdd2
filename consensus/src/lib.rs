//! The pure Jolteon (two-chain HotStuff) consensus core of Bastion.
//!
//! [`Core::handle`] takes one [`Event`] (a message from a validator, a timer that fired, a
//! payload that became available) and returns the [`Action`]s the embedder must perform, in
//! order. The core does no I/O, reads no clock and draws no randomness (ed25519 signing is
//! deterministic; only batch *verification* uses random coefficients, which cannot change its
//! verdict), so a run is a function of its inputs and replays exactly.
//!
//! Safety (no two conflicting blocks commit) holds with at most `f` Byzantine validators of
//! `n >= 3f + 1` as long as the embedder executes [`Action::PersistSafety`] durably before any
//! action that follows it. Liveness holds after GST with a quorum of honest validators that can
//! talk to each other.

#[macro_use]
mod error;

mod aggregator;
mod block;
mod block_tree;
mod certificate;
mod committee;
mod core;
mod messages;
mod pacemaker;
mod safety_rules;
mod timeout;
mod vote;

pub use crate::core::{Action, Config, Core, Event, Recovery};
pub use block::{Block, BlockInfo};
pub use certificate::{CertificateCache, QuorumCert, SignerBitmap, TimeoutCert};
pub use committee::{Committee, Height, Round, ValidatorIndex};
pub use error::ConsensusError;
pub use messages::{ConsensusMessage, SyncInfo, MAX_SYNC_BLOCKS, MAX_SYNC_PAYLOAD};
pub use pacemaker::Pacemaker;
pub use safety_rules::{BrokenRule, SafetyData, SafetyRules};
pub use timeout::Timeout;
pub use vote::{Vote, VoteData};

/// Signing domains of consensus messages.
pub mod domains {
    use bastion_crypto::Domain;
    pub const PROPOSAL: Domain = Domain("bastion/proposal/v1");
    pub const VOTE: Domain = Domain("bastion/vote/v1");
    pub const TIMEOUT: Domain = Domain("bastion/timeout/v1");
}
