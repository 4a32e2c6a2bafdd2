//! A UDP relay between the validators of a local testnet that partitions, delays and drops
//! their traffic by [`NetworkRules`], without root or the kernel's `netem` (which this
//! machine's kernel does not have).
//!
//! Layout. Validator `i` binds its QUIC endpoint to a private address `node[i]` (its
//! `config.toml`); the genesis lists the relay's address `public[i]` instead, so every peer
//! dials the relay. The relay owns two sockets per validator on 127.0.0.1: `public[i]` and
//! `face[i]` (an ephemeral port that stands for `i` towards the others). A datagram from
//! `node[y]`
//! * arriving on `public[x]` (`y` talks to `x`, whom it dialled) leaves from `face[y]` to
//!   `node[x]`;
//! * arriving on `face[x]` (`y` answers `x`, who dialled it) leaves from `public[y]` to
//!   `node[x]`.
//!
//! So each validator sees every peer at one stable address, answers reach the socket the
//! asker used, and the relay knows each datagram's sender and receiver, which is all the
//! rules need. Validators authenticate each other by key (TLS), not by address, so the
//! extra hop is invisible to them.
//!
//! Guarantees: traffic only goes between sockets on 127.0.0.1; datagrams from an address
//! that is no validator's `node` address are dropped and counted; each datagram's fate is
//! decided by the rules in force when it arrives (partition: dropped; loss: dropped at
//! random; delay: held in a bounded queue, dropped when the queue is full). The relay adds
//! one user-space hop (tens of microseconds) to every datagram.
//!
//! [`serve`] runs a testnet's relay until stopped, applying `DIR/network.json` whenever its
//! generation changes (see [`faults`](crate::faults)); `bastion testnet up --faults`
//! starts it as its own process ([`spawn`]), so it outlives a `--detach`ed `up`.

use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::faults::{self, FaultError, NetworkRules};
use crate::generate::Testnet;
use crate::layout::TestnetDir;
use crate::process::{self, StopOutcome};
use crate::TestnetError;

/// `DIR/relay.json`: the relay process of a `--faults` testnet.
pub const STATE_FILE: &str = "relay.json";
pub const LOG_FILE: &str = "relay.log";
/// The relay's command-line argument that [`is_relay_process`] looks for.
pub const RELAY_ARG: &str = "relay";
/// Datagrams held for delay at once; more are dropped.
const MAX_DELAYED: usize = 100_000;
/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
const MAX_DATAGRAM: usize = 65_536;

/// One validator's two addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayLink {
    /// In the genesis: where the others reach this validator (the relay listens here).
    pub public: SocketAddr,
    /// Where the validator's QUIC endpoint listens.
    pub node: SocketAddr,
}

/// Datagrams forwarded and dropped, by reason.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub forwarded: AtomicU64,
    pub dropped_partition: AtomicU64,
    pub dropped_loss: AtomicU64,
    pub dropped_unknown_sender: AtomicU64,
    pub dropped_queue_full: AtomicU64,
}

impl RelayStats {
    pub fn describe(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "forwarded {}, dropped: partition {}, loss {}, unknown sender {}, delay queue full {}",
            get(&self.forwarded),
            get(&self.dropped_partition),
            get(&self.dropped_loss),
            get(&self.dropped_unknown_sender),
            get(&self.dropped_queue_full)
        )
    }
}

/// A datagram waiting out its delay.
struct Delayed {
    due: Instant,
    seq: u64,
    out: usize,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    /// Reversed: the earliest is the greatest, for `BinaryHeap`.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

struct Shared {
    /// `public[0..n]` then `face[0..n]`.
    sockets: Vec<UdpSocket>,
    nodes: Vec<SocketAddr>,
    by_node: HashMap<SocketAddr, u16>,
    rules: RwLock<NetworkRules>,
    queue: Mutex<(BinaryHeap<Delayed>, u64)>,
    wake: Condvar,
    stop: AtomicBool,
    stats: RelayStats,
}

/// A running relay (its threads stop when it is dropped).
pub struct Relay {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Binds every `public` address and starts relaying with no faults.
    pub fn start(links: &[RelayLink]) -> Result<Relay, TestnetError> {
        let n = links.len();
        let mut sockets = Vec::with_capacity(2 * n);
        for link in links {
            sockets.push(bind(link.public)?);
        }
        for _ in links {
            sockets.push(bind(SocketAddr::from(([127, 0, 0, 1], 0)))?);
        }
        let nodes: Vec<SocketAddr> = links.iter().map(|l| l.node).collect();
        let by_node = nodes.iter().enumerate().map(|(i, a)| (*a, i as u16)).collect();
        let shared = Arc::new(Shared {
            sockets,
            nodes,
            by_node,
            rules: RwLock::new(NetworkRules::default()),
            queue: Mutex::new((BinaryHeap::new(), 0)),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            stats: RelayStats::default(),
        });
        let mut threads = Vec::with_capacity(2 * n + 1);
        for socket in 0..2 * n {
            let shared = shared.clone();
            threads.push(std::thread::spawn(move || receive_loop(&shared, socket)));
        }
        let delayer = shared.clone();
        threads.push(std::thread::spawn(move || delay_loop(&delayer)));
        Ok(Relay { shared, threads })
    }

