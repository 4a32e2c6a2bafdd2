//! The `bastion` binary end to end: against the fake validator API (JSON shapes, text
//! output, exit codes by error class) and, for `bastion testnet`, with a fake
//! `bastion-node` (fail fast, detach/status/down, Ctrl-C in the foreground).

mod fake_node;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bastion_ledger::Address;
use bastion_testnet::dev_keys::{dev_key, DEV_BALANCE};
use fake_node::{FakeNode, Switches, TIP};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bastion");

/// `bastion` with an isolated home and no inherited node settings.
fn bastion(home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("BASTION_HOME", home)
        .env_remove("BASTION_NODE")
        .env("BASTION_TESTNET_DIR", home.join("no-testnet"))
        .env_remove("BASTION_NODE_BIN")
        .current_dir(home)
        .stdin(Stdio::null());
    cmd
}

fn run(home: &Path, args: &[&str]) -> Output {
    bastion(home).args(args).output().unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", stdout(out)))
}

fn dev_address(i: u8) -> String {
    Address::from_public_key(&dev_key(i).unwrap().public()).to_hex()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/contracts")
}

#[test]
fn transfer_prints_the_hash_and_waits_for_the_receipt() {
    let node = FakeNode::start(Switches::default());
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &[
            "--node", &node.url, "transfer", "--from", "dev0", "--to", "dev1", "--amount", "1000", "--wait",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["status"], "committed_ok");
    assert_eq!(doc["hash"].as_str().map(str::len), Some(64));
    let receipt = &doc["receipt"];
    for field in ["status", "height", "fuel_used", "events", "return_hex"] {
        assert!(receipt.get(field).is_some(), "receipt lacks {field}: {doc}");
    }
    assert_eq!(receipt["height"], TIP + 1);

    // Text, without --wait: the hash at once, and "pending".
    let out = run(
        home.path(),
        &["--node", &node.url, "transfer", "--from", "dev0", "--to", &dev_address(2), "--amount", "5"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let hash = node.submitted()[1].hash().unwrap().to_hex();
    assert!(text.lines().any(|l| l == format!("tx {hash}")), "{text}");
    assert!(text.contains("status pending"), "{text}");
    // The second send used the next (pending) nonce.
    assert_eq!(node.submitted()[1].tx.nonce, 1);
}

#[test]
fn a_timeout_reports_pending_not_failed() {
    let node = FakeNode::start(Switches { pending_polls: u32::MAX, ..Switches::default() });
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run(
        home.path(),
        &[
            "--node",
            &node.url,
            "--json",
            "transfer",
            "--from",
            "dev0",
            "--to",
            "dev1",
            "--amount",
            "1",
            "--wait",
            "--timeout",
            "1",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["status"], "pending");
    assert!(doc["receipt"].is_null());
    assert!(doc["note"].as_str().unwrap().contains("still pending"));
    let all = format!("{}{}", stdout(&out), stderr(&out)).to_lowercase();
    assert!(!all.contains("failed") || all.contains("not failed"), "{all}");

    let out = run(
        home.path(),
        &[
            "--node",
            &node.url,
            "transfer",
            "--from",
            "dev0",
            "--to",
            "dev1",
            "--amount",
            "1",
            "--wait",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(code(&out), 4);
    assert!(stderr(&out).contains("still pending"), "{}", stderr(&out));
}

#[test]
fn deploy_sends_compiled_wasm_and_reports_the_contract() {
    let node = FakeNode::start(Switches::default());
    let home = tempfile::tempdir().unwrap();
    let wat = examples().join("token.wat");
    let out = run(
        home.path(),
        &[
            "--node",
            &node.url,
            "--json",
            "deploy",
            "--from",
            "dev0",
            wat.to_str().unwrap(),
            "--init",
            "e803000000000000",
            "--wait",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = json(&out);
    let expected = Address::contract(&dev_key(0).unwrap().public(), 0).to_hex();
    assert_eq!(doc["contract"], expected);
    assert_eq!(doc["receipt"]["contract"], expected);
    match &node.submitted()[0].tx.payload {
        bastion_ledger::Payload::Deploy { code, init } => {
            assert!(code.starts_with(b"\0asm"), "WAT must be compiled to a binary module");
            assert_eq!(init, &1000u64.to_le_bytes().to_vec());
        }
        other => panic!("not a deploy: {other:?}"),
    }
    let out = run(home.path(), &["--node", &node.url, "deploy", "--from", "dev0", "/nonexistent.wat"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("/nonexistent.wat"));
}

#[test]
fn call_failures_and_rejections_have_their_exit_codes() {
    let node = FakeNode::start(Switches { fail_calls: true, ..Switches::default() });
    let home = tempfile::tempdir().unwrap();
    let contract = "05".repeat(32);
    let out = run(
        home.path(),
        &[
            "--node", &node.url, "--json", "call", "--from", "dev3", &contract, "transfer", "--args", "00",
            "--wait",
        ],
    );
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["status"], "committed_failed");
    assert_eq!(doc["receipt"]["reason"], "aborted: insufficient balance");

    // Mempool full: a 4xx rejection, with the server's code in the JSON error.
    node.with(|n| n.switches.mempool_full = true);
    let out = run(home.path(), &["--node", &node.url, "--json", "call", "--from", "dev3", &contract, "get"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["error"]["code"], "mempool_full");
    assert_eq!(doc["error"]["http_status"], 429);
    assert_eq!(doc["error"]["exit_code"], 3);
    assert!(stderr(&out).contains("mempool full"));
}

#[test]
fn unreachable_and_undiscoverable_nodes_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}");
    let out = run(home.path(), &["--node", &url, "account", "dev0"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(&closed.to_string()), "{}", stderr(&out));

    let out = run(home.path(), &["block"]);
    assert_eq!(code(&out), 2);
    let message = stderr(&out);
    assert!(
        message.contains("--node") && message.contains("$BASTION_NODE") && message.contains("testnet"),
        "{message}"
    );

    // $BASTION_NODE is used when there is no flag.
    let node = FakeNode::start(Switches::default());
    let out =
        bastion(home.path()).env("BASTION_NODE", &node.url).args(["--json", "block", "3"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["height"], 3);
}

#[test]
fn account_with_proof_verifies_and_detects_a_lie() {
    let node = FakeNode::start(Switches::default());
    let home = tempfile::tempdir().unwrap();
    let genesis = home.path().join("genesis.json");
    fake_node::genesis_file().save(&genesis).unwrap();
    let g = genesis.to_str().unwrap();

    let out = run(home.path(), &["--node", &node.url, "account", "dev0", "--proof", "--genesis", g]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("verified at height 0 by 3/4 validators"), "{}", stdout(&out));

    let out = run(
        home.path(),
        &["--node", &node.url, "--json", "account", &dev_address(1), "--proof", "--genesis", g],
    );
    let doc = json(&out);
    assert_eq!(
        (doc["address"].as_str(), doc["balance"].as_u64(), doc["nonce"].as_u64()),
        (Some(dev_address(1).as_str()), Some(DEV_BALANCE), Some(0))
    );
    assert_eq!(doc["proof"]["verified"], true);
    assert_eq!(
        (
            doc["proof"]["height"].as_u64(),
            doc["proof"]["signers"].as_u64(),
            doc["proof"]["validators"].as_u64()
        ),
        (Some(0), Some(3), Some(4))
    );
    assert_eq!(doc["proof"]["committee_from_genesis"], true);

    // Without a genesis: the node's own committee, said to be untrusted.
    let out = run(home.path(), &["--node", &node.url, "--json", "account", "dev0", "--proof"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["proof"]["committee_from_genesis"], false);

    // Plain: no proof object.
    let out = run(home.path(), &["--node", &node.url, "--json", "account", "dev0"]);
    assert!(json(&out).get("proof").is_none());

    node.with(|n| n.switches.tamper_balance = true);
    let out =
        run(home.path(), &["--node", &node.url, "--json", "account", "dev0", "--proof", "--genesis", g]);
    assert_eq!(code(&out), 5);
    let doc = json(&out);
    assert_eq!(doc["proof"]["verified"], false);
    assert!(doc["proof"]["error"].as_str().unwrap().contains("balance"));
    let out = run(home.path(), &["--node", &node.url, "account", "dev0", "--proof", "--genesis", g]);
    assert_eq!(code(&out), 5);
    assert!(stderr(&out).contains("NOT verified"));

    let out = run(home.path(), &["--node", &node.url, "account", "nobody"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("neither a key name nor"), "{}", stderr(&out));
}

#[test]
fn view_tx_and_block_shapes() {
    let node = FakeNode::start(Switches::default());
    let home = tempfile::tempdir().unwrap();
    let contract = "05".repeat(32);
    // The fake node answers without a witness: the answer is shown, flagged unverified.
    let out = run(home.path(), &["--node", &node.url, "--json", "view", &contract, "get"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(
        (doc["return_hex"].as_str(), doc["height"].as_u64(), doc["verified"].as_bool()),
        (Some("2a00000000000000"), Some(TIP), Some(false))
    );
    assert!(doc["error"].as_str().unwrap().contains("no proof"), "{doc}");
    let out = run(home.path(), &["--node", &node.url, "view", &contract, "get"]);
    assert!(stdout(&out).contains("u64 LE: 42"), "{}", stdout(&out));
    assert!(stderr(&out).contains("NOT verified"), "{}", stderr(&out));
    let out = run(home.path(), &["--node", &node.url, "view", &"00".repeat(32), "get"]);
    assert_eq!(code(&out), 3);

    let sent = run(
        home.path(),
        &["--node", &node.url, "--json", "transfer", "--from", "dev0", "--to", "dev1", "--amount", "1"],
    );
    let hash = json(&sent)["hash"].as_str().unwrap().to_string();
    let out = run(home.path(), &["--node", &node.url, "--json", "tx", &hash, "--wait"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!((doc["hash"].as_str(), doc["status"].as_str()), (Some(hash.as_str()), Some("committed_ok")));
    assert!(doc["receipt"].is_object());
    let out = run(home.path(), &["--node", &node.url, "tx", &"ab".repeat(32)]);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("does not know"), "{}", stderr(&out));

    let out = run(home.path(), &["--node", &node.url, "--json", "block"]);
    let doc = json(&out);
    assert_eq!(doc["height"], TIP);
    assert!(doc["hash"].is_string() && doc["txs"].is_array());
    let out = run(home.path(), &["--node", &node.url, "block", "4"]);
    assert!(stdout(&out).starts_with("block 4 "), "{}", stdout(&out));
    assert!(stdout(&out).contains("\"transfer\""));
    assert_eq!(code(&run(home.path(), &["--node", &node.url, "block", "99"])), 3);
}

#[test]
fn watch_streams_blocks_as_json_lines() {
    let node = FakeNode::start(Switches::default());
    let home = tempfile::tempdir().unwrap();
    let mut child = bastion(home.path())
        .args(["--node", &node.url, "--json", "watch", "--from", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut heights = Vec::new();
    for _ in 0..5 {
        let line = lines.next().unwrap().unwrap();
        let block: Value = serde_json::from_str(&line).unwrap();
        heights.push(block["height"].as_u64().unwrap());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(heights, vec![2, 3, 4, 5, 6]);
}

#[test]
fn keys_bench_and_usage() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["--json", "keys", "new", "alice"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let alice = json(&out);
    assert!(home.path().join("keys/alice.json").exists());
    assert_eq!(code(&run(home.path(), &["keys", "new", "alice"])), 1);
    assert_eq!(code(&run(home.path(), &["keys", "new", "dev0"])), 1);

    let listed = json(&run(home.path(), &["--json", "keys", "list"]));
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|k| k["name"].as_str()).collect();
    assert_eq!(names.len(), 11);
    assert_eq!(names[0], "alice");
    let shown = json(&run(home.path(), &["--json", "keys", "show", "dev0", "--secret"]));
    assert_eq!(shown["address"], dev_address(0));
    assert_eq!(shown["seed"], hex::encode(bastion_testnet::dev_keys::dev_seed(0)));
    assert_eq!(json(&run(home.path(), &["--json", "keys", "show", "alice"]))["address"], alice["address"]);

    // No node to load: nothing is sent, and it says why.
    let out = run(home.path(), &["bench", "--rate", "10", "--duration", "1"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("no node to talk to"), "{}", stderr(&out));
    assert_eq!(code(&run(home.path(), &["bench", "--accounts", "75"])), 1);
    assert_eq!(code(&run(home.path(), &["bench", "--batch", "1025"])), 1);

    assert_eq!(code(&run(home.path(), &["transfer", "--from", "dev0"])), 1);
    assert_eq!(code(&run(home.path(), &["frobnicate"])), 1);
    let help = run(home.path(), &["--help"]);
    assert_eq!(code(&help), 0);
    assert!(stdout(&help).contains("Exit codes:"));
}

/// A stand-in for `bastion-node` (the testnet crate's fixture): serves /health (ready) and
/// /status (committed height 7) on the config's API address.
const FAKE_NODE: &str = include_str!("../../testnet/tests/fixtures/fake_node.py");

fn script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("fake-node");
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// Stops a test's validators even when the test fails half-way.
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(testnet) = bastion_testnet::Testnet::open(&self.0) {
            let _ = bastion_testnet::supervisor::down(&testnet, Duration::from_secs(2));
        }
    }
}

fn pids(dir: &Path) -> Vec<u32> {
    let manifest = bastion_testnet::Manifest::load(&dir.join("testnet.json")).unwrap();
    manifest.validators.iter().filter_map(|v| v.pid).collect()
}

fn wait_dead(pids: &[u32]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if pids.iter().all(|p| !bastion_testnet::process::is_alive(*p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn testnet_up_fails_fast_with_the_reason() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("net");
    let d = dir.to_str().unwrap();
    let out = bastion(home.path())
        .env("BASTION_NODE_BIN", home.path().join("missing"))
        .args(["testnet", "up", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("cannot find the `bastion-node` binary"), "{}", stderr(&out));

    let crashing =
        script(home.path(), "#!/bin/sh\necho 'error: cannot bind 127.0.0.1: address in use' >&2\nexit 1\n");
    let started = Instant::now();
    let out = bastion(home.path())
        .env("BASTION_NODE_BIN", &crashing)
        .args(["testnet", "up", "--dir", d, "--validators", "2"])
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(code(&out), 1);
    let message = stderr(&out);
    assert!(message.contains("exited during start-up") && message.contains("address in use"), "{message}");
}

#[test]
fn testnet_up_detached_then_status_and_down() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let fake = script(home.path(), FAKE_NODE);
    let dir = home.path().join("net");
    let _cleanup = StopOnDrop(dir.clone());
    let d = dir.to_str().unwrap();
    let out = bastion(home.path())
        .env("BASTION_NODE_BIN", &fake)
        .args(["testnet", "up", "--dir", d, "--detach", "--validators", "3"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("is ready") && text.contains("dev0") && text.contains(&dev_address(9)), "{text}");
    assert!(text.contains("bastion testnet down"), "{text}");
    let running = pids(&dir);
    assert_eq!(running.len(), 3);

    let status = bastion(home.path()).args(["--json", "testnet", "status", "--dir", d]).output().unwrap();
    let doc = json(&status);
    let validators = doc["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 3);
    assert!(
        validators.iter().all(|v| v["running"] == true && v["ready"] == true && v["committed_height"] == 7),
        "{doc}"
    );

    // The CLI finds a node through $BASTION_TESTNET_DIR (the fake answers /health only).
    let out = bastion(home.path()).env("BASTION_TESTNET_DIR", &dir).args(["block"]).output().unwrap();
    assert_ne!(code(&out), 2, "{}", stderr(&out));

    let out = bastion(home.path()).args(["testnet", "down", "--dir", d]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(wait_dead(&running));
    assert!(pids(&dir).is_empty());
}

#[test]
fn testnet_up_in_the_foreground_stops_on_ctrl_c() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let fake = script(home.path(), FAKE_NODE);
    let dir = home.path().join("net");
    let _cleanup = StopOnDrop(dir.clone());
    let mut child = bastion(home.path())
        .env("BASTION_NODE_BIN", &fake)
        .args(["testnet", "up", "--dir", dir.to_str().unwrap(), "--validators", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("Ctrl-C stops the testnet"));
    assert!(ready);
    let running = pids(&dir);
    assert_eq!(running.len(), 2);
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    assert!(wait_dead(&running));
    assert!(pids(&dir).is_empty());
}
