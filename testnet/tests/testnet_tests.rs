//! Testnet generation (files, ports, genesis, reuse, reset) and supervision of fake
//! `bastion-node` processes (fail-fast on a missing binary, an early exit, a validator
//! that never becomes ready; the full up/status/kill/restart/down cycle).

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bastion_crypto::KeyPair;
use bastion_testnet::config::NodeConfig;
use bastion_testnet::dev_keys::{dev_addresses, funded_addresses, DEV_BALANCE};
use bastion_testnet::probe::Health;
use bastion_testnet::process::{is_alive, StopOutcome};
use bastion_testnet::supervisor::{self, LaunchOptions};
use bastion_testnet::{launch, setup, Manifest, SetupOptions, SetupOutcome, Testnet, TestnetError};

fn options(validators: Option<usize>, reset: bool) -> SetupOptions {
    SetupOptions { validators, consensus_only: false, reset }
}

fn fast(binary: PathBuf) -> LaunchOptions {
    LaunchOptions {
        node_binary: binary,
        ready_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        stop_grace: Duration::from_secs(2),
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// A stand-in for `bastion-node` that serves `/health` (ready) and `/status` (committed
/// height 7) on the config's API address and exits on SIGTERM.
const FAKE_NODE: &str = include_str!("fixtures/fake_node.py");

/// Stops a test's validators even when the test fails half-way.
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(testnet) = bastion_testnet::Testnet::open(&self.0) {
            let _ = bastion_testnet::supervisor::down(&testnet, Duration::from_secs(2));
        }
    }
}

#[test]
fn generation_writes_every_file_with_distinct_ports() {
    let tmp = tempfile::tempdir().unwrap();
    let (testnet, outcome) = setup(tmp.path(), &options(Some(4), false)).unwrap();
    assert_eq!(outcome, SetupOutcome::Created);
    assert!(testnet.manifest.chain_id.starts_with("bastion-local-"));
    assert_eq!(testnet.genesis.chain_id, testnet.manifest.chain_id);

    // Files, and keys that match the genesis committee.
    for i in 0..4u16 {
        let vdir = tmp.path().join(format!("validator-{i}"));
        assert!(vdir.join("data").is_dir());
        let key: KeyPair =
            serde_json::from_str(&std::fs::read_to_string(vdir.join("key.json")).unwrap()).unwrap();
        assert_eq!(key.public(), testnet.genesis.validators[usize::from(i)].public_key);
        let mode = std::fs::metadata(vdir.join("key.json")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077, 0, "key readable by others");
        let config = NodeConfig::load(&vdir).unwrap();
        assert_eq!(config.index, i);
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(config.worker_threads, Some((cores / 4).max(1)), "its share of the host's cores");
        assert_eq!(config.genesis_file, vdir.join("../genesis.json"));
        assert!(config.genesis_file.exists());
        assert_eq!(config.quic_listen, testnet.genesis.validators[usize::from(i)].quic_addr);
        let entry = &testnet.manifest.validators[usize::from(i)];
        assert_eq!(entry.api_url, format!("http://{}", config.api_listen));
        assert_eq!(entry.data_dir, vdir.join("data"));
        assert_eq!(entry.pid, None);
    }
    // Genesis funds exactly the dev accounts, then the load-test accounts.
    let funded: Vec<_> = testnet.genesis.accounts.iter().map(|a| (a.address, a.balance)).collect();
    let expected: Vec<_> = funded_addresses().into_iter().map(|a| (a, DEV_BALANCE)).collect();
    assert_eq!(funded, expected);
    assert_eq!(&funded[..10], &dev_addresses().into_iter().map(|a| (a, DEV_BALANCE)).collect::<Vec<_>>()[..]);
    testnet.genesis.ledger_genesis().validate().unwrap();
    assert_eq!(Manifest::load(&tmp.path().join("testnet.json")).unwrap(), testnet.manifest);

    // A second testnet at the same time collides on nothing.
    let other = tempfile::tempdir().unwrap();
    let (second, _) = setup(other.path(), &options(Some(4), false)).unwrap();
    assert_ne!(second.manifest.chain_id, testnet.manifest.chain_id);
    let api: HashSet<_> = testnet.configs.iter().chain(&second.configs).map(|c| c.api_listen).collect();
    let quic: HashSet<_> = testnet.configs.iter().chain(&second.configs).map(|c| c.quic_listen).collect();
    assert_eq!((api.len(), quic.len()), (8, 8));
}

