//! End-to-end tests of the real `bastion` CLI binary against a real local testnet that the
//! CLI itself starts (`bastion testnet up --detach`) and stops (`bastion testnet down`, from
//! a drop guard so it also runs when a test panics).
//!
//! Every CLI call runs with `--json` and a deadline: a child that overruns is killed and
//! the test fails with what it printed so far.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bastion_ledger::{Address, TransactionBuilder};
use bastion_tests::localnet::{http, node_binary};
use serde_json::{json, Value};

/// Deadline of one ordinary CLI call (a `--wait` waits up to 60 s inside the CLI).
const CALL_LIMIT: Duration = Duration::from_secs(90);
/// Deadline of `testnet up` (it waits for every validator's `/health`).
const UP_LIMIT: Duration = Duration::from_secs(120);

/// The `bastion` CLI binary: `$BASTION_BIN`, else next to `bastion-node`.
/// The CLI's published dev key `dev<i>` (SHA-256 seeds, funded by every `bastion testnet`).
/// Not `bastion_tests::localnet::dev_key`: that one derives a different key (domain-separated
/// digest) that only `LocalNet`'s own genesis funds.
fn dev_key(i: u8) -> bastion_crypto::KeyPair {
    bastion_testnet::dev_keys::dev_key(i).expect("dev key index")
}

fn cli_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BASTION_BIN") {
        return PathBuf::from(path);
    }
    node_binary().parent().expect("binary dir").join("bastion")
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/contracts")
}

/// What one CLI run produced.
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// One testnet directory and home for the CLI, in a temp dir.
struct Cli {
    temp: tempfile::TempDir,
    home: PathBuf,
    testnet_dir: PathBuf,
    logs: PathBuf,
    runs: AtomicU32,
}

impl Cli {
    fn new() -> Self {
        let temp = tempfile::Builder::new().prefix("bastion-cli-e2e-").tempdir().expect("temp dir");
        let home = temp.path().join("home");
        let testnet_dir = temp.path().join(".bastion-testnet");
        let logs = temp.path().join("cli-logs");
        std::fs::create_dir_all(&home).expect("home dir");
        std::fs::create_dir_all(&logs).expect("logs dir");
        Cli { temp, home, testnet_dir, logs, runs: AtomicU32::new(0) }
    }

    fn command(&self, args: &[&str]) -> Command {
        let bin = cli_binary();
        let bin_dir = bin.parent().expect("binary dir").to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin_dir];
        dirs.extend(std::env::split_paths(&path));
        let mut command = Command::new(&bin);
        command
            .args(args)
            .current_dir(self.temp.path())
            .env("BASTION_HOME", &self.home)
            .env("BASTION_TESTNET_DIR", &self.testnet_dir)
            .env("PATH", std::env::join_paths(dirs).expect("PATH"))
            .env_remove("BASTION_NODE")
            .stdin(Stdio::null());
        command
    }

    /// Output files for one run. Files rather than pipes: a detached validator inherits
    /// nothing from them that could keep a reader waiting.
    fn output_files(&self) -> (PathBuf, PathBuf) {
        let n = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        (self.logs.join(format!("{n}.out")), self.logs.join(format!("{n}.err")))
    }

    fn spawn(&self, args: &[&str]) -> (Child, PathBuf, PathBuf) {
        let (out, err) = self.output_files();
        let child = self
            .command(args)
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", cli_binary().display()));
        (child, out, err)
    }

    /// Runs `bastion <args>` to completion within `limit`; kills it if it overruns.
    fn run_with(&self, args: &[&str], limit: Duration) -> Output {
        let (mut child, out, err) = self.spawn(args);
        let start = Instant::now();
        let code = loop {
            match child.try_wait().expect("try_wait") {
                Some(status) => break status.code(),
                None if start.elapsed() > limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "`bastion {}` did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                        args.join(" "),
                        read(&out),
                        read(&err)
                    );
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        Output { code, stdout: read(&out), stderr: read(&err) }
    }

    /// Runs `bastion <args> --json`, requires exit code 0 and returns the parsed stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let output = self.run_with(&all, CALL_LIMIT);
        assert_eq!(
            output.code,
            Some(0),
            "`bastion {}` failed\nstdout: {}\nstderr: {}",
            all.join(" "),
            output.stdout,
            output.stderr
        );
        serde_json::from_str(output.stdout.trim()).unwrap_or_else(|e| {
            panic!("`bastion {}` printed no JSON ({e}): {:?}", all.join(" "), output.stdout)
        })
    }

    fn dir_arg(&self) -> String {
        self.testnet_dir.to_str().expect("utf-8 path").to_string()
    }

    /// `bastion testnet up --validators 4 --detach`; returns a guard that stops it.
    fn up(&self) -> TestnetGuard<'_> {
        let dir = self.dir_arg();
        let output = self
            .run_with(&["testnet", "up", "--validators", "4", "--detach", "--dir", &dir, "--json"], UP_LIMIT);
        // The guard first: even a failed `up` may have left validators running.
        let guard = TestnetGuard { cli: self };
        assert_eq!(
            output.code,
            Some(0),
            "testnet up failed\nstdout: {}\nstderr: {}",
            output.stdout,
            output.stderr
        );
        guard
    }

    fn testnet_json(&self) -> Value {
        let text = std::fs::read_to_string(self.testnet_dir.join("testnet.json")).expect("testnet.json");
        serde_json::from_str(&text).expect("testnet.json parses")
    }

    fn api_urls(&self) -> Vec<String> {
        self.testnet_json()["validators"]
            .as_array()
            .expect("validators")
            .iter()
            .map(|v| v["api_url"].as_str().expect("api_url").to_string())
            .collect()
    }
}

