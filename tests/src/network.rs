//! The simulated network: a virtual clock and a queue of deliveries.
//!
//! Messages are delayed by a uniformly random number of milliseconds, dropped with a given
//! probability, and dropped between nodes on different sides of a partition. Before GST the
//! network may be arbitrarily bad; from GST on there is no loss and no partition. Ordering
//! between two messages on one link is not preserved (delays are independent), which also
//! models reordering. All randomness comes from one seeded RNG.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A node in the simulation (validators may have twins, so this is not a validator index).
pub type NodeId = usize;
pub type Millis = u64;

#[derive(Clone, Debug)]
pub struct LinkModel {
    pub min_delay_ms: Millis,
    pub max_delay_ms: Millis,
    /// Probability in [0, 1) that a message is lost (before GST only).
    pub loss: f64,
}

/// Nodes in different groups cannot talk during `[start, end)`.
#[derive(Clone, Debug)]
pub struct Partition {
    pub start: Millis,
    pub end: Millis,
    pub groups: Vec<Vec<NodeId>>,
}

impl Partition {
    fn separates(&self, now: Millis, a: NodeId, b: NodeId) -> bool {
        if now < self.start || now >= self.end {
            return false;
        }
        let group_of = |n: NodeId| self.groups.iter().position(|g| g.contains(&n));
        group_of(a) != group_of(b)
    }
}

pub struct SimNetwork<T> {
    now: Millis,
    seq: u64,
    queue: BinaryHeap<Reverse<(Millis, u64, usize)>>,
    payloads: Vec<Option<T>>,
    free: Vec<usize>,
    rng: ChaCha8Rng,
    link: LinkModel,
    gst: Millis,
    partitions: Vec<Partition>,
    pub delivered: u64,
    pub dropped: u64,
}

impl<T> SimNetwork<T> {
    pub fn new(seed: u64, link: LinkModel, gst: Millis, partitions: Vec<Partition>) -> Self {
        SimNetwork {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            payloads: Vec::new(),
            free: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x006e_6574_776f_726b),
            link,
            gst,
            partitions,
            delivered: 0,
            dropped: 0,
        }
    }

    pub fn now(&self) -> Millis {
        self.now
    }

    pub fn gst(&self) -> Millis {
        self.gst
    }

    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Sends over the network from `from` to `to`: may be lost or partitioned away.
    pub fn send(&mut self, from: NodeId, to: NodeId, item: T) {
        let now = self.now;
        if from != to {
            let lost = now < self.gst && self.link.loss > 0.0 && self.rng.gen_bool(self.link.loss);
            if lost || self.partitions.iter().any(|p| p.separates(now, from, to)) {
                self.dropped += 1;
                return;
            }
        }
        let delay = self.rng.gen_range(self.link.min_delay_ms..=self.link.max_delay_ms);
        self.schedule(delay, item);
    }

    /// Schedules a local event (timer) that the network cannot lose.
    pub fn schedule(&mut self, after_ms: Millis, item: T) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.payloads[slot] = Some(item);
                slot
            }
            None => {
                self.payloads.push(Some(item));
                self.payloads.len() - 1
            }
        };
        self.seq += 1;
        self.queue.push(Reverse((self.now + after_ms, self.seq, slot)));
    }

    /// The next event, advancing the clock; `None` when nothing is left before `until`.
    pub fn next(&mut self, until: Millis) -> Option<T> {
        let Reverse((at, _, slot)) = *self.queue.peek()?;
        if at > until {
            return None;
        }
        self.queue.pop();
        self.now = at;
        self.free.push(slot);
        self.delivered += 1;
        self.payloads[slot].take()
    }
}
