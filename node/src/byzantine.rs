//! Byzantine validators for fault testing: an honest core's outgoing messages, rewritten.
//!
//! `bastion-node --byzantine MODE` runs the ordinary consensus core and passes every batch of
//! actions it returns through [`Byzantine::distort`] before the driver carries them out. The
//! core itself stays pure and honest about its own state (it persists safety data and votes
//! by the rules); only what leaves the node lies, and the order of the actions is kept, so a
//! vote still leaves after the safety data that forbids a conflicting one is on disk:
//!
//! * `equivocate`: a proposal of its own is replaced by two validly signed, conflicting
//!   blocks for the same round, the first sent to one half of the other validators and the
//!   second to the other half. The second orders the same batches in another order; with
//!   one batch it orders none; with none it names a batch that does not exist (nothing else
//!   can vary without a second QC), so its receivers wait for data that never comes.
//! * `double-vote`: every vote sent is followed by a second, validly signed vote of the
//!   same round for another block digest.
//! * `bad-signatures`: the signature of every proposal, vote and timeout is corrupted.
//! * `silent`: no consensus message leaves (batches and the API still work).
//! * `stale`: every message sent is followed by a broadcast of one of its own proposals,
//!   votes or timeouts from at least [`STALE_ROUNDS`] rounds earlier (kept in a bounded ring).
//! * `bad-batches`: consensus messages are honest, but every batch it seals carries one more
//!   transaction, whose signature is forged ([`forged_transaction`]), and it seals such a
//!   batch every batch delay even when it has nothing else to batch. Honest validators store
//!   and vote for these batches (a vote promises the data is held), and execution leaves
//!   the forged transactions out on every validator alike.
//!
//! Forged messages are signed with this validator's own key: honest validators must refuse
//! or outvote them by the protocol's rules alone. Safety is promised for at most `f` of them.

use std::collections::VecDeque;

use bastion_consensus::{Action, Block, Committee, ConsensusMessage, Round, ValidatorIndex, Vote};
use bastion_crypto::{DigestBuilder, KeyPair};
use bastion_ledger::fuel::DEFAULT_FUEL_LIMIT;
use bastion_ledger::{Payload, Transaction};
use bytes::Bytes;

pub use bastion_testnet::byzantine::ByzantineMode;

/// `stale` replays messages at least this many rounds older than the one it sends.
pub const STALE_ROUNDS: Round = 10;
/// Own messages `stale` remembers.
const STALE_RING: usize = 512;
/// After the first, every this many distortions are logged.
const LOG_EVERY: u64 = 100;

/// One validator's Byzantine behaviour: what it knows to forge messages, and what it did.
pub struct Byzantine {
    mode: ByzantineMode,
    me: ValidatorIndex,
    key: KeyPair,
    committee: Committee,
    /// `stale`: own proposals, votes and timeouts with their rounds, oldest first.
    sent: VecDeque<(Round, ConsensusMessage)>,
    /// `stale`: which old message to replay next, so replays cycle through the ring.
    replay_cursor: usize,
    /// Messages forged, corrupted, dropped or replayed so far.
    distorted: u64,
}

/// Where a consensus message was going.
#[derive(Clone, Copy)]
enum Target {
    One(ValidatorIndex),
    All,
}

impl Byzantine {
    pub fn new(mode: ByzantineMode, me: ValidatorIndex, key: KeyPair, committee: Committee) -> Self {
        Byzantine { mode, me, key, committee, sent: VecDeque::new(), replay_cursor: 0, distorted: 0 }
    }

    pub fn mode(&self) -> ByzantineMode {
        self.mode
    }

    /// How many messages this validator has distorted so far.
    pub fn distorted(&self) -> u64 {
        self.distorted
    }

    /// What this validator does instead of `actions`, in the same order.
    pub fn distort(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut out = Vec::with_capacity(actions.len());
        for action in actions {
            match action {
                Action::Send(to, message) => self.outgoing(Target::One(to), message, &mut out),
                Action::Broadcast(message) => self.outgoing(Target::All, message, &mut out),
                other => out.push(other),
            }
        }
        out
    }

    fn outgoing(&mut self, target: Target, message: ConsensusMessage, out: &mut Vec<Action>) {
        match self.mode {
            ByzantineMode::Silent => self.note("dropped a consensus message", &message),
            ByzantineMode::BadSignatures => {
                let (message, corrupted) = corrupt_signature(message);
                if corrupted {
                    self.note("corrupted a signature", &message);
                }
                out.push(action(target, message));
            }
            ByzantineMode::DoubleVote => {
                let second = match &message {
                    ConsensusMessage::Vote(vote) if vote.author == self.me => {
                        Some(self.conflicting_vote(vote))
                    }
                    _ => None,
                };
                out.push(action(target, message));
                if let Some(second) = second {
                    let second = ConsensusMessage::Vote(second);
                    self.note("double-voted", &second);
                    out.push(action(target, second));
                }
            }
            ByzantineMode::Equivocate => match message {
                ConsensusMessage::Proposal(block) if block.author == self.me => {
                    let twin = self.conflicting_block(&block);
                    self.note("equivocated", &ConsensusMessage::Proposal(twin.clone()));
                    let peers: Vec<ValidatorIndex> =
                        self.committee.indices().filter(|i| *i != self.me).collect();
                    let half = peers.len() / 2;
                    for (k, to) in peers.into_iter().enumerate() {
                        let block = if k < half { block.clone() } else { twin.clone() };
                        out.push(Action::Send(to, ConsensusMessage::Proposal(block)));
                    }
                }
                other => out.push(action(target, other)),
            },
            ByzantineMode::BadBatches => out.push(action(target, message)),
            ByzantineMode::Stale => {
                let replay = self.stale_replay(round_of(&message));
                self.remember(&message);
                out.push(action(target, message));
                if let Some(old) = replay {
                    self.note("replayed an old message", &old);
                    out.push(Action::Broadcast(old));
                }
            }
        }
    }

