//! The command line (clap). Every command takes `--json` and `--node URL`; every
//! `testnet` subcommand takes `--dir DIR`.

use std::path::PathBuf;

use bastion_client::discovery::TESTNET_DIR_ENV;
use bastion_client::BlockId;
use bastion_crypto::Digest;
use bastion_ledger::fuel::DEFAULT_FUEL_LIMIT;
use bastion_testnet::byzantine::ByzantineAssignment;
use clap::{Args, Parser, Subcommand};

pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  usage or local error (bad arguments, unknown key, unreadable file), or a node-side internal error
  2  node unreachable or not ready (no node found, connection failed, HTTP 503, event stream lost)
  3  rejected by the node (HTTP 4xx, e.g. nonce_too_low, not_found), or the transaction was rejected/expired
  4  timed out waiting: the transaction is still pending (it has not failed)
  5  proof verification failed
  6  the transaction committed but failed (committed_failed)";

#[derive(Debug, Parser)]
#[command(name = "bastion", version, about = "Bastion CLI: local testnets, keys, transactions, queries", after_help = EXIT_CODES)]
pub struct Cli {
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The validator API to talk to (default: $BASTION_NODE, else the local testnet).
    #[arg(long, global = true, value_name = "URL")]
    pub node: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local testnet of `bastion-node` processes.
    Testnet(TestnetArgs),
    /// Manage named keys in $BASTION_HOME/keys (dev0..dev9 are built in).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show an account's balance and nonce (with --proof: verified against the committee).
    Account(AccountArgs),
    /// Send native tokens.
    Transfer(TransferArgs),
    /// Deploy a contract from a .wat or .wasm file.
    Deploy(DeployArgs),
    /// Call a contract method in a transaction.
    Call(CallArgs),
    /// Run a contract method read-only (no transaction).
    View(ViewArgs),
    /// Show a transaction's status and receipt.
    Tx(TxArgs),
    /// Show a committed block.
    Block(BlockArgs),
    /// Stream committed blocks and their events until Ctrl-C.
    Watch(WatchArgs),
    /// Load test: TPS, latency percentiles, timeouts.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// The testnet directory.
    #[arg(long, global = true, value_name = "DIR", default_value = ".bastion-testnet", env = TESTNET_DIR_ENV)]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: TestnetCommand,
}

#[derive(Debug, Subcommand)]
pub enum TestnetCommand {
    /// Create (or reuse) the testnet, start its validators and wait until they are ready.
    Up(UpArgs),
    /// Show each validator's process, health and height.
    Status,
    /// Stop every validator of the testnet.
    Down,
    /// SIGKILL one validator (fault injection).
    Kill { index: u16 },
    /// Stop (if running) and start one validator again.
    Restart { index: u16 },
    /// Print a validator's log.
    Logs(LogsArgs),
    /// Write DIR/docker-compose.yml running the same testnet in containers.
    Compose,
    /// Cut the validators of a `--faults` testnet into groups that cannot reach each other:
    /// `partition 0,1,2 3`. Validators not listed form one more group.
    Partition {
        /// Comma-separated validator indexes; one argument per group.
        #[arg(required = true, value_name = "GROUP", value_parser = parse_index_list)]
        groups: Vec<IndexList>,
    },
    /// Remove every partition, delay and loss of a `--faults` testnet.
    Heal,
    /// Delay every datagram a validator sends by MS milliseconds (a `--faults` testnet):
    /// round trips between two delayed validators grow by 2 x MS. 0 removes the delay.
    Latency {
        ms: u32,
        /// Only these validators (comma-separated indexes; default: all).
        #[arg(long, value_name = "I,J,...", value_parser = parse_index_list)]
        only: Option<IndexList>,
    },
    /// Drop PCT percent of the datagrams a validator sends, at random (a `--faults`
    /// testnet). 0 removes the loss.
    Loss {
        pct: f64,
        /// Only these validators (comma-separated indexes; default: all).
        #[arg(long, value_name = "I,J,...", value_parser = parse_index_list)]
        only: Option<IndexList>,
    },
    /// Run the network relay of a `--faults` testnet (`up` starts it).
    #[command(hide = true)]
    Relay,
}

/// Validator indexes, as `0,1,2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexList(pub Vec<u16>);