#[test]
fn a_config_with_no_worker_threads_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path(), &options(Some(4), false)).unwrap();
    let vdir = tmp.path().join("validator-0");
    let text = std::fs::read_to_string(vdir.join("config.toml")).unwrap();
    let zero: String = text
        .lines()
        .map(|line| if line.starts_with("worker_threads") { "worker_threads = 0" } else { line })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(zero, text, "the generated config names its worker threads");
    std::fs::write(vdir.join("config.toml"), zero).unwrap();
    let error = NodeConfig::load(&vdir).unwrap_err().to_string();
    assert!(error.contains("worker_threads must be at least 1"), "{error}");
}

#[test]
fn setup_reuses_without_reset_and_wipes_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, _) = setup(tmp.path(), &options(Some(3), false)).unwrap();
    std::fs::write(tmp.path().join("validator-0/data/marker"), "state").unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();

    let (again, outcome) = setup(tmp.path(), &options(None, false)).unwrap();
    assert_eq!(outcome, SetupOutcome::Reused);
    assert_eq!(again.manifest.chain_id, first.manifest.chain_id);
    assert_eq!(again.genesis, first.genesis);
    assert!(tmp.path().join("validator-0/data/marker").exists());

    // A different count or mode needs --reset.
    assert!(matches!(setup(tmp.path(), &options(Some(4), false)), Err(TestnetError::CountMismatch { .. })));
    let consensus_only = SetupOptions { validators: None, consensus_only: true, reset: false };
    assert!(matches!(setup(tmp.path(), &consensus_only), Err(TestnetError::ModeMismatch { .. })));

    let (fresh, outcome) = setup(tmp.path(), &options(Some(4), true)).unwrap();
    assert_eq!(outcome, SetupOutcome::Created);
    assert_ne!(fresh.manifest.chain_id, first.manifest.chain_id);
    assert_eq!(fresh.count(), 4);
    assert!(!tmp.path().join("validator-0/data/marker").exists());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
        "mine",
        "reset removed a foreign file"
    );
}

#[test]
fn reuse_moves_a_taken_api_port_but_refuses_a_taken_quic_port() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, _) = setup(tmp.path(), &options(Some(2), false)).unwrap();
    let api = first.configs[0].api_listen;
    let _squatter = TcpListener::bind(api).unwrap();
    let (again, _) = setup(tmp.path(), &options(None, false)).unwrap();
    assert_ne!(again.configs[0].api_listen, api);
    assert_eq!(
        NodeConfig::load(&tmp.path().join("validator-0")).unwrap().api_listen,
        again.configs[0].api_listen
    );
    assert_eq!(again.manifest.validators[0].api_url, format!("http://{}", again.configs[0].api_listen));
    assert_eq!(again.genesis, first.genesis);

    let _udp_squatter = UdpSocket::bind(first.configs[1].quic_listen).unwrap();
    match setup(tmp.path(), &options(None, false)) {
        Err(TestnetError::PortTaken { index: 1, addr, .. }) => assert_eq!(addr, first.configs[1].quic_listen),
        other => panic!("expected PortTaken, got {other:?}"),
    }
}