    /// A second vote of the same round, for a block digest nobody proposed.
    fn conflicting_vote(&self, vote: &Vote) -> Vote {
        let mut data = vote.data;
        data.block.digest =
            DigestBuilder::new("bastion/byzantine/double-vote/v1").digest(&data.block.digest).finish();
        Vote::new(data, self.me, &self.key, self.committee.chain_id())
    }

    /// A validly signed block for `block`'s round that conflicts with it (see module docs).
    fn conflicting_block(&self, block: &Block) -> Block {
        let payload = match block.payload.len() {
            0 => vec![DigestBuilder::new("bastion/byzantine/equivocation/v1").u64(block.round).finish()],
            1 => Vec::new(),
            _ => block.payload.iter().rev().copied().collect(),
        };
        Block::new(
            &self.committee,
            &self.key,
            self.me,
            block.round,
            block.parent_qc.clone(),
            block.timeout_cert.clone(),
            payload,
        )
    }

    fn remember(&mut self, message: &ConsensusMessage) {
        let Some(round) = round_of(message) else { return };
        if self.sent.len() == STALE_RING {
            self.sent.pop_front();
        }
        self.sent.push_back((round, message.clone()));
    }

    /// One remembered message at least [`STALE_ROUNDS`] older than `now`, cycling through them.
    fn stale_replay(&mut self, now: Option<Round>) -> Option<ConsensusMessage> {
        let now = now.or_else(|| self.sent.back().map(|(round, _)| *round))?;
        let old = self.sent.iter().take_while(|(round, _)| round.saturating_add(STALE_ROUNDS) <= now).count();
        if old == 0 {
            return None;
        }
        let pick = self.replay_cursor % old;
        self.replay_cursor = self.replay_cursor.wrapping_add(1);
        self.sent.get(pick).map(|(_, message)| message.clone())
    }

    /// Counts a distortion; logs the first and every [`LOG_EVERY`]th, so the log shows the
    /// mode at work without drowning in it.
    fn note(&mut self, what: &str, message: &ConsensusMessage) {
        self.distorted += 1;
        if self.distorted == 1 || self.distorted.is_multiple_of(LOG_EVERY) {
            tracing::warn!(
                mode = %self.mode,
                kind = message.kind(),
                round = round_of(message),
                total = self.distorted,
                "byzantine: {what}"
            );
        }
    }
}

/// `bad-batches`: a well-formed transfer from this validator's key to itself, number `seq`,
/// whose signature is then broken, so it fails signature verification and no other check.
pub fn forged_transaction(key: &KeyPair, chain_id: &str, seq: u64) -> Option<Bytes> {
    let tx = Transaction {
        chain_id: chain_id.to_string(),
        sender: key.public(),
        nonce: seq,
        expiry_height: u64::MAX,
        fuel_limit: DEFAULT_FUEL_LIMIT,
        payload: Payload::Transfer { to: key.public().into(), amount: 1 },
    };
    let mut signed = tx.sign(key).ok()?;
    signed.signature.0[0] ^= 1;
    signed.to_bytes().ok().map(Bytes::from)
}

fn action(target: Target, message: ConsensusMessage) -> Action {
    match target {
        Target::One(to) => Action::Send(to, message),
        Target::All => Action::Broadcast(message),
    }
}

/// The round a proposal, vote or timeout is for; `None` for the other messages.
fn round_of(message: &ConsensusMessage) -> Option<Round> {
    match message {
        ConsensusMessage::Proposal(block) => Some(block.round),
        ConsensusMessage::Vote(vote) => Some(vote.round()),
        ConsensusMessage::Timeout { timeout, .. } => Some(timeout.round),
        _ => None,
    }
}

/// `message` with its sender's signature corrupted; false if it carries none.
fn corrupt_signature(message: ConsensusMessage) -> (ConsensusMessage, bool) {
    let flip = |sig: &mut bastion_crypto::Signature| sig.0[5] ^= 0x40;
    match message {
        ConsensusMessage::Proposal(mut block) => {
            flip(&mut block.signature);
            (ConsensusMessage::Proposal(block), true)
        }
        ConsensusMessage::Vote(mut vote) => {
            flip(&mut vote.signature);
            (ConsensusMessage::Vote(vote), true)
        }
        ConsensusMessage::Timeout { mut timeout, last_tc } => {
            flip(&mut timeout.signature);
            (ConsensusMessage::Timeout { timeout, last_tc }, true)
        }
        other => (other, false),
    }
}
