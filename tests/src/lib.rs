//! Test infrastructure for Bastion.
//!
//! [`simulation`] runs `n` consensus cores over a seeded, simulated network with virtual
//! time: per-message delay and loss, partitions that heal, crash-restart from persisted
//! state, and Byzantine validators ([`byzantine`]). [`invariants`] checks every run for
//! safety (no conflicting commits, no honest double votes) and liveness after the network
//! heals. Everything is a function of the seed: a failing seed replays exactly.
//! [`localnet`] runs real `bastion-node` processes on 127.0.0.1 for end-to-end tests.

pub mod byzantine;
pub mod invariants;
pub mod localnet;
pub mod network;
pub mod scenario;
pub mod simulation;
