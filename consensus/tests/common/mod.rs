//! Shared fixtures for the consensus tests.
//!
//! [`Fixture`] is a committee of deterministic keys (`KeyPair::from_seed([i; 32])`) plus
//! builders for signed blocks, votes, timeouts and certificates. [`Net`] drives a set of
//! [`Core`]s by hand: it executes their actions in order, delivers messages first in, first
//! out, and checks on every step what any embedder relies on — safety data is persisted
//! before the vote or timeout it covers leaves the node, an honest core never signs two
//! different votes for one round, and commits extend each other with consecutive heights.
//! Nothing is random, so a failure replays exactly.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bastion_consensus::{
    domains, Action, Block, BlockInfo, Committee, Config, ConsensusMessage, Core, Event, QuorumCert,
    Recovery, Round, SafetyData, Timeout, TimeoutCert, ValidatorIndex, Vote, VoteData,
};
use bastion_crypto::{sha256, Digest, KeyPair};

pub const CHAIN_ID: &str = "bastion-test";

pub fn keys(n: usize) -> Vec<KeyPair> {
    (0..n).map(|i| KeyPair::from_seed([i as u8; 32])).collect()
}

/// A payload batch digest that no core holds unless told.
pub fn batch(i: u64) -> Digest {
    sha256(&i.to_le_bytes())
}

pub struct Fixture {
    pub committee: Committee,
    pub keys: Vec<KeyPair>,
}

impl Fixture {
    pub fn new(n: usize) -> Self {
        Self::with_chain(n, CHAIN_ID)
    }

    pub fn with_chain(n: usize, chain_id: &str) -> Self {
        let keys = keys(n);
        let publics: Vec<_> = keys.iter().map(KeyPair::public).collect();
        let committee = Committee::new(chain_id, &publics).expect("valid committee");
        Fixture { committee, keys }
    }

    pub fn n(&self) -> usize {
        self.committee.size()
    }

    pub fn chain_id(&self) -> &str {
        self.committee.chain_id()
    }

    pub fn key(&self, i: ValidatorIndex) -> &KeyPair {
        &self.keys[usize::from(i)]
    }

    /// The first `quorum` validators.
    pub fn quorum(&self) -> Vec<ValidatorIndex> {
        (0..self.committee.quorum() as ValidatorIndex).collect()
    }

    pub fn genesis_qc(&self) -> QuorumCert {
        QuorumCert::genesis(&self.committee)
    }

    pub fn block(
        &self,
        author: ValidatorIndex,
        round: Round,
        parent_qc: &QuorumCert,
        tc: Option<&TimeoutCert>,
        payload: Vec<Digest>,
    ) -> Block {
        Block::new(&self.committee, self.key(author), author, round, parent_qc.clone(), tc.cloned(), payload)
    }

    /// The block the leader of `round` would propose, with an empty payload.
    pub fn proposal(&self, round: Round, parent_qc: &QuorumCert, tc: Option<&TimeoutCert>) -> Block {
        self.block(self.committee.leader(round), round, parent_qc, tc, Vec::new())
    }

    pub fn vote_data(block: &Block) -> VoteData {
        VoteData { block: block.info(), parent: *block.parent() }
    }

    pub fn vote(&self, block: &Block, author: ValidatorIndex) -> Vote {
        Vote::new(Self::vote_data(block), author, self.key(author), self.chain_id())
    }

    pub fn qc(&self, block: &Block, signers: &[ValidatorIndex]) -> QuorumCert {
        let votes: Vec<Vote> = signers.iter().map(|&i| self.vote(block, i)).collect();
        let refs: Vec<&Vote> = votes.iter().collect();
        QuorumCert::from_votes(Self::vote_data(block), &refs, self.n())
    }

    pub fn quorum_qc(&self, block: &Block) -> QuorumCert {
        self.qc(block, &self.quorum())
    }

    /// A valid QC of `round` (a block of that round extending genesis); genesis for round 0.
    pub fn qc_at(&self, round: Round) -> QuorumCert {
        if round == 0 {
            return self.genesis_qc();
        }
        self.quorum_qc(&self.proposal(round, &self.genesis_qc(), None))
    }

