//! The Bastion validator.
//!
//! Data flows one way: [`transport`] → [`inbound`] dispatch → consensus [`driver`] (and
//! [`batcher`]/[`mempool`] for payload) → [`storage`] → [`execution`] → [`api`].
//! [`node::run`] wires the tasks together; [`state::NodeState`] is what they share.

pub mod api;
pub mod api_impl;
pub mod batch;
pub mod batcher;
pub mod byzantine;
pub mod certifier;
pub mod driver;
pub mod execution;
pub mod fetcher;
pub mod inbound;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod state;
pub mod storage;
pub mod transport;
pub mod verifier;
pub mod views;
pub mod wire;

pub use node::{run, run_with};
