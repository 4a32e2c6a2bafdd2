//! Which node the CLI talks to: `--node URL`, else `$BASTION_NODE`, else the first live
//! validator listed in `$BASTION_TESTNET_DIR/testnet.json` or
//! `./.bastion-testnet/testnet.json` (a validator that answers `GET /health` with 200
//! first; failing that, one that answers at all, so the caller sees why it is not ready).

use std::path::PathBuf;
use std::time::Duration;

use bastion_testnet::layout::{TestnetDir, DEFAULT_DIR};
use bastion_testnet::Manifest;
use thiserror::Error;

use crate::client::Client;

/// Environment variable with the node's URL.
pub const NODE_ENV: &str = "BASTION_NODE";
/// Environment variable with the local testnet's directory.
pub const TESTNET_DIR_ENV: &str = "BASTION_TESTNET_DIR";

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the node URL came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeSource {
    Flag,
    Env,
    /// Validator `index` of the testnet in `dir`.
    Testnet {
        dir: PathBuf,
        index: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    pub url: String,
    pub source: NodeSource,
}

#[derive(Debug, Error)]
#[error(
    "no node to talk to: no --node URL was given, ${NODE_ENV} is not set, and no live validator was found ({}). Pass --node URL, set ${NODE_ENV}, or start a local testnet with `bastion testnet up`",
    tried.join("; ")
)]
pub struct DiscoveryError {
    /// What was tried and why it did not do.
    pub tried: Vec<String>,
}

/// The testnet directories to look in: `$BASTION_TESTNET_DIR`, then `./.bastion-testnet`.
pub fn testnet_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(TESTNET_DIR_ENV).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    let default = PathBuf::from(DEFAULT_DIR);
    if !dirs.contains(&default) {
        dirs.push(default);
    }
    dirs
}

/// Finds the node from the flag, the environment and the testnet directories.
pub async fn discover(flag: Option<&str>) -> Result<Discovered, DiscoveryError> {
    discover_from(flag, std::env::var(NODE_ENV).ok().as_deref(), &testnet_dirs()).await
}

/// [`discover`] with its inputs explicit.
pub async fn discover_from(
    flag: Option<&str>,
    env: Option<&str>,
    testnet_dirs: &[PathBuf],
) -> Result<Discovered, DiscoveryError> {
    if let Some(url) = flag.filter(|u| !u.trim().is_empty()) {
        return Ok(Discovered { url: url.to_string(), source: NodeSource::Flag });
    }
    if let Some(url) = env.filter(|u| !u.trim().is_empty()) {
        return Ok(Discovered { url: url.to_string(), source: NodeSource::Env });
    }
    let mut tried = Vec::new();
    let mut answering = None;
    for dir in testnet_dirs {
        let Ok(layout) = TestnetDir::new(dir) else { continue };
        let manifest = match Manifest::load_dir(&layout) {
            Ok(m) => m,
            Err(_) => {
                tried.push(format!("no {}", layout.manifest().display()));
                continue;
            }
        };
        for v in &manifest.validators {
            let Ok(client) = Client::with_timeout(&v.api_url, PROBE_TIMEOUT) else { continue };
            match client.health().await {
                Ok(health) if health.ready => {
                    return Ok(Discovered {
                        url: client.base_url().to_string(),
                        source: NodeSource::Testnet { dir: layout.root().to_path_buf(), index: v.index },
                    });
                }
                // No answer at all.
                Err(e) if e.status().is_none() => {}
                // Answered, but not ready.
                _ => {
                    answering.get_or_insert(Discovered {
                        url: client.base_url().to_string(),
                        source: NodeSource::Testnet { dir: layout.root().to_path_buf(), index: v.index },
                    });
                }
            }
        }
        tried.push(format!("no validator in {} answers", layout.manifest().display()));
    }
    answering.ok_or(DiscoveryError { tried })
}
