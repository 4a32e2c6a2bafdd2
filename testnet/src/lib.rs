//! Local testnets: the validator config and genesis file formats, generation of a testnet
//! directory, and supervision of local `bastion-node` processes.
//!
//! * [`config`]: `config.toml` ([`config::NodeConfig`]) and `genesis.json`
//!   ([`config::GenesisFile`]), read by `bastion-node`.
//! * [`dev_keys`]: the published dev accounts `dev0` … `dev9`, funded on every local testnet.
//! * [`layout`], [`manifest`]: the testnet directory and its `testnet.json`.
//! * [`generate`]: making or reusing a testnet directory (keys, genesis, free ports).
//! * [`supervisor`], [`process`], [`probe`], [`logs`]: starting validators, waiting until
//!   they are ready, failing fast with their logs, stopping them.
//! * [`byzantine`]: the names of the Byzantine modes a validator can run for fault tests.
//! * [`compose`]: the same testnet as a `docker-compose.yml`.
//! * [`faults`], [`relay`]: network faults (partition, delay, loss) between the validators
//!   of a `--faults` testnet, enforced by a UDP relay on 127.0.0.1.
//!
//! Everything here is synchronous (threads and `std::process`): the node links this crate
//! for its config types, and the supervisor needs nothing more.

pub mod byzantine;
pub mod compose;
pub mod config;
pub mod dev_keys;
mod error;
pub mod faults;
pub mod generate;
pub mod layout;
pub mod logs;
pub mod manifest;
pub mod ports;
pub mod probe;
pub mod process;
pub mod relay;
pub mod supervisor;

pub use error::TestnetError;
pub use generate::{setup, SetupOptions, SetupOutcome, Testnet};
pub use layout::TestnetDir;
pub use manifest::{Manifest, ValidatorEntry};
pub use supervisor::{launch, LaunchEvent, LaunchOptions, RunningTestnet};