    pub fn timeout(&self, round: Round, high_qc: &QuorumCert, author: ValidatorIndex) -> Timeout {
        Timeout::new(round, high_qc.clone(), author, self.key(author), self.chain_id())
    }

    /// A TC for `round` signed by validators `0..high_qc_rounds.len()`, validator `i`
    /// reporting a highest QC of round `high_qc_rounds[i]`.
    pub fn tc(&self, round: Round, high_qc_rounds: &[Round]) -> TimeoutCert {
        let timeouts: Vec<Timeout> = high_qc_rounds
            .iter()
            .enumerate()
            .map(|(i, &r)| self.timeout(round, &self.qc_at(r), i as ValidatorIndex))
            .collect();
        let refs: Vec<&Timeout> = timeouts.iter().collect();
        TimeoutCert::from_timeouts(round, &refs)
    }

    /// A chain of blocks extending genesis, one per entry of `rounds` (each by its round's
    /// leader), each certified by a quorum. Consecutive rounds need no TC; a gap is bridged
    /// by a TC for the round before the block's, reporting the parent's QC round.
    pub fn certified_chain(&self, rounds: &[Round]) -> Vec<(Block, QuorumCert)> {
        let mut out: Vec<(Block, QuorumCert)> = Vec::new();
        let mut qc = self.genesis_qc();
        for &round in rounds {
            let tc =
                (qc.round() + 1 != round).then(|| self.tc(round - 1, &vec![qc.round(); self.quorum().len()]));
            let block = self.proposal(round, &qc, tc.as_ref());
            qc = self.quorum_qc(&block);
            out.push((block, qc.clone()));
        }
        out
    }

    pub fn core(&self, me: ValidatorIndex, config: Config) -> Core {
        Core::new(self.committee.clone(), me, self.key(me).clone(), config)
    }

    pub fn recovered_core(&self, me: ValidatorIndex, config: Config, recovery: Recovery) -> Core {
        Core::recover(self.committee.clone(), me, self.key(me).clone(), config, recovery)
    }
}

/// Checks that a signature over a vote verifies for its author.
pub fn vote_signature_valid(fixture: &Fixture, vote: &Vote) -> bool {
    let digest = vote.data.signing_digest(fixture.chain_id());
    bastion_crypto::verify(
        domains::VOTE,
        digest.as_bytes(),
        &fixture.key(vote.author).public(),
        &vote.signature,
    )
    .is_ok()
}

pub fn timeout_signature_valid(fixture: &Fixture, timeout: &Timeout) -> bool {
    let digest = Timeout::signing_digest(fixture.chain_id(), timeout.round, timeout.high_qc.round());
    bastion_crypto::verify(
        domains::TIMEOUT,
        digest.as_bytes(),
        &fixture.key(timeout.author).public(),
        &timeout.signature,
    )
    .is_ok()
}

pub fn votes_in(actions: &[Action]) -> Vec<(ValidatorIndex, Vote)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(to, ConsensusMessage::Vote(v)) => Some((*to, v.clone())),
            _ => None,
        })
        .collect()
}

pub fn timeouts_in(actions: &[Action]) -> Vec<Timeout> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(ConsensusMessage::Timeout { timeout, .. }) => Some(timeout.clone()),
            _ => None,
        })
        .collect()
}

pub fn proposals_in(actions: &[Action]) -> Vec<Block> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(ConsensusMessage::Proposal(b)) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

#[derive(Clone, Debug)]
pub struct Envelope {
    pub from: ValidatorIndex,
    pub to: ValidatorIndex,
    pub message: ConsensusMessage,
}