#[test]
fn a_missing_binary_fails_fast() {
    let tmp = tempfile::tempdir().unwrap();
    // Lookup: nothing next to the executable, nothing on PATH.
    let found = bastion_testnet::process::find_node_binary(
        None,
        Some(tmp.path().to_path_buf()),
        Some(tmp.path().as_os_str().to_owned()),
    );
    match found {
        Err(e @ TestnetError::BinaryMissing { .. }) => {
            let message = e.to_string();
            assert!(message.contains("BASTION_NODE_BIN") && message.contains("PATH"), "{message}");
        }
        other => panic!("expected BinaryMissing, got {other:?}"),
    }
    // An explicit $BASTION_NODE_BIN that is wrong is an error even if PATH has one.
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let on_path = script(&bin_dir, "bastion-node", "#!/bin/sh\n");
    let found = bastion_testnet::process::find_node_binary(
        Some(tmp.path().join("nope").into()),
        None,
        Some(bin_dir.as_os_str().to_owned()),
    );
    assert!(
        matches!(found, Err(TestnetError::BinaryMissing { ref searched }) if searched.contains("nope")),
        "{found:?}"
    );

    // Found in order: explicit, next to the executable, PATH.
    let found = bastion_testnet::process::find_node_binary(None, None, Some(bin_dir.as_os_str().to_owned()));
    assert_eq!(found.unwrap(), on_path);
    let explicit = script(tmp.path(), "my-node", "#!/bin/sh\n");
    let found = bastion_testnet::process::find_node_binary(
        Some(explicit.clone().into()),
        Some(bin_dir.clone()),
        Some(bin_dir.as_os_str().to_owned()),
    );
    assert_eq!(found.unwrap(), explicit);

    let (testnet, _) = setup(&tmp.path().join("net"), &options(Some(2), false)).unwrap();
    let started = Instant::now();
    let err = launch(testnet, &fast(tmp.path().join("nope")), &AtomicBool::new(false), |_| {}).unwrap_err();
    assert!(matches!(err, TestnetError::Spawn { index: 0, .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_validator_that_exits_stops_the_others_and_shows_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    // Validator 2 exits at once with a reason; the others would run for a minute.
    let fake = script(
        tmp.path(),
        "fake-node",
        "#!/bin/sh\ncase \"$2\" in\n  *validator-2) echo 'loading genesis'; echo 'error: genesis mismatch: hash 1234' >&2; exit 3;;\n  *) exec sleep 60;;\nesac\n",
    );
    let dir = tmp.path().join("net");
    let (testnet, _) = setup(&dir, &options(Some(4), false)).unwrap();
    let mut pids = Vec::new();
    let started = Instant::now();
    let err = launch(testnet, &fast(fake), &AtomicBool::new(false), |event| {
        if let supervisor::LaunchEvent::Spawned { pid, .. } = event {
            pids.push(pid)
        }
    })
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(8));
    match &err {
        TestnetError::ValidatorExited { index: 2, status, log_tail, .. } => {
            assert!(status.contains('3'), "{status}");
            assert!(log_tail.iter().any(|l| l.contains("genesis mismatch")), "{log_tail:?}");
        }
        other => panic!("expected ValidatorExited, got {other:?}"),
    }
    assert!(err.to_string().contains("genesis mismatch"));
    assert_eq!(pids.len(), 4);
    assert!(pids.iter().all(|pid| !is_alive(*pid)), "others still running");
    assert!(Manifest::load(&dir.join("testnet.json")).unwrap().validators.iter().all(|v| v.pid.is_none()));
}

#[test]
fn a_validator_that_never_becomes_ready_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = script(tmp.path(), "fake-node", "#!/bin/sh\necho 'waiting for peers'\nexec sleep 60\n");
    let (testnet, _) = setup(&tmp.path().join("net"), &options(Some(2), false)).unwrap();
    let mut opts = fast(fake);
    opts.ready_timeout = Duration::from_secs(1);
    let mut pids = Vec::new();
    let started = Instant::now();
    let err = launch(testnet, &opts, &AtomicBool::new(false), |event| {
        if let supervisor::LaunchEvent::Spawned { pid, .. } = event {
            pids.push(pid)
        }
    })
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(6));
    match &err {
        TestnetError::NotReady { index: 0, last, log_tail, .. } => {
            assert!(last.contains("unreachable"), "{last}");
            assert!(log_tail.iter().any(|l| l.contains("waiting for peers")), "{log_tail:?}");
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    assert!(pids.iter().all(|pid| !is_alive(*pid)));
}

#[test]
fn up_status_kill_restart_down_with_a_fake_node() {
    if std::process::Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fake = script(tmp.path(), "fake-node", FAKE_NODE);
    let dir = tmp.path().join("net");
    let _cleanup = StopOnDrop(dir.clone());
    let (testnet, _) = setup(&dir, &options(Some(3), false)).unwrap();
    let opts = fast(fake);
    let mut ready = Vec::new();
    let running = launch(testnet, &opts, &AtomicBool::new(false), |event| {
        if let supervisor::LaunchEvent::Ready { index, .. } = event {
            ready.push(index)
        }
    })
    .unwrap();
    ready.sort();
    assert_eq!(ready, vec![0, 1, 2]);
    let testnet = running.detach();

    let opened = Testnet::open(&dir).unwrap();
    assert_eq!(opened.running_pids().len(), 3);
    let rows = supervisor::status(&opened);
    assert!(
        rows.iter().all(|r| r.running && r.health == Health::Ready && r.committed_height == Some(7)),
        "{rows:?}"
    );

    // Starting it again while it runs is refused.
    assert!(matches!(setup(&dir, &options(None, false)), Err(TestnetError::AlreadyRunning { .. })));

    let killed = supervisor::kill(&opened, 1).unwrap().expect("validator 1 was running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_alive(killed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rows = supervisor::status(&opened);
    assert!(!rows[1].running && rows[1].pid.is_none());
    assert!(matches!(rows[1].health, Health::Unreachable(_)));

    let restarted = supervisor::restart(&opened, 1, &opts).unwrap();
    assert_eq!(restarted.health, Health::Ready);
    assert_eq!(supervisor::status(&opened)[1].pid, Some(restarted.pid));
    assert!(matches!(supervisor::restart(&opened, 9, &opts), Err(TestnetError::UnknownValidator { .. })));

    let pids = opened.running_pids();
    assert_eq!(pids.len(), 3);
    let outcomes = supervisor::down(&testnet, Duration::from_secs(5)).unwrap();
    assert!(outcomes.iter().all(|(_, o)| *o == StopOutcome::Terminated), "{outcomes:?}");
    assert!(pids.iter().all(|pid| !is_alive(*pid)));
    assert!(Testnet::open(&dir).unwrap().running_pids().is_empty());
    // Down again: nothing to stop, and nothing else is touched.
    assert!(supervisor::down(&testnet, Duration::from_secs(1))
        .unwrap()
        .iter()
        .all(|(_, o)| *o == StopOutcome::NotRunning));

    let compose = bastion_testnet::compose::write_compose(&opened).unwrap();
    let text = std::fs::read_to_string(compose).unwrap();
    for i in 0..3 {
        assert!(
            text.contains(&format!("validator-{i}:")) && text.contains(&format!("/testnet/validator-{i}\""))
        );
    }
    assert!(text.contains("network_mode: host"));
}

#[test]
fn an_inconsistent_manifest_is_refused_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let (testnet, _) = setup(tmp.path(), &options(Some(2), false)).unwrap();
    let mut manifest = testnet.manifest.clone();
    manifest.validators.swap(0, 1);
    manifest.save(&tmp.path().join("testnet.json")).unwrap();
    assert!(matches!(Testnet::open(tmp.path()), Err(TestnetError::Config(_))));
    assert!(matches!(Testnet::open(&tmp.path().join("elsewhere")), Err(TestnetError::NoTestnet { .. })));
}