fn parse_index_list(s: &str) -> Result<IndexList, String> {
    s.split(',')
        .map(|part| part.trim().parse::<u16>().map_err(|_| format!("`{part}` is not a validator index")))
        .collect::<Result<Vec<_>, _>>()
        .map(IndexList)
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of validators (default 4, or the existing testnet's count).
    #[arg(long, value_name = "N")]
    pub validators: Option<usize>,
    /// Leave the validators running in the background and exit.
    #[arg(long)]
    pub detach: bool,
    /// Wipe the existing testnet (keys, genesis, data) and make a new one.
    #[arg(long)]
    pub reset: bool,
    /// Order opaque transactions without signature checks or execution (benchmarking).
    #[arg(long)]
    pub consensus_only: bool,
    /// Route validator-to-validator traffic through a relay on 127.0.0.1, so that
    /// `bastion testnet partition | heal | latency | loss` can shape it (a new testnet, or
    /// one made with it).
    #[arg(long)]
    pub faults: bool,
    /// Seconds each validator may take to become ready.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub ready_timeout: u64,
    /// Fault testing: validator I runs Byzantine MODE (equivocate, double-vote,
    /// bad-signatures, silent, stale). Repeatable; the others run honestly. Safety is only
    /// promised with at most f = (n - 1) / 3 of them.
    #[arg(long, value_name = "I=MODE")]
    pub byzantine: Vec<ByzantineAssignment>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub index: u16,
    /// Keep printing what is appended (until Ctrl-C).
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new random key.
    New { name: String },
    /// List the key ring's keys and the dev keys.
    List,
    /// Show a key's address (with --secret, its seed).
    Show {
        name: String,
        /// Also print the secret seed.
        #[arg(long)]
        secret: bool,
    },
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    /// A key name or a 64-hex-digit address.
    pub who: String,
    /// Ask for a proof and verify it against the committee's keys.
    #[arg(long)]
    pub proof: bool,
    /// The genesis.json whose committee to verify against (default: the local testnet's
    /// genesis if it is the node's chain, else the committee the node reports).
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
}

/// Options shared by every command that sends a transaction.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Wait for the transaction to commit and show its receipt.
    #[arg(long)]
    pub wait: bool,
    /// Fuel limit (the most fuel the sender pays for).
    #[arg(long, value_name = "FUEL", default_value_t = DEFAULT_FUEL_LIMIT)]
    pub fuel: u64,
    /// Seconds to wait with --wait before reporting the transaction as still pending.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The sending key's name.
    #[arg(long, value_name = "KEY")]
    pub from: String,
    /// A key name or a 64-hex-digit address.
    #[arg(long, value_name = "NAME|ADDRESS")]
    pub to: String,
    #[arg(long, value_parser = parse_amount)]
    pub amount: u64,
    #[command(flatten)]
    pub send: SendArgs,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[arg(long, value_name = "KEY")]
    pub from: String,
    /// The contract: WebAssembly text (.wat) or binary (.wasm).
    pub file: PathBuf,
    /// Input of the contract's `init` method, as hex.
    #[arg(long, value_name = "HEX", value_parser = parse_hex, default_value = "")]
    pub init: HexBytes,
    #[command(flatten)]
    pub send: SendArgs,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    #[arg(long, value_name = "KEY")]
    pub from: String,
    /// The contract's address (64 hex digits).
    #[arg(value_parser = parse_address)]
    pub contract: bastion_ledger::Address,
    pub method: String,
    /// The method's input, as hex.
    #[arg(long, value_name = "HEX", value_parser = parse_hex, default_value = "")]
    pub args: HexBytes,
    #[command(flatten)]
    pub send: SendArgs,
}

#[derive(Debug, Args)]
pub struct ViewArgs {
    #[arg(value_parser = parse_address)]
    pub contract: bastion_ledger::Address,
    pub method: String,
    #[arg(long, value_name = "HEX", value_parser = parse_hex, default_value = "")]
    pub args: HexBytes,
    /// The genesis.json whose committee to verify against (default: the local testnet's
    /// genesis if it is the node's chain, else the committee the node reports).
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TxArgs {
    #[arg(value_parser = parse_digest)]
    pub hash: Digest,
    /// Wait until the transaction is final.
    #[arg(long)]
    pub wait: bool,
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct BlockArgs {
    /// A height, or `latest`.
    #[arg(default_value = "latest")]
    pub id: BlockId,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Start at this height (default: new blocks only).
    #[arg(long, value_name = "HEIGHT")]
    pub from: Option<u64>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Offered load, transactions per second.
    #[arg(long, value_name = "TX/S", default_value_t = 1000)]
    pub rate: u64,
    /// Seconds of load.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub duration: u64,
    /// Sending accounts: dev0..dev9, then the testnet's load-test accounts (up to 74 in all).
    /// Each sends to one validator, at rate / K.
    #[arg(long, value_name = "K", default_value_t = 40)]
    pub accounts: usize,
    /// Opaque transactions for a `--consensus-only` testnet.
    #[arg(long)]
    pub opaque: bool,
    /// Size of each opaque transaction in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 512, requires = "opaque")]
    pub tx_size: usize,
    /// Most requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub concurrency: usize,
    /// Most transactions per request (`POST /v1/transactions/batch`); 1 posts each alone.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub batch: usize,
}

/// Bytes given on the command line as hex.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

fn parse_hex(s: &str) -> Result<HexBytes, String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(s).map(HexBytes).map_err(|e| format!("not hex: {e}"))
}

fn parse_address(s: &str) -> Result<bastion_ledger::Address, String> {
    bastion_ledger::Address::from_hex(s).map_err(|e| format!("not a 64-hex-digit address: {e}"))
}

fn parse_digest(s: &str) -> Result<Digest, String> {
    Digest::from_hex(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| format!("not a 64-hex-digit hash: {e}"))
}

/// A token amount: digits, optionally grouped with `_` (`1_000_000`).
fn parse_amount(s: &str) -> Result<u64, String> {
    let digits: String = s.chars().filter(|c| *c != '_').collect();
    digits.parse().map_err(|_| format!("{s:?} is not a whole number of tokens (0 to {})", u64::MAX))
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