/// A hand-driven network of cores, one per committee member.
pub struct Net {
    pub fixture: Fixture,
    pub config: Config,
    pub cores: Vec<Core>,
    pub queue: VecDeque<Envelope>,
    /// Every block each core committed, in commit order.
    pub committed: Vec<Vec<Block>>,
    /// What each core's embedder has durably stored.
    pub persisted_safety: Vec<SafetyData>,
    pub persisted_blocks: Vec<Vec<Block>>,
    /// Every action list each core returned, in order.
    pub history: Vec<Vec<Vec<Action>>>,
    /// Validators cut off: nothing they send or are sent is delivered.
    pub isolated: BTreeSet<ValidatorIndex>,
    /// Deferred proposals scheduled and not yet fired: (validator, round).
    pub proposals_due: Vec<(ValidatorIndex, Round)>,
    /// (author, round) → the vote data that validator signed.
    signed_votes: BTreeMap<(ValidatorIndex, Round), VoteData>,
}

impl Net {
    pub fn new(n: usize) -> Self {
        Self::with_config(n, Config::default())
    }

    pub fn with_config(n: usize, config: Config) -> Self {
        let fixture = Fixture::new(n);
        let cores = (0..n as ValidatorIndex).map(|i| fixture.core(i, config.clone())).collect();
        Net {
            fixture,
            config,
            cores,
            queue: VecDeque::new(),
            committed: vec![Vec::new(); n],
            persisted_safety: vec![SafetyData::default(); n],
            persisted_blocks: vec![Vec::new(); n],
            history: vec![Vec::new(); n],
            isolated: BTreeSet::new(),
            proposals_due: Vec::new(),
            signed_votes: BTreeMap::new(),
        }
    }

    pub fn n(&self) -> usize {
        self.cores.len()
    }

    pub fn core(&mut self, i: ValidatorIndex) -> &mut Core {
        &mut self.cores[usize::from(i)]
    }

    pub fn start(&mut self, i: ValidatorIndex) -> Vec<Action> {
        let actions = self.core(i).start();
        self.apply(i, actions.clone());
        actions
    }

    pub fn start_all(&mut self) {
        for i in 0..self.n() as ValidatorIndex {
            self.start(i);
        }
    }

    pub fn handle(&mut self, i: ValidatorIndex, event: Event) -> Vec<Action> {
        let actions = self.core(i).handle(event);
        self.apply(i, actions.clone());
        actions
    }

    /// Delivers `message` to `to` as if `from` sent it, bypassing the queue.
    pub fn inject(
        &mut self,
        from: ValidatorIndex,
        to: ValidatorIndex,
        message: ConsensusMessage,
    ) -> Vec<Action> {
        self.handle(to, Event::Message(from, message))
    }

    /// Replaces core `i` with one rebuilt from what its embedder persisted, and starts it.
    pub fn restart(&mut self, i: ValidatorIndex) -> Vec<Action> {
        let recovery = Recovery {
            safety: self.persisted_safety[usize::from(i)].clone(),
            blocks: self.persisted_blocks[usize::from(i)].clone(),
            committed: self.committed[usize::from(i)].last().map(Block::info),
        };
        self.cores[usize::from(i)] = self.fixture.recovered_core(i, self.config.clone(), recovery);
        self.start(i)
    }

    /// Executes `actions` of core `i` in order, checking the embedder-visible invariants.
    pub fn apply(&mut self, i: ValidatorIndex, actions: Vec<Action>) {
        let me = usize::from(i);
        for action in &actions {
            match action {
                Action::PersistSafety(data) => self.persisted_safety[me] = data.clone(),
                Action::PersistBlock(block) => self.persisted_blocks[me].push(block.clone()),
                Action::Commit(blocks) => self.record_commit(i, blocks),
                Action::Send(to, message) => {
                    self.check_persisted(i, message);
                    self.queue.push_back(Envelope { from: i, to: *to, message: message.clone() });
                }
                Action::Broadcast(message) => {
                    self.check_persisted(i, message);
                    for to in 0..self.n() as ValidatorIndex {
                        if to != i {
                            self.queue.push_back(Envelope { from: i, to, message: message.clone() });
                        }
                    }
                }
                Action::ScheduleProposal { round, .. } => self.proposals_due.push((i, *round)),
                Action::ScheduleTimeout { .. } | Action::FetchPayload { .. } => {}
            }
        }
        self.history[me].push(actions);
    }

