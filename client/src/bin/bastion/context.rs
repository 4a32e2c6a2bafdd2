//! What commands that talk to a node share: finding the node, the key ring, and the
//! committee whose keys proofs are checked against.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bastion_client::discovery::{discover, testnet_dirs, Discovered, NodeSource};
use bastion_client::keyring::Keyring;
use bastion_client::Client;
use bastion_crypto::PublicKey;
use bastion_testnet::config::GenesisFile;
use bastion_testnet::layout::GENESIS_FILE;

use crate::output::Out;

pub struct Context {
    pub out: Out,
    pub node_flag: Option<String>,
}

/// A connected node.
pub struct Node {
    pub client: Client,
    pub discovered: Discovered,
}

/// The committee to verify proofs against.
pub struct Committee {
    pub chain_id: String,
    pub keys: Vec<PublicKey>,
    /// Where the keys come from, for the output.
    pub source: String,
    /// False when the keys are the ones the node itself reported.
    pub trusted: bool,
}

impl Context {
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        Ok(Keyring::from_env()?)
    }

    pub async fn node(&self) -> anyhow::Result<Node> {
        let discovered = discover(self.node_flag.as_deref()).await?;
        let client = Client::new(&discovered.url)?;
        Ok(Node { client, discovered })
    }
}

/// How long a proven query waits for the node's latest execution to be certified.
const CERTIFY_WAIT: Duration = Duration::from_secs(3);

impl Node {
    /// Waits (briefly) until the state root of everything this node has executed is
    /// certified, so a proven answer right after `--wait` shows the transaction's effect:
    /// proofs are read at the latest certified height, which trails execution by a block
    /// or so. Gives up quietly after [`CERTIFY_WAIT`]; the answer then says its height.
    pub async fn await_certified_tip(&self) -> anyhow::Result<()> {
        let mut status = self.client.status().await?;
        let executed = status.executed_height;
        let deadline = Instant::now() + CERTIFY_WAIT;
        while status.certified_height < executed && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            status = self.client.status().await?;
        }
        Ok(())
    }

    /// The committee from (in order) `--genesis FILE`, the local testnet's genesis when it
    /// is the node's chain, else the validators the node reports (untrusted: a lying node
    /// could report keys it controls).
    pub async fn committee(&self, genesis_flag: Option<&Path>) -> anyhow::Result<Committee> {
        if let Some(path) = genesis_flag {
            let genesis = GenesisFile::load(path)
                .with_context(|| format!("cannot use --genesis {}", path.display()))?;
            return Ok(from_genesis(genesis, path));
        }
        let status = self.client.status().await?;
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let NodeSource::Testnet { dir, .. } = &self.discovered.source {
            candidates.push(dir.join(GENESIS_FILE));
        }
        candidates.extend(testnet_dirs().into_iter().map(|d| d.join(GENESIS_FILE)));
        for path in candidates {
            if let Ok(genesis) = GenesisFile::load(&path) {
                if genesis.chain_id == status.chain_id {
                    return Ok(from_genesis(genesis, &path));
                }
            }
        }
        Ok(Committee {
            chain_id: status.chain_id,
            keys: status.validators.iter().map(|v| v.public_key).collect(),
            source: format!("reported by the node {}", self.client.base_url()),
            trusted: false,
        })
    }
}

fn from_genesis(genesis: GenesisFile, path: &Path) -> Committee {
    Committee {
        chain_id: genesis.chain_id,
        keys: genesis.validators.iter().map(|v| v.public_key).collect(),
        source: path.display().to_string(),
        trusted: true,
    }
}
