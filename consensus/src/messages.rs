//! The messages validators exchange. Every message that carries certificates doubles as sync
//! information: a receiver processes the QCs and TCs inside before anything else.

use bastion_crypto::Digest;
use serde::{Deserialize, Serialize};

use crate::{Block, QuorumCert, Timeout, TimeoutCert, Vote};

/// Most blocks returned by one [`ConsensusMessage::BlockRequest`].
pub const MAX_SYNC_BLOCKS: usize = 64;

/// Most payload digests in one block response, so responses stay well under a frame limit.
pub const MAX_SYNC_PAYLOAD: usize = 16_384;

/// A validator's highest certificates, sent to a peer that is behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncInfo {
    pub highest_qc: QuorumCert,
    pub highest_tc: Option<TimeoutCert>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusMessage {
    /// The leader's block for its round (broadcast).
    Proposal(Block),
    /// A vote for a block of round `r`, sent to the leader of `r + 1`.
    Vote(Vote),
    /// A timeout for a round (broadcast), with the TC through which the round was entered.
    Timeout {
        timeout: Timeout,
        last_tc: Option<TimeoutCert>,
    },
    /// Asks for the block with `digest` and up to `count - 1` of its ancestors.
    BlockRequest {
        digest: Digest,
        count: u16,
    },
    /// Blocks answering a request: the requested one first, then its ancestors, newest first.
    BlockResponse {
        blocks: Vec<Block>,
    },
    SyncInfo(SyncInfo),
}

impl ConsensusMessage {
    pub fn kind(&self) -> &'static str {
        match self {
            ConsensusMessage::Proposal(_) => "proposal",
            ConsensusMessage::Vote(_) => "vote",
            ConsensusMessage::Timeout { .. } => "timeout",
            ConsensusMessage::BlockRequest { .. } => "block_request",
            ConsensusMessage::BlockResponse { .. } => "block_response",
            ConsensusMessage::SyncInfo(_) => "sync_info",
        }
    }
}
