//! Where a local testnet keeps its files.
//!
//! ```text
//! DIR/testnet.json                 the manifest (chain id; per validator: API URL, QUIC address, pid, data dir)
//! DIR/genesis.json                 shared by every validator
//! DIR/docker-compose.yml           written by `bastion testnet compose`
//! DIR/validator-<i>/config.toml    `bastion-node --config DIR/validator-<i>`
//! DIR/validator-<i>/key.json       the validator's ed25519 key
//! DIR/validator-<i>/data/          its database
//! DIR/validator-<i>/node.log       its stdout and stderr
//! ```
//!
//! Paths inside `config.toml` are relative to the validator's directory, so the whole
//! directory can be moved or mounted into a container as is.

use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "testnet.json";
pub const GENESIS_FILE: &str = "genesis.json";
pub const COMPOSE_FILE: &str = "docker-compose.yml";
pub const CONFIG_FILE: &str = "config.toml";
pub const KEY_FILE: &str = "key.json";
pub const DATA_DIR: &str = "data";
pub const LOG_FILE: &str = "node.log";
/// The default testnet directory, relative to the working directory.
pub const DEFAULT_DIR: &str = ".bastion-testnet";

/// A testnet directory (always absolute, so pids and paths in the manifest stay valid
/// whatever directory a later command runs from).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestnetDir {
    root: PathBuf,
}

impl TestnetDir {
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Ok(TestnetDir { root: std::path::absolute(root)? })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn manifest(&self) -> PathBuf {
        self.root.join(MANIFEST_FILE)
    }

    pub fn genesis(&self) -> PathBuf {
        self.root.join(GENESIS_FILE)
    }

    pub fn compose(&self) -> PathBuf {
        self.root.join(COMPOSE_FILE)
    }

    /// The directory `bastion-node --config` is given.
    pub fn validator(&self, index: u16) -> PathBuf {
        self.root.join(format!("validator-{index}"))
    }

    pub fn key(&self, index: u16) -> PathBuf {
        self.validator(index).join(KEY_FILE)
    }

    pub fn data(&self, index: u16) -> PathBuf {
        self.validator(index).join(DATA_DIR)
    }

    pub fn log(&self, index: u16) -> PathBuf {
        self.validator(index).join(LOG_FILE)
    }
}
