//! Typed errors of the consensus core, and the `ensure!` macro.
//!
//! Errors describe why a message was refused; the core logs nothing and panics on nothing:
//! a refused message is simply not acted upon, and the reason is returned to the embedder.

use thiserror::Error;

use crate::{Round, ValidatorIndex};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConsensusError {
    #[error("message from validator {from} claims to be authored by {author}")]
    WrongAuthor { from: ValidatorIndex, author: ValidatorIndex },
    #[error("validator {0} is not in the committee")]
    UnknownValidator(ValidatorIndex),
    #[error("validator {author} is not the leader of round {round}")]
    NotLeader { author: ValidatorIndex, round: Round },
    #[error("block digest does not match the block's contents")]
    BadDigest,
    #[error("invalid signature by validator {0}")]
    InvalidSignature(ValidatorIndex),
    #[error("certificate has {got} valid signers, a quorum is {needed}")]
    NoQuorum { got: usize, needed: usize },
    #[error("malformed certificate: {0}")]
    MalformedCertificate(&'static str),
    #[error("block at height {got} does not extend its parent at height {parent}")]
    BadHeight { got: u64, parent: u64 },
    #[error("malformed block: {0}")]
    MalformedBlock(&'static str),
    #[error("round {round} is out of the accepted window around {current}")]
    RoundOutOfWindow { round: Round, current: Round },
    #[error("safety rule refused: {0}")]
    Unsafe(&'static str),
}

/// Returns `Err($err)` from the enclosing function unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $err:expr) => {
        if !$cond {
            return Err($err);
        }
    };
}