/// Stops the testnet when dropped, on success and on panic alike.
struct TestnetGuard<'a> {
    cli: &'a Cli,
}

impl Drop for TestnetGuard<'_> {
    fn drop(&mut self) {
        let dir = self.cli.dir_arg();
        let (mut child, out, err) = self.cli.spawn(&["testnet", "down", "--dir", &dir, "--json"]);
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("testnet down: {status}\nstdout: {}\nstderr: {}", read(&out), read(&err));
                    }
                    break;
                }
                Ok(None) if start.elapsed() < Duration::from_secs(60) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!("testnet down did not finish within 60 s");
                    break;
                }
            }
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn socket_addr(api_url: &str) -> SocketAddr {
    let rest = api_url.trim_start_matches("http://").trim_end_matches('/');
    rest.parse().unwrap_or_else(|e| panic!("api_url {api_url:?}: {e}"))
}

/// An HTTP/1.1 request with an arbitrary content type and body. Write errors are ignored
/// (a server may answer and close before reading an oversized body); the answer is read.
fn raw_http(addr: SocketAddr, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
    stream.set_write_timeout(Some(Duration::from_secs(30))).expect("write timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("malformed response: {text:?}"));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, rest.to_string())
}

fn submit_raw(addr: SocketAddr, tx_bytes: &[u8]) -> (u16, Value) {
    let body = json!({ "tx": hex::encode(tx_bytes) }).to_string();
    let (status, text) = http(addr, "POST", "/v1/transactions", Some(&body)).expect("API answers");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Runs a view until it returns `expected_hex` (views answer at the latest certified height,
/// which may trail the commit by a block) and checks it verified (`cli.json` demands exit 0).
fn view_until(cli: &Cli, args: &[&str], expected_hex: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let viewed = cli.json(args);
        assert_eq!(viewed["verified"], true, "{viewed}");
        if viewed["return_hex"].as_str() == Some(expected_hex) || Instant::now() > deadline {
            assert_eq!(viewed["return_hex"].as_str(), Some(expected_hex), "{viewed}");
            return viewed;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn assert_committed_ok(what: &str, answer: &Value) {
    assert_eq!(answer["status"], "committed_ok", "{what}: {answer}");
    assert_eq!(answer["receipt"]["status"], "committed_ok", "{what}: {answer}");
}

/// Polls `account <who> --node <url>` until the balance is `expected` (a validator may
/// execute a block a little after the one that answered `--wait`).
fn wait_balance(cli: &Cli, who: &str, url: &str, expected: u64) -> Value {
    let start = Instant::now();
    loop {
        let answer = cli.json(&["account", who, "--node", url]);
        if answer["balance"].as_u64() == Some(expected) || start.elapsed() > Duration::from_secs(30) {
            assert_eq!(answer["balance"].as_u64(), Some(expected), "{who} on {url}: {answer}");
            return answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn cli_drives_a_local_testnet_end_to_end_and_nodes_survive_bad_input() {
    let started = Instant::now();
    let cli = Cli::new();
    let _guard = cli.up();
    let urls = cli.api_urls();
    assert_eq!(urls.len(), 4, "testnet.json: {}", cli.testnet_json());
    let chain_id = cli.testnet_json()["chain_id"].as_str().expect("chain_id").to_string();

    // The raw-HTTP section below signs as dev0: the same key the CLI calls dev0.
    let dev0 = cli.json(&["keys", "show", "dev0"]);
    assert_eq!(
        dev0["address"].as_str(),
        Some(hex::encode(Address::from_public_key(&dev_key(0).public()).0).as_str()),
        "{dev0}"
    );

    // Keys and a native transfer, visible on every validator.
    let alice_key = cli.json(&["keys", "new", "alice"]);
    let sent = cli.json(&["transfer", "--from", "dev0", "--to", "alice", "--amount", "5000", "--wait"]);
    assert_committed_ok("transfer", &sent);
    assert!(sent["hash"].as_str().is_some_and(|h| h.len() == 64), "{sent}");
    let mut alice_address = String::new();
    for url in &urls {
        let account = wait_balance(&cli, "alice", url, 5000);
        alice_address = account["address"].as_str().expect("address").trim_start_matches("0x").to_string();
    }
    assert_eq!(alice_address.len(), 64, "alice: {alice_key}");

    // The counter contract.
    let counter = examples_dir().join("counter.wat");
    let counter = counter.to_str().expect("utf-8 path");
    let deployed = cli.json(&["deploy", "--from", "dev0", counter, "--wait"]);
    assert_committed_ok("deploy counter", &deployed);
    let contract = deployed["contract"].as_str().expect("contract").to_string();
    for i in 0..3 {
        let called = cli.json(&["call", "--from", "dev0", &contract, "increment", "--wait"]);
        assert_committed_ok(&format!("increment #{i}"), &called);
    }
    let viewed = view_until(&cli, &["view", &contract, "get"], "0300000000000000");
    assert!(viewed["signers"].as_u64().is_some_and(|k| k >= 3), "{viewed}");

    // A proven account.
    let proven = cli.json(&["account", "alice", "--proof"]);
    assert_eq!(proven["proof"]["verified"], true, "{proven}");
    assert_eq!(proven["balance"].as_u64(), Some(5000), "{proven}");

    // The token contract.
    let supply: u64 = 1_000_000;
    let amount: u64 = 250;
    let token_wat = examples_dir().join("token.wat");
    let token_wat = token_wat.to_str().expect("utf-8 path");
    let supply_hex = hex::encode(supply.to_le_bytes());
    let token = cli.json(&["deploy", "--from", "dev1", token_wat, "--init", &supply_hex, "--wait"]);
    assert_committed_ok("deploy token", &token);
    let token = token["contract"].as_str().expect("contract").to_string();
    let transfer_args = format!("{alice_address}{}", hex::encode(amount.to_le_bytes()));
    let moved = cli.json(&["call", "--from", "dev1", &token, "transfer", "--args", &transfer_args, "--wait"]);
    assert_committed_ok("token transfer", &moved);
    view_until(
        &cli,
        &["view", &token, "balance_of", "--args", &alice_address],
        &hex::encode(amount.to_le_bytes()),
    );

    // `watch --from 1` for a few seconds: one JSON block per line, with the token's event.
    let (mut watch, watch_out, watch_err) = cli.spawn(&["watch", "--from", "1", "--json"]);
    std::thread::sleep(Duration::from_secs(3));
    let exited_early = watch.try_wait().expect("try_wait");
    let _ = watch.kill();
    let _ = watch.wait();
    let printed = read(&watch_out);
    assert!(exited_early.is_none(), "watch exited early: {exited_early:?}\n{printed}\n{}", read(&watch_err));
    let blocks: Vec<Value> = printed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("watch line is not JSON ({e}): {l:?}")))
        .collect();
    assert!(!blocks.is_empty(), "watch printed no blocks; stderr: {}", read(&watch_err));
    assert!(blocks.iter().all(|b| b["height"].as_u64().is_some() && b["hash"].is_string()), "{printed}");
    let heights: Vec<u64> = blocks.iter().filter_map(|b| b["height"].as_u64()).collect();
    assert_eq!(heights[0], 1, "watch --from 1 starts at height 1: {heights:?}");
    assert!(heights.windows(2).all(|w| w[1] == w[0] + 1), "heights in order, no gaps: {heights:?}");
    let token_hash = moved["hash"].as_str().expect("hash");
    let transfer_topic = hex::encode(b"transfer");
    let token_events: Vec<&Value> = blocks
        .iter()
        .flat_map(|b| b["events"].as_array().into_iter().flatten())
        .filter(|e| {
            e["contract"].as_str().map(|c| c.trim_start_matches("0x")) == Some(token.trim_start_matches("0x"))
        })
        .collect();
    assert!(
        token_events.iter().any(|e| e["topic_hex"] == transfer_topic.as_str()
            && e["tx_hash"].as_str() == Some(token_hash)
            && e["data_hex"].as_str().is_some_and(|d| d.contains(&alice_address))),
        "no transfer event of the token in watch output: {token_events:?}"
    );

    // Bad input against validator 0, over plain HTTP.
    let addr = socket_addr(&urls[0]);
    let (status, body) = http(addr, "POST", "/v1/transactions", Some("{this is not json")).expect("answers");
    assert_eq!(status, 400, "garbage JSON: {body}");
    let body: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("400 body not JSON ({e}): {body}"));
    assert!(body["code"].is_string(), "{body}");

    let (status, body) = raw_http(addr, "POST", "/v1/transactions", "text/plain", b"{\"tx\":\"00\"}");
    assert_eq!(status, 415, "text/plain: {body}");

    let bob = Address([0x42; 32]);
    let wrong_chain = TransactionBuilder::new("nope", dev_key(2))
        .nonce(0)
        .expiry_height(1_000_000)
        .fuel_limit(10_000_000)
        .transfer(bob, 1)
        .expect("builds");
    let (status, body) = submit_raw(addr, &wrong_chain.to_bytes().expect("encodes"));
    assert_eq!((status, body["code"].as_str()), (422, Some("wrong_chain")), "{body}");

    // dev0 used nonce 0 for the transfer to alice: a different transfer at nonce 0.
    let replay = TransactionBuilder::new(chain_id.clone(), dev_key(0))
        .nonce(0)
        .expiry_height(1_000_000)
        .fuel_limit(10_000_000)
        .transfer(bob, 4321)
        .expect("builds");
    let (status, body) = submit_raw(addr, &replay.to_bytes().expect("encodes"));
    assert_eq!((status, body["code"].as_str()), (409, Some("nonce_too_low")), "{body}");

    let expired = TransactionBuilder::new(chain_id.clone(), dev_key(3))
        .nonce(0)
        .expiry_height(0)
        .fuel_limit(10_000_000)
        .transfer(bob, 1)
        .expect("builds");
    let (status, body) = submit_raw(addr, &expired.to_bytes().expect("encodes"));
    assert_eq!(status, 422, "expired: {body}");

    // The signature is the encoding's last 64 bytes; flip a bit of its R half.
    let honest = TransactionBuilder::new(chain_id.clone(), dev_key(3))
        .nonce(0)
        .expiry_height(1_000_000)
        .fuel_limit(10_000_000)
        .transfer(bob, 1)
        .expect("builds");
    let mut forged = honest.to_bytes().expect("encodes");
    let at = forged.len() - 64;
    assert_eq!(&forged[at..], &honest.signature.as_bytes()[..], "signature is the encoding's tail");
    forged[at] ^= 0x01;
    let (status, body) = submit_raw(addr, &forged);
    assert_eq!(status, 401, "bad signature: {body}");

    let nowhere = hex::encode([0x77u8; 32]);
    let (status, body) =
        http(addr, "POST", &format!("/v1/contracts/{nowhere}/view"), Some(r#"{"method":"get"}"#))
            .expect("answers");
    assert_eq!(status, 404, "unknown contract view: {body}");

    let huge = vec![b'a'; 600 * 1024];
    let (status, body) = raw_http(addr, "POST", "/v1/transactions", "application/json", &huge);
    assert_eq!(status, 413, "oversized body: {body}");

    // Every validator is still healthy and the chain still commits.
    for url in &urls {
        let (status, body) = http(socket_addr(url), "GET", "/health", None).expect("answers");
        assert_eq!(status, 200, "{url} /health: {body}");
    }
    let last = cli.json(&["transfer", "--from", "dev2", "--to", "alice", "--amount", "1", "--wait"]);
    assert_committed_ok("final transfer", &last);
    for url in &urls {
        wait_balance(&cli, "alice", url, 5001);
    }
    eprintln!("CLI end-to-end scenario took {:?}", started.elapsed());
}

#[test]
fn two_testnets_at_once_both_come_up() {
    let first = Cli::new();
    let second = Cli::new();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| first.up());
        let b = s.spawn(|| second.up());
        (a.join(), b.join())
    });
    // Keep whichever guard exists so a testnet that did come up is stopped.
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            drop((a.ok(), b.ok()));
            // Stop both regardless (down on a testnet that is not running is harmless).
            drop(TestnetGuard { cli: &first });
            drop(TestnetGuard { cli: &second });
            panic!("a concurrent `testnet up` failed");
        }
    };
    let urls_a = first.api_urls();
    let urls_b = second.api_urls();
    assert_eq!((urls_a.len(), urls_b.len()), (4, 4));
    for url in &urls_a {
        assert!(!urls_b.contains(url), "both testnets use {url}");
    }
    let chain_a = first.testnet_json()["chain_id"].clone();
    let chain_b = second.testnet_json()["chain_id"].clone();
    assert_ne!(chain_a, chain_b, "two testnets share a chain id");
    for url in urls_a.iter().chain(&urls_b) {
        let (status, body) = http(socket_addr(url), "GET", "/health", None).expect("answers");
        assert_eq!(status, 200, "{url} /health: {body}");
    }
    // Both commit independently.
    for cli in [&first, &second] {
        let sent = cli.json(&["transfer", "--from", "dev0", "--to", "dev1", "--amount", "3", "--wait"]);
        assert_committed_ok("transfer", &sent);
    }
    drop((a, b));
    // After `down`, no validator of either answers.
    let start = Instant::now();
    for url in urls_a.iter().chain(&urls_b) {
        while http(socket_addr(url), "GET", "/health", None).is_ok() {
            assert!(start.elapsed() < Duration::from_secs(20), "{url} still answers after down");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `bastion bench` against a real testnet: every transaction it sends, batched
/// (`POST /v1/transactions/batch`) or one by one, is admitted, committed and executed, and the
/// report accounts for each one.
#[test]
fn bench_commits_every_transaction_it_sends() {
    let cli = Cli::new();
    let _guard = cli.up();
    let runs: [(&[&str], u64); 2] = [
        (&["bench", "--rate", "300", "--duration", "2"], 600),
        (&["bench", "--rate", "50", "--duration", "2", "--batch", "1", "--accounts", "3"], 100),
    ];
    for (args, sent) in runs {
        let report = cli.json(args);
        for field in ["submitted", "accepted", "committed"] {
            assert_eq!(report[field], sent, "{field} in {report}");
        }
        for field in ["rejected", "errors", "lost"] {
            assert_eq!(report[field], 0, "{field} in {report}");
        }
        assert!(report["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{report}");
        assert!(report["committed_tps"].as_f64().is_some_and(|tps| tps > 0.0), "{report}");
        assert!(report["round_timeouts"].is_u64(), "{report}");
    }
    // Each transfer moved 1 token to the bench's recipient: all of them executed.
    let recipient = Address(bastion_crypto::sha256(b"bastion bench recipient").0).to_hex();
    let account = cli.json(&["account", &recipient]);
    assert_eq!(account["balance"], 700, "{account}");
}
