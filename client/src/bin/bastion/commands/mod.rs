//! One module per command group; each returns the exit class of its outcome.

pub mod account;
pub mod bench;
pub mod keys;
pub mod query;
pub mod send;
pub mod testnet;
pub mod watch;
