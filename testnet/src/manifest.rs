//! `DIR/testnet.json`: what is running where.
//!
//! Written by `bastion testnet up` (and updated by `restart`, `down`, ...); read by every
//! other `bastion testnet` command and by the CLI's node discovery. `pid` is `null` while a
//! validator is not running under the testnet tooling.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::byzantine::ByzantineMode;
use crate::config::ConfigError;
use crate::layout::TestnetDir;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub chain_id: String,
    #[serde(default)]
    pub consensus_only: bool,
    pub validators: Vec<ValidatorEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorEntry {
    pub index: u16,
    /// `http://127.0.0.1:<port>`.
    pub api_url: String,
    pub quic_addr: SocketAddr,
    /// The running `bastion-node` process, if any.
    #[serde(default)]
    pub pid: Option<u32>,
    pub data_dir: PathBuf,
    /// The Byzantine mode this validator is started in (`bastion testnet up --byzantine`);
    /// absent for an honest validator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byzantine: Option<ByzantineMode>,
}

impl ValidatorEntry {
    /// The API's socket address, parsed back from `api_url`.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        api_socket_addr(&self.api_url)
    }
}

/// `http://host:port[/]` → `host:port`, for IP hosts (all the testnet tooling writes).
pub fn api_socket_addr(url: &str) -> Option<SocketAddr> {
    let rest = url.strip_prefix("http://")?;
    rest.trim_end_matches('/').parse().ok()
}

/// The URL clients use for an API listening on `addr`.
pub fn api_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        serde_json::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.into(), message: e.to_string() })
    }

    pub fn load_dir(dir: &TestnetDir) -> Result<Self, ConfigError> {
        Self::load(&dir.manifest())
    }

    /// Writes atomically (temporary file, then rename), so a reader never sees half a file.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| ConfigError::Invalid { path: path.into(), message: e.to_string() })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n")
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| ConfigError::Write { path: path.into(), source })
    }

    pub fn save_dir(&self, dir: &TestnetDir) -> Result<(), ConfigError> {
        self.save(&dir.manifest())
    }

    pub fn validator(&self, index: u16) -> Option<&ValidatorEntry> {
        self.validators.iter().find(|v| v.index == index)
    }

    pub fn validator_mut(&mut self, index: u16) -> Option<&mut ValidatorEntry> {
        self.validators.iter_mut().find(|v| v.index == index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_round_trips() {
        let addr: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        assert_eq!(api_socket_addr(&api_url(addr)), Some(addr));
        assert_eq!(api_socket_addr("http://127.0.0.1:4567/"), Some(addr));
        assert_eq!(api_socket_addr("https://127.0.0.1:4567"), None);
    }

    #[test]
    fn json_shape_is_the_documented_one() {
        let manifest = Manifest {
            chain_id: "bastion-local-abc".into(),
            consensus_only: false,
            validators: vec![ValidatorEntry {
                index: 0,
                api_url: "http://127.0.0.1:1000".into(),
                quic_addr: "127.0.0.1:1001".parse().unwrap(),
                pid: Some(42),
                data_dir: "/tmp/x/validator-0/data".into(),
                byzantine: None,
            }],
        };
        let value = serde_json::to_value(&manifest).unwrap();
        assert_eq!(value["chain_id"], "bastion-local-abc");
        let v = &value["validators"][0];
        for field in ["index", "api_url", "quic_addr", "pid", "data_dir"] {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert_eq!(v["quic_addr"], "127.0.0.1:1001");
    }
}
