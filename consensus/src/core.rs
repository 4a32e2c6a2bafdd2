//! The consensus state machine: `handle(event) -> actions`.
//!
//! [`Core`] ties together the safety rules, the pacemaker, the block tree and the
//! aggregators. The embedder feeds it [`Event`]s and executes the returned [`Action`]s **in
//! order**; in particular every [`Action::PersistSafety`] must be durable before any later
//! action of the same batch is executed, because a vote or timeout that follows it depends on
//! it. Blocks handed out in [`Action::PersistBlock`] should be stored so that
//! [`Core::recover`] can rebuild the tree after a crash.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use bastion_crypto::{verify, Digest, KeyPair};

use crate::aggregator::{TimeoutAggregator, VoteAggregator};
use crate::block_tree::{BlockTree, PathError};
use crate::{
    domains, Block, BlockInfo, BrokenRule, CertificateCache, Committee, ConsensusError, ConsensusMessage,
    Pacemaker, QuorumCert, Round, SafetyData, SafetyRules, SyncInfo, Timeout, TimeoutCert, ValidatorIndex,
    Vote, MAX_SYNC_BLOCKS, MAX_SYNC_PAYLOAD,
};

#[derive(Clone, Debug)]
pub struct Config {
    /// Timeout of a round entered through a QC; doubled after each timed-out round.
    pub base_timeout_ms: u64,
    pub max_timeout_ms: u64,
    /// Most payload digests a leader puts in one block.
    pub max_block_payload: usize,
    /// Committed blocks kept in memory to serve peers that catch up.
    pub retain_committed_blocks: u64,
    /// Votes and timeouts more than this many rounds ahead are refused (bounds memory).
    pub round_window: u64,
    /// A leader with no payload to order, and none waiting to commit, waits this long
    /// (or until payload arrives) before proposing an empty block. 0: propose at once.
    pub empty_block_delay_ms: u64,
    /// Test-only: break a safety rule on purpose. Never set in production.
    #[doc(hidden)]
    pub broken_rule: Option<BrokenRule>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_timeout_ms: 1_000,
            max_timeout_ms: 60_000,
            max_block_payload: 512,
            retain_committed_blocks: 1_024,
            round_window: 100,
            empty_block_delay_ms: 0,
            broken_rule: None,
        }
    }
}

// Events are built once and moved into `handle`; boxing the message would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Message(ValidatorIndex, ConsensusMessage),
    /// The timer scheduled for this round fired.
    Timeout(Round),
    /// The batch with this digest is stored locally (own or fetched).
    PayloadAvailable(Digest),
    /// The delay scheduled by [`Action::ScheduleProposal`] for this round is over.
    ProposalDue(Round),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send(ValidatorIndex, ConsensusMessage),
    Broadcast(ConsensusMessage),
    /// Write durably (fsync) before executing any later action.
    PersistSafety(SafetyData),
    /// Store this verified block; [`Core::recover`] wants the uncommitted ones back.
    PersistBlock(Block),
    /// These blocks are final, oldest first, heights consecutive.
    Commit(Vec<Block>),
    ScheduleTimeout {
        round: Round,
        after_ms: u64,
    },
    /// Fire [`Event::ProposalDue`] for `round` after this delay (the leader is idle).
    ScheduleProposal {
        round: Round,
        after_ms: u64,
    },
    FetchPayload {
        digests: Vec<Digest>,
        from: ValidatorIndex,
    },
}

/// What a restarting validator reloads from its storage.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    pub safety: SafetyData,
    /// Stored blocks (any order; those at or below `committed` are ignored).
    pub blocks: Vec<Block>,
    /// The highest committed block, or `None` for genesis.
    pub committed: Option<BlockInfo>,
}