    /// Puts `rules` in force for every datagram that arrives from now on.
    pub fn set_rules(&self, rules: NetworkRules) {
        if let Ok(mut current) = self.shared.rules.write() {
            *current = rules;
        }
    }

    pub fn rules(&self) -> NetworkRules {
        self.shared.rules.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn stats(&self) -> &RelayStats {
        &self.shared.stats
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn bind(addr: SocketAddr) -> Result<UdpSocket, TestnetError> {
    let socket = UdpSocket::bind(addr)
        .map_err(TestnetError::io("the network relay cannot bind UDP", addr.to_string()))?;
    socket.set_read_timeout(Some(POLL)).map_err(TestnetError::io("cannot configure", addr.to_string()))?;
    Ok(socket)
}

fn receive_loop(shared: &Shared, socket: usize) {
    let n = shared.nodes.len();
    let owner = (socket % n) as u16;
    let arrived_on_public = socket < n;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = shared.sockets[socket].recv_from(&mut buf) else { continue };
        let Some(&sender) = shared.by_node.get(&from) else {
            shared.stats.dropped_unknown_sender.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        // Out of the sender's other socket, so the receiver sees the address it expects.
        let out = if arrived_on_public { n + usize::from(sender) } else { usize::from(sender) };
        let to = shared.nodes[usize::from(owner)];
        let (reachable, loss, delay) = match shared.rules.read() {
            Ok(rules) => (rules.reachable(sender, owner), rules.loss(sender), rules.delay(sender)),
            Err(_) => (true, 0.0, Duration::ZERO),
        };
        if !reachable {
            shared.stats.dropped_partition.fetch_add(1, Ordering::Relaxed);
        } else if loss > 0.0 && rand::thread_rng().gen_bool(loss.min(1.0)) {
            shared.stats.dropped_loss.fetch_add(1, Ordering::Relaxed);
        } else if delay.is_zero() {
            send(shared, out, to, &buf[..len]);
        } else {
            hold(shared, Instant::now() + delay, out, to, buf[..len].to_vec());
        }
    }
}

fn send(shared: &Shared, out: usize, to: SocketAddr, bytes: &[u8]) {
    // A failed send is a lost datagram, which QUIC recovers from like any other loss.
    if shared.sockets[out].send_to(bytes, to).is_ok() {
        shared.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    }
}

fn hold(shared: &Shared, due: Instant, out: usize, to: SocketAddr, bytes: Vec<u8>) {
    let Ok(mut guard) = shared.queue.lock() else { return };
    let (queue, seq) = &mut *guard;
    if queue.len() >= MAX_DELAYED {
        shared.stats.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
        return;
    }
    *seq += 1;
    let earliest = queue.peek().is_none_or(|first| due < first.due);
    queue.push(Delayed { due, seq: *seq, out, to, bytes });
    drop(guard);
    if earliest {
        shared.wake.notify_one();
    }
}

fn delay_loop(shared: &Shared) {
    let Ok(mut guard) = shared.queue.lock() else { return };
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut due = Vec::new();
        while guard.0.peek().is_some_and(|d| d.due <= now) {
            due.extend(guard.0.pop());
        }
        if !due.is_empty() {
            drop(guard);
            for d in due {
                send(shared, d.out, d.to, &d.bytes);
            }
            guard = match shared.queue.lock() {
                Ok(g) => g,
                Err(_) => return,
            };
            continue;
        }
        let wait = guard.0.peek().map_or(POLL, |d| d.due.saturating_duration_since(now).min(POLL));
        guard = match shared.wake.wait_timeout(guard, wait) {
            Ok((g, _)) => g,
            Err(_) => return,
        };
    }
}

/// The relay layout of `testnet` (one link per validator).
pub fn links(testnet: &Testnet) -> Vec<RelayLink> {
    testnet
        .genesis
        .validators
        .iter()
        .zip(&testnet.configs)
        .map(|(v, c)| RelayLink { public: v.quic_addr, node: c.quic_listen })
        .collect()
}

/// Whether the testnet's validators reach each other through a relay (`up --faults`).
pub fn uses_relay(testnet: &Testnet) -> bool {
    links(testnet).iter().any(|l| l.public != l.node)
}

/// Turns a freshly created testnet (never started) into a relayed one: the genesis and
/// `testnet.json` get new relay addresses; the validators keep listening where their
/// `config.toml` says.
pub fn prepare(testnet: &mut Testnet) -> Result<(), TestnetError> {
    let public = allocate_udp(testnet.count())?;
    for (i, addr) in public.into_iter().enumerate() {
        testnet.genesis.validators[i].quic_addr = addr;
        if let Some(entry) = testnet.manifest.validator_mut(i as u16) {
            entry.quic_addr = addr;
        }
    }
    testnet.genesis.save(&testnet.dir.genesis())?;
    testnet.save_manifest()?;
    Ok(())
}

/// Distinct free UDP addresses on 127.0.0.1 (all held until all are picked).
fn allocate_udp(count: usize) -> Result<Vec<SocketAddr>, TestnetError> {
    let sockets = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TestnetError::NoFreePort { proto: "UDP", source })?;
    sockets
        .iter()
        .map(|s| s.local_addr().map_err(|source| TestnetError::NoFreePort { proto: "UDP", source }))
        .collect()
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct RelayState {
    pid: Option<u32>,
}

pub fn log_path(dir: &TestnetDir) -> PathBuf {
    dir.root().join(LOG_FILE)
}

fn state_path(dir: &TestnetDir) -> PathBuf {
    dir.root().join(STATE_FILE)
}

fn save_pid(dir: &TestnetDir, pid: Option<u32>) -> Result<(), FaultError> {
    let text = serde_json::to_string(&RelayState { pid }).unwrap_or_default();
    faults::write_atomic(&state_path(dir), &(text + "\n"))
}

/// Whether `pid` is alive and is the relay of the testnet in `dir`.
pub fn is_relay_process(pid: u32, dir: &TestnetDir) -> bool {
    // The relay's command line names the testnet directory (as `is_validator_process`
    // checks it for a validator's directory) and the relay argument.
    process::is_validator_process(pid, dir.root())
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.split(|b| *b == 0).any(|arg| arg == RELAY_ARG.as_bytes()))
            .unwrap_or(true)
}

/// The testnet's relay process, if it runs.
pub fn running_pid(dir: &TestnetDir) -> Option<u32> {
    let text = std::fs::read_to_string(state_path(dir)).ok()?;
    let state: RelayState = serde_json::from_str(&text).ok()?;
    state.pid.filter(|pid| is_relay_process(*pid, dir))
}

/// Starts `program args…` (which must run [`serve`] for this testnet and have the testnet
/// directory and [`RELAY_ARG`] on its command line) in its own process group, logging to
/// `DIR/relay.log`, and waits until it has bound its sockets and applied fresh, fault-free
/// rules. Returns its pid.
pub fn spawn(testnet: &Testnet, program: &Path, args: &[std::ffi::OsString]) -> Result<u32, FaultError> {
    use std::os::unix::process::CommandExt;
    let dir = testnet.dir.root();
    if let Some(pid) = running_pid(&testnet.dir) {
        return Err(TestnetError::AlreadyRunning { dir: dir.into(), pids: vec![pid] }.into());
    }
    let generation = faults::reset(dir)?;
    let log_file = log_path(&testnet.dir);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)
        .map_err(TestnetError::io("cannot open", &log_file))?;
    let err = log.try_clone().map_err(TestnetError::io("cannot open", &log_file))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(TestnetError::io("cannot start the network relay", program))?;
    save_pid(&testnet.dir, Some(child.id()))?;
    wait_started(testnet, &mut child, generation)
}

fn wait_started(testnet: &Testnet, child: &mut Child, generation: u64) -> Result<u32, FaultError> {
    let started = Instant::now();
    let limit = Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = save_pid(&testnet.dir, None);
            let log = log_path(&testnet.dir);
            return Err(FaultError::RelayExited {
                status: status.to_string(),
                tail: crate::logs::tail(&log, 10).join("\n"),
                log,
            });
        }
        if faults::applied(testnet.dir.root()).is_some_and(|g| g >= generation) {
            return Ok(child.id());
        }
        if started.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            let _ = save_pid(&testnet.dir, None);
            return Err(FaultError::NotApplied { generation, waited: limit, log: log_path(&testnet.dir) });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the testnet's relay if it runs (SIGTERM, then SIGKILL after `grace`).
pub fn stop(dir: &TestnetDir, grace: Duration) -> StopOutcome {
    let outcome = match running_pid(dir) {
        Some(pid) => process::stop_all(&[pid], grace, || reap(pid))[0],
        None => StopOutcome::NotRunning,
    };
    if state_path(dir).exists() {
        let _ = save_pid(dir, None);
    }
    outcome
}

/// Collects `pid` if it is our exited child (a relay started by this process).
fn reap(pid: u32) {
    if let Ok(raw) = libc::pid_t::try_from(pid) {
        // SAFETY: waitpid with WNOHANG on one pid has no memory-safety preconditions.
        unsafe { libc::waitpid(raw, std::ptr::null_mut(), libc::WNOHANG) };
    }
}

/// Runs the relay of the testnet until `stop` is set, applying `DIR/network.json` whenever
/// its generation changes and acknowledging it in `DIR/network.applied`.
pub fn serve(testnet: &Testnet, stop: &AtomicBool) -> Result<(), FaultError> {
    let dir = testnet.dir.root();
    let relay = Relay::start(&links(testnet))?;
    eprintln!("relay for {} validators of {} started", testnet.count(), testnet.manifest.chain_id);
    let mut applied = None;
    while !stop.load(Ordering::SeqCst) {
        match faults::load(dir) {
            Ok(file) if Some(file.generation) != applied => {
                match file.rules.validate(testnet.count()) {
                    Ok(()) => {
                        eprintln!("rules {}: {}", file.generation, file.rules.describe());
                        relay.set_rules(file.rules);
                    }
                    Err(e) => eprintln!("rules {} refused, keeping the previous ones: {e}", file.generation),
                }
                faults::write_atomic(&faults::applied_path(dir), &format!("{}\n", file.generation))?;
                applied = Some(file.generation);
                eprintln!("so far: {}", relay.stats().describe());
            }
            Ok(_) => {}
            Err(e) => eprintln!("cannot read the rules: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("relay stopped; {}", relay.stats().describe());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two "validators" (plain sockets) talking through a relay.
    fn pair() -> (Relay, [UdpSocket; 2], [SocketAddr; 2]) {
        let nodes = [UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap()];
        for s in &nodes {
            s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        }
        let public = allocate_udp(2).unwrap();
        let links: Vec<RelayLink> = nodes
            .iter()
            .zip(&public)
            .map(|(s, public)| RelayLink { public: *public, node: s.local_addr().unwrap() })
            .collect();
        let relay = Relay::start(&links).unwrap();
        (relay, nodes, [public[0], public[1]])
    }

    fn recv(socket: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 64];
        socket.recv_from(&mut buf).ok().map(|(n, from)| (buf[..n].to_vec(), from))
    }

    #[test]
    fn answers_come_back_from_the_dialled_address() {
        let (_relay, nodes, public) = pair();
        nodes[0].send_to(b"hello", public[1]).unwrap();
        let (bytes, face0) = recv(&nodes[1]).unwrap();
        assert_eq!(bytes, b"hello");
        assert_ne!(face0, nodes[0].local_addr().unwrap());
        nodes[1].send_to(b"back", face0).unwrap();
        assert_eq!(recv(&nodes[0]).unwrap(), (b"back".to_vec(), public[1]));
    }

    #[test]
    fn partition_drops_both_ways_and_heals() {
        let (relay, nodes, public) = pair();
        relay.set_rules(NetworkRules { groups: vec![vec![1]], ..Default::default() });
        nodes[0].send_to(b"x", public[1]).unwrap();
        nodes[1].send_to(b"y", public[0]).unwrap();
        assert!(recv(&nodes[1]).is_none() && recv(&nodes[0]).is_none());
        assert_eq!(relay.stats().dropped_partition.load(Ordering::Relaxed), 2);
        relay.set_rules(NetworkRules::default());
        nodes[1].send_to(b"z", public[0]).unwrap();
        assert_eq!(recv(&nodes[0]).unwrap().0, b"z");
    }

    #[test]
    fn delay_holds_datagrams_in_order_and_loss_drops_them() {
        let (relay, nodes, public) = pair();
        relay.set_rules(NetworkRules { delay_ms: vec![150], ..Default::default() });
        let sent = Instant::now();
        for i in 0..3u8 {
            nodes[0].send_to(&[i], public[1]).unwrap();
        }
        let got: Vec<u8> = (0..3).map(|_| recv(&nodes[1]).unwrap().0[0]).collect();
        assert!(sent.elapsed() >= Duration::from_millis(150));
        assert_eq!(got, vec![0, 1, 2]);
        relay.set_rules(NetworkRules { loss_percent: vec![100.0], ..Default::default() });
        nodes[0].send_to(b"lost", public[1]).unwrap();
        assert!(recv(&nodes[1]).is_none());
        assert_eq!(relay.stats().dropped_loss.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn strangers_are_not_relayed() {
        let (relay, nodes, public) = pair();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"?", public[1]).unwrap();
        assert!(recv(&nodes[1]).is_none());
        assert_eq!(relay.stats().dropped_unknown_sender.load(Ordering::Relaxed), 1);
    }
}
