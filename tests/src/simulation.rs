//! The simulation driver: nodes, their persistent storage, and the event loop.
//!
//! Each node wraps a [`Core`]. Its "disk" keeps what the core asked to persist (safety data,
//! blocks) plus committed heights and payload batches; a crash discards the core and every
//! in-flight timer, a restart rebuilds the core with [`Core::recover`] from the disk. Honest
//! nodes also produce a payload batch every `batch_interval_ms` and broadcast it; peers
//! serve missing batches on request.

use std::collections::{BTreeMap, BTreeSet};

use bastion_consensus::{
    Action, Block, BlockInfo, Committee, Config, ConsensusMessage, Core, Event, Recovery, Round, SafetyData,
    ValidatorIndex,
};
use bastion_crypto::{Digest, DigestBuilder, KeyPair};

use crate::byzantine::{misbehave, Behaviour, Outgoing, Target};
use crate::invariants::InvariantChecker;
use crate::network::{Millis, NodeId, SimNetwork};
use crate::scenario::Scenario;

const CHAIN_ID: &str = "bastion-sim";

#[derive(Clone, Debug)]
enum Wire {
    Consensus(Box<ConsensusMessage>),
    Batch(Digest),
    BatchRequest(Vec<Digest>),
}

#[derive(Clone, Debug)]
enum SimEvent {
    Deliver { to: NodeId, from: ValidatorIndex, wire: Wire },
    Timer { node: NodeId, incarnation: u32, round: Round },
    ProposalDue { node: NodeId, incarnation: u32, round: Round },
    MakeBatch { node: NodeId },
    Crash { node: NodeId },
    Restart { node: NodeId },
}

#[derive(Default)]
struct Disk {
    safety: SafetyData,
    blocks: BTreeMap<Digest, Block>,
    committed: Option<BlockInfo>,
    batches: BTreeSet<Digest>,
    committed_batches: BTreeSet<Digest>,
}

struct SimNode {
    index: ValidatorIndex,
    behaviour: Behaviour,
    key: KeyPair,
    core: Option<Core>,
    incarnation: u32,
    disk: Disk,
    next_batch: u64,
}

/// What a run produced.
#[derive(Debug)]
pub struct SimReport {
    pub seed: u64,
    pub violations: Vec<String>,
    /// Highest height committed by any honest node.
    pub committed_height: u64,
    /// Lowest final committed height among honest nodes that are up at the end.
    pub min_honest_height: u64,
    /// Highest honest committed height when GST was reached.
    pub height_at_gst: u64,
    /// Rounds from GST until an honest node first committed above `height_at_gst`.
    pub rounds_to_resume: Option<u64>,
    pub messages_delivered: u64,
    pub messages_dropped: u64,
}

pub fn validator_keys(n: usize) -> Vec<KeyPair> {
    (0..n).map(|i| KeyPair::from_seed(DigestBuilder::new("sim/key").u64(i as u64).finish().0)).collect()
}

pub struct Simulation {
    scenario: Scenario,
    committee: Committee,
    nodes: Vec<SimNode>,
    net: SimNetwork<SimEvent>,
    checker: InvariantChecker,
    genesis: BlockInfo,
    honest: BTreeSet<NodeId>,
    round_at_gst: Option<Round>,
    height_at_gst: u64,
    rounds_to_resume: Option<u64>,
}

impl Simulation {
    pub fn new(scenario: Scenario) -> Self {
        let keys = validator_keys(scenario.n);
        let publics: Vec<_> = keys.iter().map(|k| k.public()).collect();
        let committee = Committee::new(CHAIN_ID, &publics).expect("simulation keys are valid");
        let mut nodes = Vec::new();
        let mut honest = BTreeSet::new();
        for node in 0..scenario.node_count() {
            let index = scenario.index_of(node);
            let behaviour = scenario.behaviours[usize::from(index)];
            if !scenario.is_byzantine(index) {
                honest.insert(node);
            }
            nodes.push(SimNode {
                index,
                behaviour,
                key: keys[usize::from(index)].clone(),
                core: None,
                incarnation: 0,
                disk: Disk::default(),
                next_batch: 0,
            });
        }
        let mut net =
            SimNetwork::new(scenario.seed, scenario.link.clone(), scenario.gst, scenario.partitions.clone());
        for crash in &scenario.crashes {
            net.schedule(crash.at, SimEvent::Crash { node: crash.node });
            net.schedule(crash.restart_at, SimEvent::Restart { node: crash.node });
        }
        let genesis = BlockInfo::genesis(CHAIN_ID);
        Simulation {
            scenario,
            committee,
            nodes,
            net,
            checker: InvariantChecker::default(),
            genesis,
            honest,
            round_at_gst: None,
            height_at_gst: 0,
            rounds_to_resume: None,
        }
    }