    fn check_persisted(&mut self, i: ValidatorIndex, message: &ConsensusMessage) {
        let persisted = &self.persisted_safety[usize::from(i)];
        match message {
            ConsensusMessage::Vote(vote) => {
                assert_eq!(vote.author, i, "core {i} sent a vote it did not author");
                assert_eq!(
                    persisted.last_vote.as_ref(),
                    Some(vote),
                    "core {i} sent a vote for round {} before persisting it",
                    vote.round()
                );
                let signed = self.signed_votes.entry((i, vote.round())).or_insert(vote.data);
                assert_eq!(
                    *signed,
                    vote.data,
                    "core {i} signed two different votes in round {}",
                    vote.round()
                );
            }
            ConsensusMessage::Proposal(block) if block.author == i => {
                assert!(
                    persisted.last_voted_round >= block.round,
                    "core {i} sent its proposal for round {} before persisting its vote for it",
                    block.round
                );
            }
            ConsensusMessage::Timeout { timeout, .. } => {
                assert_eq!(timeout.author, i, "core {i} sent a timeout it did not author");
                assert_eq!(
                    persisted.last_timeout.as_ref(),
                    Some(timeout),
                    "core {i} sent a timeout for round {} before persisting it",
                    timeout.round
                );
            }
            _ => {}
        }
    }

    fn record_commit(&mut self, i: ValidatorIndex, blocks: &[Block]) {
        let genesis = BlockInfo::genesis(self.fixture.chain_id());
        let chain = &mut self.committed[usize::from(i)];
        assert!(!blocks.is_empty(), "core {i} committed nothing");
        for block in blocks {
            let tip = chain.last().map_or(genesis, Block::info);
            assert_eq!(block.height, tip.height + 1, "core {i} committed heights out of order");
            assert_eq!(block.parent().digest, tip.digest, "core {i} committed a block not extending its tip");
            chain.push(block.clone());
        }
    }

    /// Delivers the oldest queued message; returns false if the queue was empty.
    pub fn deliver_next(&mut self) -> bool {
        let Some(envelope) = self.queue.pop_front() else { return false };
        if !self.isolated.contains(&envelope.from) && !self.isolated.contains(&envelope.to) {
            self.inject(envelope.from, envelope.to, envelope.message);
        }
        true
    }

    /// Delivers until the queue is empty; panics if that takes more than `max_steps`.
    pub fn run(&mut self, max_steps: usize) {
        for _ in 0..max_steps {
            if !self.deliver_next() {
                return;
            }
        }
        panic!("network did not go quiet within {max_steps} deliveries");
    }

    /// Every connected core's timer for its current round fires.
    pub fn fire_timers(&mut self) {
        for i in 0..self.n() as ValidatorIndex {
            if !self.isolated.contains(&i) {
                let round = self.core(i).round();
                self.handle(i, Event::Timeout(round));
            }
        }
    }

    /// Fires every scheduled proposal delay; returns false if none was pending.
    pub fn fire_proposals_due(&mut self) -> bool {
        let due = std::mem::take(&mut self.proposals_due);
        for &(i, round) in &due {
            if !self.isolated.contains(&i) {
                self.handle(i, Event::ProposalDue(round));
            }
        }
        !due.is_empty()
    }

    /// Delivers messages until `done` holds; whenever the network is quiet, scheduled
    /// proposal delays run out first, then round timers. Returns false if `done` did not
    /// hold within `max_steps` deliveries.
    pub fn run_until(&mut self, max_steps: usize, mut done: impl FnMut(&Net) -> bool) -> bool {
        for _ in 0..max_steps {
            if done(self) {
                return true;
            }
            if !self.deliver_next() && !self.fire_proposals_due() {
                self.fire_timers();
            }
        }
        done(self)
    }

    pub fn committed_height(&self, i: ValidatorIndex) -> u64 {
        self.committed[usize::from(i)].last().map_or(0, |b| b.height)
    }

    pub fn connected(&self) -> impl Iterator<Item = ValidatorIndex> + '_ {
        (0..self.n() as ValidatorIndex).filter(|i| !self.isolated.contains(i))
    }
}