pub struct Core {
    me: ValidatorIndex,
    key: KeyPair,
    committee: Committee,
    config: Config,
    safety: SafetyRules,
    pacemaker: Pacemaker,
    tree: BlockTree,
    cache: CertificateCache,
    votes: VoteAggregator,
    timeouts: TimeoutAggregator,
    /// Batches held locally and not yet committed, in arrival order.
    queue: VecDeque<Digest>,
    available: BTreeSet<Digest>,
    /// Batches ordered by recent commits (bounded, oldest forgotten first). A batch can be
    /// announced again after its commit (a late copy, a fetch answered twice): it must not
    /// be queued and ordered a second time, which would make every validator load and check
    /// it again for nothing.
    committed_payload: BoundedSet,
    /// A proposal of the current round waiting for its payload.
    waiting_for_payload: Option<Block>,
    /// Blocks we asked peers for, with the round in which we last asked.
    wanted: BTreeMap<Digest, Round>,
    /// The highest block we know is committed but could not commit yet (ancestors missing).
    pending_commit: Option<BlockInfo>,
    proposed_round: Round,
    /// An idle leader's round whose proposal waits for payload or a delay.
    deferred_proposal: Option<Round>,
    refusals: VecDeque<ConsensusError>,
    out: Vec<Action>,
}

const MAX_REFUSALS_KEPT: usize = 64;
/// Committed batch digests remembered (2 MiB of digests: minutes of commits at full load).
const MAX_COMMITTED_PAYLOAD_KEPT: usize = 65_536;

/// A set that forgets its oldest members beyond a bound.
struct BoundedSet {
    members: HashSet<Digest>,
    order: VecDeque<Digest>,
    bound: usize,
}

impl BoundedSet {
    fn new(bound: usize) -> Self {
        BoundedSet { members: HashSet::new(), order: VecDeque::new(), bound }
    }

    fn insert(&mut self, digest: Digest) {
        if self.members.insert(digest) {
            self.order.push_back(digest);
            if self.order.len() > self.bound {
                if let Some(oldest) = self.order.pop_front() {
                    self.members.remove(&oldest);
                }
            }
        }
    }

    fn contains(&self, digest: &Digest) -> bool {
        self.members.contains(digest)
    }
}

impl Core {
    pub fn new(committee: Committee, me: ValidatorIndex, key: KeyPair, config: Config) -> Self {
        Self::recover(committee, me, key, config, Recovery::default())
    }

    pub fn recover(
        committee: Committee,
        me: ValidatorIndex,
        key: KeyPair,
        config: Config,
        recovery: Recovery,
    ) -> Self {
        let genesis_qc = QuorumCert::genesis(&committee);
        let committed = recovery.committed.unwrap_or_else(|| BlockInfo::genesis(committee.chain_id()));
        let mut tree = BlockTree::new(committed, genesis_qc, config.retain_committed_blocks);
        let mut blocks = recovery.blocks;
        blocks.sort_by_key(|b| b.height);
        for block in blocks {
            tree.update_highest_qc(&block.parent_qc);
            if let Some(tc) = &block.timeout_cert {
                tree.update_highest_tc(tc);
            }
            tree.insert(block);
        }
        if let Some(timeout) = &recovery.safety.last_timeout {
            tree.update_highest_qc(&timeout.high_qc);
        }
        let pacemaker = Pacemaker::new(config.base_timeout_ms, config.max_timeout_ms);
        let safety = SafetyRules::new(recovery.safety, config.broken_rule);
        Core {
            me,
            key,
            committee,
            safety,
            pacemaker,
            tree,
            cache: CertificateCache::default(),
            votes: VoteAggregator::default(),
            timeouts: TimeoutAggregator::default(),
            queue: VecDeque::new(),
            available: BTreeSet::new(),
            committed_payload: BoundedSet::new(MAX_COMMITTED_PAYLOAD_KEPT),
            waiting_for_payload: None,
            wanted: BTreeMap::new(),
            pending_commit: None,
            proposed_round: 0,
            deferred_proposal: None,
            refusals: VecDeque::new(),
            out: Vec::new(),
            config,
        }
    }

