//! The messages validators exchange over the transport.
//!
//! Consensus messages travel as they are; payload batches travel beside them (proposals only
//! name them by digest). A state vote is a validator's signature over its state root after
//! executing a height; `2f+1` matching votes certify that root for clients.

use bastion_consensus::ConsensusMessage;
use bastion_crypto::{Digest, Signature};
use serde::{Deserialize, Serialize};

use crate::batch::Batch;

/// Most digests in one batch request.
pub const MAX_BATCH_REQUEST: usize = 256;

// Messages are built once and moved to the transport; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum NetMessage {
    Consensus(ConsensusMessage),
    /// A batch of transactions its author seals and broadcasts (or sends on request).
    Batch(Batch),
    /// Asks a peer for the batches with these digests.
    BatchRequest(Vec<Digest>),
    /// `signer`'s signature over its state root after executing `height`.
    StateVote {
        height: u64,
        state_root: Digest,
        signer: u16,
        signature: Signature,
    },
}
