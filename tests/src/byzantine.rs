//! Byzantine behaviours, as small transformations of an honest core's outgoing messages.
//!
//! A Byzantine validator runs an ordinary [`bastion_consensus::Core`] and these functions
//! rewrite what it sends. Each behaviour is one way a faulty validator can lie; the twins
//! technique (two honest instances of one key) is set up by the scenario instead.

use bastion_consensus::{Block, Committee, ConsensusMessage, ValidatorIndex, Vote, VoteData};
use bastion_crypto::{DigestBuilder, KeyPair};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// As leader, sends two different proposals for its round to everyone (in opposite
    /// orders to the two halves of the committee).
    Equivocator,
    /// Signs a second, conflicting vote every time it votes.
    DoubleVoter,
    /// Corrupts the signature of every proposal, vote and timeout it sends.
    BadSignatures,
    /// Also sends votes, timeouts and proposals claiming to come from another validator.
    Impersonator,
    /// Sends nothing at all (a crashed or censoring validator, including as leader).
    Silent,
}

impl Behaviour {
    pub const BYZANTINE: [Behaviour; 5] = [
        Behaviour::Equivocator,
        Behaviour::DoubleVoter,
        Behaviour::BadSignatures,
        Behaviour::Impersonator,
        Behaviour::Silent,
    ];
}

/// Where a message goes: one validator, or every other validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    One(ValidatorIndex),
    All,
}

/// A message as it leaves a node, with the sender identity the network will claim.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub target: Target,
    pub message: ConsensusMessage,
    /// `Some(i)`: delivered as if from validator `i` (an impersonation the transport failed
    /// to stop; the signature check must).
    pub spoofed_from: Option<ValidatorIndex>,
}

/// What a Byzantine node sends instead of `honest`. Extra payload batches the node must be
/// able to serve are returned too.
pub fn misbehave(
    behaviour: Behaviour,
    me: ValidatorIndex,
    key: &KeyPair,
    committee: &Committee,
    honest: Outgoing,
) -> Vec<Outgoing> {
    let n = committee.size() as ValidatorIndex;
    match behaviour {
        Behaviour::Honest => vec![honest],
        Behaviour::Silent => Vec::new(),
        Behaviour::BadSignatures => vec![Outgoing { message: corrupt_signature(honest.message), ..honest }],
        Behaviour::DoubleVoter => match &honest.message {
            ConsensusMessage::Vote(vote) => {
                let mut data = vote.data;
                data.block.digest = DigestBuilder::new("sim/double-vote").digest(&data.block.digest).finish();
                let second = Vote::new(data, me, key, committee.chain_id());
                vec![honest.clone(), Outgoing { message: ConsensusMessage::Vote(second), ..honest }]
            }
            _ => vec![honest],
        },
        Behaviour::Equivocator => match &honest.message {
            ConsensusMessage::Proposal(block) => equivocate(block, key, committee, n),
            _ => vec![honest],
        },
        Behaviour::Impersonator => {
            let victim = (me + 1) % n;
            let mut out = vec![honest.clone()];
            if let Some(forged) = impersonate(&honest.message, victim, key, committee) {
                // Once over an authenticated link (the receiver sees `from != author`), once
                // as if the link let the lie through (the signature must catch it).
                out.push(Outgoing { target: honest.target, message: forged.clone(), spoofed_from: None });
                out.push(Outgoing { target: honest.target, message: forged, spoofed_from: Some(victim) });
            }
            out
        }
    }
}

/// Two validly signed proposals for one round: everyone receives both, half of the
/// committee in one order and half in the other.
fn equivocate(block: &Block, key: &KeyPair, committee: &Committee, n: ValidatorIndex) -> Vec<Outgoing> {
    // A different payload makes a different block; with no payload there is nothing to vary
    // without forging, so the leader behaves.
    let payload: Vec<_> = match block.payload.len() {
        0 => {
            let honest = ConsensusMessage::Proposal(block.clone());
            return vec![Outgoing { target: Target::All, message: honest, spoofed_from: None }];
        }
        1 => Vec::new(),
        _ => block.payload.iter().rev().copied().collect(),
    };
    let twin = Block::new(
        committee,
        key,
        block.author,
        block.round,
        block.parent_qc.clone(),
        block.timeout_cert.clone(),
        payload,
    );
    let mut out = Vec::new();
    for to in 0..n {
        let (first, second) = if to < n / 2 { (block, &twin) } else { (&twin, block) };
        for b in [first, second] {
            out.push(Outgoing {
                target: Target::One(to),
                message: ConsensusMessage::Proposal(b.clone()),
                spoofed_from: None,
            });
        }
    }
    out
}

fn impersonate(
    message: &ConsensusMessage,
    victim: ValidatorIndex,
    key: &KeyPair,
    committee: &Committee,
) -> Option<ConsensusMessage> {
    match message {
        ConsensusMessage::Vote(vote) => {
            let data = VoteData { block: vote.data.block, parent: vote.data.parent };
            let mut forged = Vote::new(data, victim, key, committee.chain_id());
            forged.author = victim;
            Some(ConsensusMessage::Vote(forged))
        }
        ConsensusMessage::Timeout { timeout, last_tc } => {
            let mut forged = timeout.clone();
            forged.author = victim;
            Some(ConsensusMessage::Timeout { timeout: forged, last_tc: last_tc.clone() })
        }
        ConsensusMessage::Proposal(block) => {
            let mut forged = block.clone();
            forged.author = victim;
            forged.digest = Block::compute_digest(
                committee.chain_id(),
                forged.round,
                forged.height,
                victim,
                forged.parent(),
                &forged.payload,
            );
            forged.signature = key.sign(bastion_consensus::domains::PROPOSAL, forged.digest.as_bytes());
            Some(ConsensusMessage::Proposal(forged))
        }
        _ => None,
    }
}

fn corrupt_signature(message: ConsensusMessage) -> ConsensusMessage {
    match message {
        ConsensusMessage::Proposal(mut block) => {
            block.signature.0[5] ^= 0x40;
            ConsensusMessage::Proposal(block)
        }
        ConsensusMessage::Vote(mut vote) => {
            vote.signature.0[5] ^= 0x40;
            ConsensusMessage::Vote(vote)
        }
        ConsensusMessage::Timeout { mut timeout, last_tc } => {
            timeout.signature.0[5] ^= 0x40;
            ConsensusMessage::Timeout { timeout, last_tc }
        }
        other => other,
    }
}