    fn config(&self) -> Config {
        Config {
            base_timeout_ms: self.scenario.base_timeout_ms,
            max_timeout_ms: 4 * self.scenario.base_timeout_ms,
            max_block_payload: 64,
            retain_committed_blocks: 10_000,
            broken_rule: self.scenario.broken_rule,
            empty_block_delay_ms: self.scenario.empty_block_delay_ms,
            ..Config::default()
        }
    }

    pub fn run(mut self) -> SimReport {
        for node in 0..self.nodes.len() {
            self.boot(node);
            let offset = node as Millis % self.scenario.batch_interval_ms;
            self.net.schedule(offset, SimEvent::MakeBatch { node });
        }
        while let Some(event) = self.net.next(self.scenario.end) {
            if self.round_at_gst.is_none() && self.net.now() >= self.scenario.gst {
                self.round_at_gst = Some(self.max_honest_round());
                self.height_at_gst = self.checker.highest_committed();
            }
            self.step(event);
        }
        self.report()
    }

    fn max_honest_round(&self) -> Round {
        self.honest.iter().filter_map(|&n| self.nodes[n].core.as_ref()).map(|c| c.round()).max().unwrap_or(0)
    }

    fn boot(&mut self, node: NodeId) {
        let config = self.config();
        let n = &mut self.nodes[node];
        let recovery = Recovery {
            safety: n.disk.safety.clone(),
            blocks: n.disk.blocks.values().cloned().collect(),
            committed: n.disk.committed,
        };
        let mut core = Core::recover(self.committee.clone(), n.index, n.key.clone(), config, recovery);
        let mut actions = core.start();
        for digest in n.disk.batches.difference(&n.disk.committed_batches) {
            actions.extend(core.handle(Event::PayloadAvailable(*digest)));
        }
        n.core = Some(core);
        self.execute(node, actions);
    }

    fn step(&mut self, event: SimEvent) {
        match event {
            SimEvent::Deliver { to, from, wire } => self.deliver(to, from, wire),
            SimEvent::Timer { node, incarnation, round } => {
                if self.nodes[node].incarnation == incarnation {
                    self.feed(node, Event::Timeout(round));
                }
            }
            SimEvent::ProposalDue { node, incarnation, round } => {
                if self.nodes[node].incarnation == incarnation {
                    self.feed(node, Event::ProposalDue(round));
                }
            }
            SimEvent::MakeBatch { node } => {
                let interval = self.scenario.batch_interval_ms;
                self.net.schedule(interval, SimEvent::MakeBatch { node });
                let n = &mut self.nodes[node];
                if n.core.is_none() || n.behaviour != Behaviour::Honest {
                    return;
                }
                let digest = DigestBuilder::new("sim/batch").u64(node as u64).u64(n.next_batch).finish();
                n.next_batch += 1;
                n.disk.batches.insert(digest);
                self.feed(node, Event::PayloadAvailable(digest));
                self.broadcast_wire(node, Wire::Batch(digest));
            }
            SimEvent::Crash { node } => {
                let n = &mut self.nodes[node];
                n.core = None;
                n.incarnation += 1;
            }
            SimEvent::Restart { node } => {
                if self.nodes[node].core.is_none() {
                    self.boot(node);
                }
            }
        }
    }

    fn deliver(&mut self, to: NodeId, from: ValidatorIndex, wire: Wire) {
        if self.nodes[to].core.is_none() {
            return;
        }
        match wire {
            Wire::Consensus(message) => self.feed(to, Event::Message(from, *message)),
            Wire::Batch(digest) => {
                if self.nodes[to].disk.batches.insert(digest) {
                    self.feed(to, Event::PayloadAvailable(digest));
                }
            }
            Wire::BatchRequest(digests) => {
                if self.nodes[to].behaviour == Behaviour::Silent {
                    return;
                }
                let held: Vec<Digest> =
                    digests.into_iter().filter(|d| self.nodes[to].disk.batches.contains(d)).collect();
                for digest in held {
                    self.send_wire(to, from, Wire::Batch(digest));
                }
            }
        }
    }

    fn feed(&mut self, node: NodeId, event: Event) {
        let Some(core) = self.nodes[node].core.as_mut() else { return };
        let trace = std::env::var_os("SIM_TRACE").is_some();
        if trace {
            eprintln!("[{}] node {node} r{} <- {}", self.net.now(), core.round(), describe(&event));
        }
        let actions = core.handle(event);
        for refusal in core.take_refusals() {
            if trace {
                eprintln!("[{}] node {node} refused: {refusal}", self.net.now());
            }
        }
        self.execute(node, actions);
    }

