//! Scenarios: everything about one simulated run, derived from a seed.
//!
//! A scenario fixes the committee size, which validators are Byzantine and how, twins,
//! the link model, partitions, crash-restarts, GST and the run length. `Scenario::random`
//! draws all of it from the seed, so printing the seed is enough to replay a failure.

use bastion_consensus::{BrokenRule, ValidatorIndex};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::byzantine::Behaviour;
use crate::network::{LinkModel, Millis, NodeId, Partition};

#[derive(Clone, Debug)]
pub struct Crash {
    pub node: NodeId,
    pub at: Millis,
    pub restart_at: Millis,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub n: usize,
    /// Per validator index.
    pub behaviours: Vec<Behaviour>,
    /// Validators that run a second, honest-looking instance (node id `n + k` for the k-th).
    pub twins: Vec<ValidatorIndex>,
    pub link: LinkModel,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<Crash>,
    pub gst: Millis,
    pub end: Millis,
    pub base_timeout_ms: u64,
    pub batch_interval_ms: Millis,
    pub broken_rule: Option<BrokenRule>,
    /// The leaders' idle delay before an empty proposal (0: never wait).
    pub empty_block_delay_ms: u64,
}

impl Scenario {
    /// A fault-free run of `n` validators.
    pub fn calm(seed: u64, n: usize) -> Self {
        Scenario {
            seed,
            n,
            behaviours: vec![Behaviour::Honest; n],
            twins: Vec::new(),
            link: LinkModel { min_delay_ms: 5, max_delay_ms: 50, loss: 0.0 },
            partitions: Vec::new(),
            crashes: Vec::new(),
            gst: 0,
            end: 20_000,
            base_timeout_ms: 1_000,
            batch_interval_ms: 100,
            broken_rule: None,
            empty_block_delay_ms: 0,
        }
    }

    /// Byzantine validators (`byzantine` of the `Behaviour::BYZANTINE` kinds, starting at
    /// `kind`), loss, partitions and crashes before GST, all drawn from `seed`.
    pub fn random(seed: u64, n: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let f = (n - 1) / 3;
        let mut scenario = Scenario::calm(seed, n);
        let byzantine = rng.gen_range(0..=f);
        if rng.gen_bool(0.3) {
            scenario.empty_block_delay_ms = rng.gen_range(50..=300);
        }
        let mut indices: Vec<usize> = (0..n).collect();
        indices.shuffle(&mut rng);
        let first_kind = (seed as usize) % Behaviour::BYZANTINE.len();
        for (k, &i) in indices.iter().take(byzantine).enumerate() {
            scenario.behaviours[i] = Behaviour::BYZANTINE[(first_kind + k) % Behaviour::BYZANTINE.len()];
        }
        let honest: Vec<usize> = indices[byzantine..].to_vec();
        scenario.gst = rng.gen_range(8_000..=15_000);
        scenario.end = scenario.gst + 30_000;
        scenario.link = LinkModel {
            min_delay_ms: rng.gen_range(1..=10),
            max_delay_ms: rng.gen_range(20..=150),
            loss: if rng.gen_bool(0.5) { rng.gen_range(0.0..0.2) } else { 0.0 },
        };
        if rng.gen_bool(0.5) {
            let mut nodes: Vec<NodeId> = (0..n).collect();
            nodes.shuffle(&mut rng);
            let cut = rng.gen_range(1..n);
            let start = rng.gen_range(0..scenario.gst / 2);
            let end = rng.gen_range(start + 1_000..=scenario.gst);
            scenario.partitions.push(Partition {
                start,
                end,
                groups: vec![nodes[..cut].to_vec(), nodes[cut..].to_vec()],
            });
        }
        // Honest crash-restarts, all back up before GST (safety holds regardless; liveness
        // after GST needs them back).
        for _ in 0..rng.gen_range(0..=2) {
            let node = honest[rng.gen_range(0..honest.len())];
            let at = rng.gen_range(0..scenario.gst - 2_000);
            let restart_at = rng.gen_range(at + 500..scenario.gst);
            scenario.crashes.push(Crash { node, at, restart_at });
        }
        scenario
    }

    /// Twins: validator 0 runs twice (nodes 0 and `n`), the two halves of the network see
    /// different instances, then the partition changes, then heals at GST.
    pub fn twins(seed: u64, n: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut scenario = Scenario::calm(seed, n);
        scenario.twins = vec![0];
        scenario.gst = 16_000;
        scenario.end = 36_000;
        scenario.link = LinkModel { min_delay_ms: 1, max_delay_ms: rng.gen_range(20..=100), loss: 0.0 };
        let twin: NodeId = n;
        let mut others: Vec<NodeId> = (1..n).collect();
        for (start, end) in [(0, 8_000), (8_000, 16_000)] {
            others.shuffle(&mut rng);
            let cut = rng.gen_range(1..others.len());
            let mut a = vec![0];
            a.extend_from_slice(&others[..cut]);
            let mut b = vec![twin];
            b.extend_from_slice(&others[cut..]);
            scenario.partitions.push(Partition { start, end, groups: vec![a, b] });
        }
        scenario
    }

    pub fn is_byzantine(&self, index: ValidatorIndex) -> bool {
        self.behaviours.get(usize::from(index)).is_some_and(|b| *b != Behaviour::Honest)
            || self.twins.contains(&index)
    }

    pub fn node_count(&self) -> usize {
        self.n + self.twins.len()
    }

    /// The validator index node `node` runs as.
    pub fn index_of(&self, node: NodeId) -> ValidatorIndex {
        if node < self.n {
            node as ValidatorIndex
        } else {
            self.twins[node - self.n]
        }
    }
}
