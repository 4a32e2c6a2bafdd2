//! The consensus driver: feeds the pure core and carries out what it asks, in order.
//!
//! It owns the [`Core`] and its timers. The crucial ordering: an
//! [`Action::PersistSafety`] is written with fsync *before* the next action runs, so a
//! vote or timeout never leaves the node unless the data that forbids signing a conflicting
//! one is on disk. If that write fails, the validator halts instead of sending.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bastion_consensus::{Action, Block, ConsensusMessage, Core, Event, Round};
use bastion_crypto::Digest;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::byzantine::Byzantine;
use crate::fetcher::BatchFetcher;
use crate::state::NodeState;
use crate::wire::NetMessage;

/// What the driver reacts to besides its own timers. (Moved once into the driver; boxing the
/// message would only add an allocation.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum DriverInput {
    Message(u16, ConsensusMessage),
    PayloadAvailable(Digest),
}

/// How long a starting validator waits for all its peers to be connected.
const CONNECT_WAIT: Duration = Duration::from_secs(2);

pub struct Driver {
    core: Core,
    state: Arc<NodeState>,
    fetcher: Arc<BatchFetcher>,
    inputs: mpsc::Receiver<DriverInput>,
    committed: mpsc::Sender<Vec<Block>>,
    round_timer: Option<(Instant, Round)>,
    proposal_timer: Option<(Instant, Round)>,
    /// Set only by `bastion-node --byzantine`: rewrites what the core sends (fault tests).
    byzantine: Option<Byzantine>,
}

impl Driver {
    pub fn new(
        core: Core,
        state: Arc<NodeState>,
        fetcher: Arc<BatchFetcher>,
        inputs: mpsc::Receiver<DriverInput>,
        committed: mpsc::Sender<Vec<Block>>,
    ) -> Self {
        Driver {
            core,
            state,
            fetcher,
            inputs,
            committed,
            round_timer: None,
            proposal_timer: None,
            byzantine: None,
        }
    }

    /// Makes this validator misbehave as `byzantine` says (fault testing only).
    pub fn with_byzantine(mut self, byzantine: Byzantine) -> Self {
        self.byzantine = Some(byzantine);
        self
    }

    /// Runs until the input channel closes or the validator halts.
    pub async fn run(mut self, initial_payload: Vec<Digest>) {
        self.await_peers().await;
        let mut actions = self.core.start();
        for digest in initial_payload {
            actions.extend(self.core.handle(Event::PayloadAvailable(digest)));
        }
        if !self.execute(actions).await {
            return;
        }
        loop {
            let far = Instant::now() + Duration::from_secs(3_600);
            let round_at = self.round_timer.map_or(far, |(at, _)| at);
            let proposal_at = self.proposal_timer.map_or(far, |(at, _)| at);
            let event = tokio::select! {
                input = self.inputs.recv() => match input {
                    None => return,
                    Some(DriverInput::Message(from, message)) => Event::Message(from, message),
                    Some(DriverInput::PayloadAvailable(digest)) => Event::PayloadAvailable(digest),
                },
                _ = sleep_until(round_at), if self.round_timer.is_some() => {
                    let Some((_, round)) = self.round_timer.take() else { continue };
                    if round == self.core.round() {
                        self.state.metrics.round_timeouts.inc();
                        tracing::info!(round, "round timed out");
                    }
                    Event::Timeout(round)
                }
                _ = sleep_until(proposal_at), if self.proposal_timer.is_some() => {
                    let Some((_, round)) = self.proposal_timer.take() else { continue };
                    Event::ProposalDue(round)
                }
            };
            if self.state.halt_reason().is_some() {
                return;
            }
            let actions = self.core.handle(event);
            for refusal in self.core.take_refusals() {
                tracing::debug!(%refusal, "consensus refused a message");
            }
            if !self.execute(actions).await {
                return;
            }
            let round = self.core.round();
            self.state.round.store(round, Ordering::Relaxed);
            self.state.metrics.round.set(round as i64);
        }
    }

    /// Gives the peers' connections up to [`CONNECT_WAIT`] before the first round: a
    /// proposal or vote sent to a peer not yet connected is lost, and the round times out
    /// (every fresh testnet used to start with one or two round timeouts).
    async fn await_peers(&self) {
        let peers = self.state.committee.len().saturating_sub(1);
        let deadline = Instant::now() + CONNECT_WAIT;
        while self.state.connected_peers() < peers && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::debug!(connected = self.state.connected_peers(), peers, "starting consensus");
    }

    /// Carries out `actions` in order; false if the validator must stop.
    async fn execute(&mut self, actions: Vec<Action>) -> bool {
        let actions = match &mut self.byzantine {
            Some(byzantine) => byzantine.distort(actions),
            None => actions,
        };
        for action in actions {
            match action {
                Action::Send(to, message) => {
                    if let Err(e) = self.state.transport.send(to, &NetMessage::Consensus(message)) {
                        tracing::debug!(to, error = %e, "consensus message not sent");
                    }
                }
                Action::Broadcast(message) => {
                    if let Err(e) = self.state.transport.broadcast(&NetMessage::Consensus(message)) {
                        tracing::debug!(error = %e, "consensus broadcast failed");
                    }
                }
                Action::PersistSafety(data) => {
                    let storage = self.state.storage.clone();
                    if let Err(e) = tokio::task::block_in_place(|| storage.put_safety(&data)) {
                        self.state.halt(format!("cannot persist safety data: {e}"));
                        return false;
                    }
                }
                Action::PersistBlock(block) => {
                    let storage = self.state.storage.clone();
                    if let Err(e) = tokio::task::block_in_place(|| storage.put_block(&block)) {
                        tracing::warn!(error = %e, "cannot store a block; it will be fetched again if needed");
                    }
                }
                Action::Commit(blocks) => {
                    let storage = self.state.storage.clone();
                    if let Err(e) = tokio::task::block_in_place(|| storage.commit_blocks(&blocks)) {
                        self.state.halt(format!("cannot persist committed blocks: {e}"));
                        return false;
                    }
                    if let Some(last) = blocks.last() {
                        self.state.committed_height.store(last.height, Ordering::SeqCst);
                        self.state.metrics.committed_height.set(last.height as i64);
                        tracing::debug!(height = last.height, round = last.round, "committed");
                    }
                    // Bounded: if execution falls behind, consensus waits for it.
                    if self.committed.send(blocks).await.is_err() {
                        return false;
                    }
                }
                Action::ScheduleTimeout { round, after_ms } => {
                    self.round_timer = Some((Instant::now() + Duration::from_millis(after_ms), round));
                }
                Action::ScheduleProposal { round, after_ms } => {
                    self.proposal_timer = Some((Instant::now() + Duration::from_millis(after_ms), round));
                }
                Action::FetchPayload { digests, from } => self.fetcher.want(&digests, from),
            }
        }
        true
    }
}