    fn execute(&mut self, node: NodeId, actions: Vec<Action>) {
        let honest = self.honest.contains(&node);
        for action in actions {
            match action {
                Action::Send(to, message) => self
                    .send_consensus(node, Outgoing { target: Target::One(to), message, spoofed_from: None }),
                Action::Broadcast(message) => {
                    self.send_consensus(node, Outgoing { target: Target::All, message, spoofed_from: None })
                }
                Action::PersistSafety(data) => {
                    if honest {
                        if let Some(vote) = &data.last_vote {
                            self.checker.record_vote(vote, CHAIN_ID);
                        }
                    }
                    self.nodes[node].disk.safety = data;
                }
                Action::PersistBlock(block) => {
                    self.nodes[node].disk.blocks.insert(block.digest, block);
                }
                Action::Commit(blocks) => self.commit(node, honest, blocks),
                Action::ScheduleTimeout { round, after_ms } => {
                    let incarnation = self.nodes[node].incarnation;
                    self.net.schedule(after_ms, SimEvent::Timer { node, incarnation, round });
                }
                Action::ScheduleProposal { round, after_ms } => {
                    let incarnation = self.nodes[node].incarnation;
                    self.net.schedule(after_ms, SimEvent::ProposalDue { node, incarnation, round });
                }
                Action::FetchPayload { digests, from } => {
                    let index = self.nodes[node].index;
                    for peer in self.nodes_of(from) {
                        self.net.send(
                            node,
                            peer,
                            SimEvent::Deliver {
                                to: peer,
                                from: index,
                                wire: Wire::BatchRequest(digests.clone()),
                            },
                        );
                    }
                }
            }
        }
    }

    fn commit(&mut self, node: NodeId, honest: bool, blocks: Vec<Block>) {
        if honest {
            self.checker.record_commit(node, self.genesis, &blocks);
            let top = blocks.last().map_or(0, |b| b.height);
            if self.rounds_to_resume.is_none() && top > self.height_at_gst {
                if let Some(at_gst) = self.round_at_gst {
                    let now = self.nodes[node].core.as_ref().map_or(at_gst, |c| c.round());
                    self.rounds_to_resume = Some(now.saturating_sub(at_gst));
                }
            }
        }
        let disk = &mut self.nodes[node].disk;
        if let Some(last) = blocks.last() {
            disk.committed = Some(last.info());
            let height = last.height;
            disk.blocks.retain(|_, b| b.height > height);
        }
        for block in &blocks {
            disk.committed_batches.extend(block.payload.iter().copied());
        }
    }

    fn nodes_of(&self, index: ValidatorIndex) -> Vec<NodeId> {
        (0..self.nodes.len()).filter(|&n| self.nodes[n].index == index).collect()
    }

    fn send_consensus(&mut self, node: NodeId, honest: Outgoing) {
        let n = &self.nodes[node];
        let outgoing = misbehave(n.behaviour, n.index, &n.key, &self.committee, honest);
        for out in outgoing {
            let from = out.spoofed_from.unwrap_or(self.nodes[node].index);
            let targets: Vec<NodeId> = match out.target {
                Target::One(index) => self.nodes_of(index),
                Target::All => (0..self.nodes.len()).filter(|&peer| peer != node).collect(),
            };
            for to in targets {
                let wire = Wire::Consensus(Box::new(out.message.clone()));
                self.net.send(node, to, SimEvent::Deliver { to, from, wire });
            }
        }
    }

    fn send_wire(&mut self, node: NodeId, to_index: ValidatorIndex, wire: Wire) {
        let from = self.nodes[node].index;
        for to in self.nodes_of(to_index) {
            self.net.send(node, to, SimEvent::Deliver { to, from, wire: wire.clone() });
        }
    }

    fn broadcast_wire(&mut self, node: NodeId, wire: Wire) {
        let from = self.nodes[node].index;
        for to in (0..self.nodes.len()).filter(|&peer| peer != node) {
            self.net.send(node, to, SimEvent::Deliver { to, from, wire: wire.clone() });
        }
    }

    fn report(self) -> SimReport {
        let min_honest_height = self
            .honest
            .iter()
            .filter(|&&n| self.nodes[n].core.is_some())
            .map(|&n| self.checker.tip(n))
            .min()
            .unwrap_or(0);
        SimReport {
            seed: self.scenario.seed,
            violations: self.checker.violations.clone(),
            committed_height: self.checker.highest_committed(),
            min_honest_height,
            height_at_gst: self.height_at_gst,
            rounds_to_resume: self.rounds_to_resume,
            messages_delivered: self.net.delivered,
            messages_dropped: self.net.dropped,
        }
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::Message(from, message) => format!("{} from {from}", message.kind()),
        Event::Timeout(round) => format!("timer r{round}"),
        Event::PayloadAvailable(d) => format!("payload {d:?}"),
        Event::ProposalDue(round) => format!("proposal due r{round}"),
    }
}