    /// Enters the first round (or the recovered one), re-sends the last vote or timeout of
    /// that round, and proposes if this validator leads it.
    pub fn start(&mut self) -> Vec<Action> {
        let data = self.safety.data().clone();
        let from_certs = self
            .tree
            .highest_qc()
            .round()
            .max(self.tree.highest_tc().map_or(0, |tc| tc.round))
            .saturating_add(1);
        let round = from_certs.max(data.last_voted_round).max(1);
        let after_timeout = self.tree.highest_tc().is_some_and(|tc| tc.round + 1 == round);
        self.enter_round(round, after_timeout);
        if let Some(vote) = data.last_vote.filter(|v| v.round() == round) {
            // A leader that crashed between persisting its vote and broadcasting its
            // proposal re-sends the (stored) proposal too, so the round can still succeed.
            let own_proposal =
                self.tree.get(&vote.data.block.digest).filter(|b| b.author == self.me).cloned();
            if let Some(block) = own_proposal {
                self.out.push(Action::Broadcast(ConsensusMessage::Proposal(block)));
            }
            self.send_vote(vote);
        }
        if let Some(timeout) = data.last_timeout.filter(|t| t.round == round) {
            self.broadcast_timeout(timeout);
        }
        std::mem::take(&mut self.out)
    }

    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let result = match event {
            Event::Message(from, message) => self.on_message(from, message),
            Event::Timeout(round) => {
                self.on_local_timeout(round);
                Ok(())
            }
            Event::PayloadAvailable(digest) => {
                self.on_payload_available(digest);
                Ok(())
            }
            Event::ProposalDue(round) => {
                if self.deferred_proposal == Some(round) && round == self.round() {
                    self.deferred_proposal = None;
                    self.propose(round, true);
                }
                Ok(())
            }
        };
        if let Err(error) = result {
            if self.refusals.len() == MAX_REFUSALS_KEPT {
                self.refusals.pop_front();
            }
            self.refusals.push_back(error);
        }
        std::mem::take(&mut self.out)
    }

    /// Why recent messages were refused (oldest first); drained by the caller for logging.
    pub fn take_refusals(&mut self) -> Vec<ConsensusError> {
        self.refusals.drain(..).collect()
    }

    pub fn me(&self) -> ValidatorIndex {
        self.me
    }

    pub fn round(&self) -> Round {
        self.pacemaker.round()
    }

    pub fn committed(&self) -> &BlockInfo {
        self.tree.committed()
    }

    pub fn highest_qc(&self) -> &QuorumCert {
        self.tree.highest_qc()
    }

    pub fn safety_data(&self) -> &SafetyData {
        self.safety.data()
    }

    pub fn committee(&self) -> &Committee {
        &self.committee
    }

    /// A block this validator holds (uncommitted, or committed recently).
    pub fn block(&self, digest: &Digest) -> Option<&Block> {
        self.tree.get(digest)
    }

    /// Blocks held in memory.
    pub fn held_blocks(&self) -> usize {
        self.tree.len()
    }

    /// Payload batches held but not yet committed.
    pub fn queued_payload(&self) -> usize {
        self.queue.len()
    }

    fn on_message(&mut self, from: ValidatorIndex, message: ConsensusMessage) -> Result<(), ConsensusError> {
        ensure!(self.committee.contains(from), ConsensusError::UnknownValidator(from));
        match message {
            ConsensusMessage::Proposal(block) => self.on_proposal(from, block),
            ConsensusMessage::Vote(vote) => self.on_vote(from, vote),
            ConsensusMessage::Timeout { timeout, last_tc } => self.on_timeout(from, timeout, last_tc),
            ConsensusMessage::BlockRequest { digest, count } => {
                self.on_block_request(from, digest, count);
                Ok(())
            }
            ConsensusMessage::BlockResponse { blocks } => self.on_block_response(from, blocks),
            ConsensusMessage::SyncInfo(sync) => {
                sync.highest_qc.verify(&self.committee, &mut self.cache)?;
                if let Some(tc) = &sync.highest_tc {
                    tc.verify(&self.committee, &mut self.cache)?;
                }
                self.process_certificates(from, &sync.highest_qc, sync.highest_tc.as_ref());
                Ok(())
            }
        }
    }

    fn on_proposal(&mut self, from: ValidatorIndex, block: Block) -> Result<(), ConsensusError> {
        ensure!(from == block.author, ConsensusError::WrongAuthor { from, author: block.author });
        let leader = self.committee.leader(block.round);
        ensure!(
            block.author == leader,
            ConsensusError::NotLeader { author: block.author, round: block.round }
        );
        if self.tree.knows(&block.digest) {
            return Ok(());
        }
        block.verify(&self.committee, &mut self.cache)?;
        self.process_certificates(from, &block.parent_qc, block.timeout_cert.as_ref());
        let equivocation_filter = self.config.broken_rule != Some(BrokenRule::SkipLastVotedRound);
        let seen = equivocation_filter && self.tree.has_proposal(block.round, block.author, block.height);
        if block.round != self.round() || seen {
            // Old, or a second proposal of an equivocating leader: its certificates were
            // useful, the block itself is fetched later if it gets certified.
            return Ok(());
        }
        if self.tree.insert(block.clone()) {
            self.out.push(Action::PersistBlock(block.clone()));
        }
        let parent = *block.parent();
        if !self.tree.knows(&parent.digest) && parent.height > self.tree.committed().height {
            self.request_block(from, parent.digest);
        }
        self.try_vote(block);
        Ok(())
    }

    fn try_vote(&mut self, block: Block) {
        let missing: Vec<Digest> = block.payload.iter().filter(|d| !self.holds_payload(d)).copied().collect();
        if !missing.is_empty() {
            self.out.push(Action::FetchPayload { digests: missing, from: block.author });
            self.waiting_for_payload = Some(block);
            return;
        }
        match self.safety.vote(&block, self.me, &self.key, self.committee.chain_id()) {
            Ok(vote) => {
                self.out.push(Action::PersistSafety(self.safety.data().clone()));
                self.send_vote(vote);
            }
            Err(refusal) => self.refuse(refusal),
        }
    }

    fn send_vote(&mut self, vote: Vote) {
        let next_leader = self.committee.leader(vote.round() + 1);
        if next_leader == self.me {
            self.collect_vote(vote);
        } else {
            self.out.push(Action::Send(next_leader, ConsensusMessage::Vote(vote)));
        }
    }

    fn on_vote(&mut self, from: ValidatorIndex, vote: Vote) -> Result<(), ConsensusError> {
        ensure!(from == vote.author, ConsensusError::WrongAuthor { from, author: vote.author });
        let round = vote.round();
        ensure!(
            round.saturating_add(1) >= self.round() && round <= self.round() + self.config.round_window,
            ConsensusError::RoundOutOfWindow { round, current: self.round() }
        );
        ensure!(
            self.committee.leader(round + 1) == self.me,
            ConsensusError::NotLeader { author: self.me, round: round + 1 }
        );
        self.collect_vote(vote);
        Ok(())
    }

    fn collect_vote(&mut self, vote: Vote) {
        if let Some(qc) = self.votes.add(vote, &self.committee) {
            self.cache.insert_qc(&qc, self.committee.chain_id());
            let hint = self.committee.leader(qc.round());
            self.process_certificates(hint, &qc, None);
        }
    }

    fn on_timeout(
        &mut self,
        from: ValidatorIndex,
        timeout: Timeout,
        last_tc: Option<TimeoutCert>,
    ) -> Result<(), ConsensusError> {
        ensure!(from == timeout.author, ConsensusError::WrongAuthor { from, author: timeout.author });
        ensure!(
            timeout.high_qc.round() < timeout.round,
            ConsensusError::MalformedCertificate("timeout carries a QC from its own round or later")
        );
        timeout.high_qc.verify(&self.committee, &mut self.cache)?;
        if let Some(tc) = &last_tc {
            tc.verify(&self.committee, &mut self.cache)?;
        }
        self.process_certificates(from, &timeout.high_qc, last_tc.as_ref());
        let round = timeout.round;
        if round < self.round() {
            // The sender is behind: help it catch up.
            let sync = SyncInfo {
                highest_qc: self.tree.highest_qc().clone(),
                highest_tc: self.tree.highest_tc().cloned(),
            };
            self.out.push(Action::Send(from, ConsensusMessage::SyncInfo(sync)));
            return Ok(());
        }
        ensure!(
            round <= self.round() + self.config.round_window,
            ConsensusError::RoundOutOfWindow { round, current: self.round() }
        );
        let key = self.committee.key(from).ok_or(ConsensusError::UnknownValidator(from))?;
        let digest = Timeout::signing_digest(self.committee.chain_id(), round, timeout.high_qc.round());
        verify(domains::TIMEOUT, digest.as_bytes(), key.public(), &timeout.signature)
            .map_err(|_| ConsensusError::InvalidSignature(from))?;
        self.collect_timeout(timeout);
        Ok(())
    }

    fn collect_timeout(&mut self, timeout: Timeout) {
        let round = timeout.round;
        let progress = self.timeouts.add(timeout, &self.committee);
        if let Some(tc) = progress.certificate {
            self.cache.insert_tc(&tc, self.committee.chain_id());
            self.process_tc(&tc);
        } else if round == self.round()
            && progress.count >= self.committee.validity_threshold()
            && self.safety.data().highest_timeout_round < round
        {
            // f + 1 validators gave up on this round, so at least one honest one did: join them
            // rather than wait out our own timer.
            self.on_local_timeout(round);
        }
    }

    fn on_local_timeout(&mut self, round: Round) {
        if round != self.round() {
            return;
        }
        let existing = self.safety.data().last_timeout.clone().filter(|t| t.round == round);
        let timeout = match existing {
            Some(timeout) => timeout,
            None => {
                let high_qc = self.tree.highest_qc().clone();
                let last_tc = self.tree.highest_tc().cloned();
                match self.safety.timeout(
                    round,
                    &high_qc,
                    last_tc.as_ref(),
                    self.me,
                    &self.key,
                    self.committee.chain_id(),
                ) {
                    Ok(timeout) => {
                        self.out.push(Action::PersistSafety(self.safety.data().clone()));
                        self.collect_timeout(timeout.clone());
                        timeout
                    }
                    Err(refusal) => {
                        self.refuse(refusal);
                        self.out
                            .push(Action::ScheduleTimeout { round, after_ms: self.pacemaker.timeout_ms() });
                        return;
                    }
                }
            }
        };
        if timeout.round == self.round() {
            self.broadcast_timeout(timeout);
            self.out.push(Action::ScheduleTimeout { round, after_ms: self.pacemaker.timeout_ms() });
        } else {
            // Our own timeout completed a TC and moved us on; still tell the others.
            self.broadcast_timeout(timeout);
        }
    }

    fn broadcast_timeout(&mut self, timeout: Timeout) {
        let last_tc = self.tree.highest_tc().filter(|tc| tc.round + 1 == timeout.round).cloned();
        self.out.push(Action::Broadcast(ConsensusMessage::Timeout { timeout, last_tc }));
    }

    fn on_block_request(&mut self, from: ValidatorIndex, digest: Digest, count: u16) {
        let count = usize::from(count).clamp(1, MAX_SYNC_BLOCKS);
        let blocks = self.tree.ancestors(&digest, count, MAX_SYNC_PAYLOAD);
        if !blocks.is_empty() {
            self.out.push(Action::Send(from, ConsensusMessage::BlockResponse { blocks }));
        }
    }

    fn on_block_response(&mut self, from: ValidatorIndex, blocks: Vec<Block>) -> Result<(), ConsensusError> {
        ensure!(
            blocks.len() <= MAX_SYNC_BLOCKS,
            ConsensusError::MalformedBlock("too many blocks in a response")
        );
        let mut accepted = Vec::new();
        for block in blocks {
            // Only blocks we asked for (or ancestors of them): nobody can fill our memory with
            // valid but useless blocks.
            if self.wanted.remove(&block.digest).is_none() {
                continue;
            }
            block.verify(&self.committee, &mut self.cache)?;
            let parent = *block.parent();
            if self.tree.insert(block.clone()) {
                self.out.push(Action::PersistBlock(block.clone()));
                accepted.push(block);
            }
            if !self.tree.knows(&parent.digest) && parent.height > self.tree.committed().height {
                self.wanted.insert(parent.digest, self.round());
            }
        }
        let mut oldest_missing = None;
        for block in accepted.iter().rev() {
            self.process_certificates(from, &block.parent_qc, block.timeout_cert.as_ref());
            let parent = block.parent();
            if self.wanted.contains_key(&parent.digest) && !self.tree.knows(&parent.digest) {
                oldest_missing = Some(parent.digest);
            }
        }
        if let Some(target) = self.pending_commit {
            self.try_commit(from, target);
        }
        if let Some(digest) = oldest_missing {
            if !self.tree.knows(&digest) {
                self.out.push(Action::Send(
                    from,
                    ConsensusMessage::BlockRequest { digest, count: MAX_SYNC_BLOCKS as u16 },
                ));
            }
        }
        Ok(())
    }

    /// Whether a proposal naming `digest` may be voted for: the batch is here, or a
    /// committed block already ordered it (its availability was certified then).
    fn holds_payload(&self, digest: &Digest) -> bool {
        self.available.contains(digest) || self.committed_payload.contains(digest)
    }

    fn on_payload_available(&mut self, digest: Digest) {
        if !self.committed_payload.contains(&digest) && self.available.insert(digest) {
            self.queue.push_back(digest);
        }
        if let Some(round) = self.deferred_proposal.filter(|r| *r == self.round()) {
            self.deferred_proposal = None;
            self.propose(round, true);
        }
        let ready = self
            .waiting_for_payload
            .as_ref()
            .is_some_and(|b| b.round == self.round() && b.payload.iter().all(|d| self.holds_payload(d)));
        if ready {
            if let Some(block) = self.waiting_for_payload.take() {
                self.try_vote(block);
            }
        }
    }

    /// Learns from (verified) certificates: highest QC, commits, round changes.
    fn process_certificates(&mut self, from: ValidatorIndex, qc: &QuorumCert, tc: Option<&TimeoutCert>) {
        self.process_qc(from, qc);
        if let Some(tc) = tc {
            self.process_tc(tc);
        }
    }

    fn process_qc(&mut self, from: ValidatorIndex, qc: &QuorumCert) {
        self.tree.update_highest_qc(qc);
        if qc.data.commits_parent() {
            self.try_commit(from, qc.data.parent);
        }
        let certified = qc.data.block;
        if certified.height > self.tree.committed().height && !self.tree.knows(&certified.digest) {
            self.request_block(from, certified.digest);
        }
        self.enter_round(qc.round() + 1, false);
    }

    fn process_tc(&mut self, tc: &TimeoutCert) {
        self.tree.update_highest_tc(tc);
        self.enter_round(tc.round + 1, true);
    }

    fn try_commit(&mut self, from: ValidatorIndex, target: BlockInfo) {
        if target.height <= self.tree.committed().height {
            return;
        }
        match self.tree.commit(&target) {
            Ok(blocks) => {
                if self.pending_commit.is_some_and(|p| p.height <= target.height) {
                    self.pending_commit = None;
                }
                let committed: BTreeSet<Digest> =
                    blocks.iter().flat_map(|b| b.payload.iter().copied()).collect();
                self.queue.retain(|d| !committed.contains(d));
                for digest in &committed {
                    self.available.remove(digest);
                    self.committed_payload.insert(*digest);
                }
                self.out.push(Action::Commit(blocks));
            }
            Err(PathError::Missing(block)) => {
                if self.pending_commit.is_none_or(|p| p.height < target.height) {
                    self.pending_commit = Some(target);
                }
                self.request_block(from, block.digest);
            }
            Err(PathError::Conflict) => {
                self.refuse(ConsensusError::Unsafe("certified block conflicts with the committed chain"))
            }
        }
    }

    /// Asks `from` (or, if that is us, the block's likely author) for a block, at most once per round.
    fn request_block(&mut self, from: ValidatorIndex, digest: Digest) {
        let round = self.round();
        if self.wanted.get(&digest).is_some_and(|asked| *asked >= round && round > 0) {
            return;
        }
        self.wanted.insert(digest, round);
        let peer = if from == self.me { self.committee.leader(round.saturating_sub(1)) } else { from };
        let peer =
            if peer == self.me { (self.me + 1) % self.committee.size() as ValidatorIndex } else { peer };
        self.out.push(Action::Send(
            peer,
            ConsensusMessage::BlockRequest { digest, count: MAX_SYNC_BLOCKS as u16 },
        ));
    }

    fn enter_round(&mut self, round: Round, after_timeout: bool) {
        if !self.pacemaker.advance(round, after_timeout) {
            return;
        }
        self.votes.prune_below(round.saturating_sub(1));
        self.timeouts.prune_below(round);
        self.waiting_for_payload = None;
        // Forget requests nobody answered for a while; they are re-issued when needed again.
        self.wanted.retain(|_, asked| *asked + 64 >= round);
        self.out.push(Action::ScheduleTimeout { round, after_ms: self.pacemaker.timeout_ms() });
        self.deferred_proposal = None;
        if self.committee.leader(round) == self.me {
            self.propose(round, false);
        }
    }

    /// Proposes for `round`; unless `now`, an idle leader defers (see `empty_block_delay_ms`).
    fn propose(&mut self, round: Round, now: bool) {
        // Having voted or timed out in `round` already (only possible after a restart), we
        // proposed in it or gave up on it: proposing now could sign a second, different block.
        if self.proposed_round >= round || self.safety.data().last_voted_round >= round {
            return;
        }
        let qc = self.tree.highest_qc().clone();
        let tc = self.tree.highest_tc().filter(|tc| tc.round + 1 == round).cloned();
        let justified = match &tc {
            Some(tc) => qc.round() >= tc.highest_qc_round(),
            None => qc.round() + 1 == round,
        };
        if !justified {
            self.refuse(ConsensusError::Unsafe("leader lacks the QC its round's TC requires"));
            return;
        }
        let in_flight = self.tree.uncommitted_payload(&qc.data.block);
        let payload: Vec<Digest> = self
            .queue
            .iter()
            .filter(|d| !in_flight.contains(*d))
            .take(self.config.max_block_payload)
            .copied()
            .collect();
        let idle = payload.is_empty() && in_flight.is_empty() && tc.is_none();
        if idle && !now && self.config.empty_block_delay_ms > 0 {
            self.deferred_proposal = Some(round);
            self.out.push(Action::ScheduleProposal { round, after_ms: self.config.empty_block_delay_ms });
            return;
        }
        // Only now: a deferred round must still be proposable when its delay runs out.
        self.proposed_round = round;
        let block = Block::new(&self.committee, &self.key, self.me, round, qc, tc, payload);
        self.cache_own_block(&block);
        if self.tree.insert(block.clone()) {
            self.out.push(Action::PersistBlock(block.clone()));
        }
        // Vote (and persist that vote) before the proposal leaves: a leader that crashes
        // after broadcasting then finds `last_voted_round == round` and never proposes a
        // second, different block for the round.
        match self.safety.vote(&block, self.me, &self.key, self.committee.chain_id()) {
            Ok(vote) => {
                self.out.push(Action::PersistSafety(self.safety.data().clone()));
                self.out.push(Action::Broadcast(ConsensusMessage::Proposal(block)));
                self.send_vote(vote);
            }
            Err(refusal) => self.refuse(refusal),
        }
    }

    fn cache_own_block(&mut self, block: &Block) {
        self.cache.insert_qc(&block.parent_qc, self.committee.chain_id());
    }

    fn refuse(&mut self, error: ConsensusError) {
        if self.refusals.len() == MAX_REFUSALS_KEPT {
            self.refusals.pop_front();
        }
        self.refusals.push_back(error);
    }
}
