//! End-to-end tests of the validator transport over real QUIC on 127.0.0.1.
//!
//! Every test is bounded by a Tokio timeout. Ports are picked by binding UDP sockets to
//! port 0 before any transport starts, so every committee address is known up front.

use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use bastion_crypto::{KeyPair, PublicKey};
use bastion_node::transport::endpoint::client_config;
use bastion_node::transport::identity::TlsIdentity;
use bastion_node::transport::pinning::{client_tls_config, server_tls_config};
use bastion_node::transport::{
    frame, Inbound, SendError, Transport, TransportConfig, TransportError, TransportHandle, SERVER_NAME,
};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use tokio::time::{sleep, timeout};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Msg {
    Hello { from: u16, seq: u32 },
    Blob(Vec<u8>),
}

const TEST_LIMIT: Duration = Duration::from_secs(40);

/// Runs `test` under the per-test time limit.
async fn bounded<F: Future<Output = ()>>(test: F) {
    timeout(TEST_LIMIT, test).await.expect("test timed out");
}

fn keys(n: u8) -> Vec<KeyPair> {
    (0..n).map(|i| KeyPair::from_seed([i + 1; 32])).collect()
}

fn outsider_key() -> KeyPair {
    KeyPair::from_seed([0xee; 32])
}

fn bind_local() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

struct Net {
    keys: Vec<KeyPair>,
    committee: Vec<(PublicKey, SocketAddr)>,
    sockets: Vec<Option<UdpSocket>>,
}

impl Net {
    fn new(n: u8) -> Self {
        let keys = keys(n);
        let sockets: Vec<UdpSocket> = (0..n).map(|_| bind_local()).collect();
        let committee = keys
            .iter()
            .zip(&sockets)
            .map(|(k, s)| (k.public(), s.local_addr().expect("local addr")))
            .collect();
        Net { keys, committee, sockets: sockets.into_iter().map(Some).collect() }
    }

    fn config(&self, i: u16) -> TransportConfig {
        let (_, addr) = self.committee[usize::from(i)];
        TransportConfig::new(i, self.keys[usize::from(i)].clone(), self.committee.clone(), addr)
    }

    fn addr(&self, i: u16) -> SocketAddr {
        self.committee[usize::from(i)].1
    }

    fn key(&self, i: u16) -> PublicKey {
        self.committee[usize::from(i)].0
    }

    /// Takes validator `i`'s pre-bound socket (for raw endpoints or impostors).
    fn take_socket(&mut self, i: u16) -> UdpSocket {
        self.sockets[usize::from(i)].take().expect("socket already taken")
    }

    fn start(&mut self, i: u16) -> (TransportHandle<Msg>, Inbound<Msg>) {
        self.start_with(self.config(i))
    }

    fn start_with(&mut self, config: TransportConfig) -> (TransportHandle<Msg>, Inbound<Msg>) {
        let socket = self.take_socket(config.me);
        Transport::start_on(config, socket).expect("start transport")
    }

    /// Starts validator `i` again on its address, retrying while the old socket is released.
    async fn restart(&self, i: u16) -> (TransportHandle<Msg>, Inbound<Msg>) {
        for _ in 0..100 {
            match Transport::start(self.config(i)) {
                Ok(started) => return started,
                Err(TransportError::Bind { .. }) => sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("restart failed: {e}"),
            }
        }
        panic!("address of validator {i} never became free");
    }
}

async fn recv(rx: &mut Inbound<Msg>) -> (u16, Msg) {
    rx.recv().await.expect("inbound channel closed")
}

/// Asserts nothing arrives on `rx` for `wait`.
async fn assert_silent(rx: &mut Inbound<Msg>, wait: Duration) {
    if let Ok(got) = timeout(wait, rx.recv()).await {
        panic!("unexpected delivery: {got:?}");
    }
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        sleep(Duration::from_millis(20)).await;
    }
}

/// A raw QUIC client endpoint authenticated as the holder of `key`.
async fn raw_connect(key: &KeyPair, peer: PublicKey, addr: SocketAddr) -> quinn::Connection {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client");
    let identity = TlsIdentity::new(key).expect("identity");
    let config = client_config(&identity, peer).expect("client config");
    endpoint.connect_with(config, addr, SERVER_NAME).expect("connect").await.expect("handshake")
}

/// Opens a raw QUIC connection with a fully custom TLS client configuration; `Err` if the
/// handshake fails or the server closes the connection right after it.
async fn raw_attempt(tls: rustls::ClientConfig, addr: SocketAddr) -> Result<(), String> {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client");
    let quic = QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    let connecting = endpoint
        .connect_with(quinn::ClientConfig::new(Arc::new(quic)), addr, SERVER_NAME)
        .map_err(|e| e.to_string())?;
    let conn = connecting.await.map_err(|e| e.to_string())?;
    // A TLS 1.3 client finishes its side before the server has checked its certificate;
    // a refused client sees the connection closed at once.
    let mut stream = conn.open_uni().await.map_err(|e| e.to_string())?;
    let frame = frame::encode(&Msg::Hello { from: 0, seq: 666 }, 1 << 20).expect("encode");
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    let _ = stream.finish();
    match timeout(Duration::from_secs(2), conn.closed()).await {
        Ok(reason) => Err(reason.to_string()),
        Err(_) => Ok(()),
    }
}

/// Presents `cert` (someone else's certificate) while signing with `signer`'s key.
#[derive(Debug)]
struct StolenCert(Arc<CertifiedKey>);

impl StolenCert {
    fn new(cert: CertificateDer<'static>, signer: &KeyPair) -> Self {
        let der = TlsIdentity::new(signer).expect("identity").private_key();
        let key = rustls::crypto::ring::sign::any_supported_type(&der).expect("signing key");
        StolenCert(Arc::new(CertifiedKey::new(vec![cert], key)))
    }
}

impl rustls::client::ResolvesClientCert for StolenCert {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl rustls::server::ResolvesServerCert for StolenCert {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn cert_of(key: &KeyPair) -> CertificateDer<'static> {
    TlsIdentity::new(key).expect("identity").cert_chain().remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_broadcast_and_every_pair_keeps_order() {
    bounded(async {
        const PER_SENDER: u32 = 200;
        let mut net = Net::new(4);
        let nodes: Vec<_> = (0..4).map(|i| net.start(i)).collect();
        // Sent before any connection exists: the per-peer queues hold them.
        for seq in 0..PER_SENDER {
            for (handle, _) in &nodes {
                let outcome = handle.broadcast(&Msg::Hello { from: handle.me(), seq }).expect("broadcast");
                assert_eq!((outcome.queued, outcome.dropped.len()), (3, 0));
            }
        }
        // Handles stay alive until the end: dropping one shuts that validator down.
        let (handles, receivers): (Vec<_>, Vec<_>) = nodes.into_iter().unzip();
        for (handle, mut rx) in handles.iter().zip(receivers) {
            let mut next: HashMap<u16, u32> = HashMap::new();
            for _ in 0..3 * PER_SENDER {
                let (sender, msg) = recv(&mut rx).await;
                let Msg::Hello { from, seq } = msg else { panic!("unexpected {msg:?}") };
                assert_eq!(sender, from, "message attributed to the wrong validator");
                assert_ne!(sender, handle.me(), "a validator received its own broadcast");
                let expected = next.entry(sender).or_insert(0);
                assert_eq!(seq, *expected, "order from {sender} to {} broken", handle.me());
                *expected += 1;
            }
            assert!(next.values().all(|n| *n == PER_SENDER));
            assert_silent(&mut rx, Duration::from_millis(200)).await;
            let stats = handle.stats();
            assert_eq!(stats.dropped_full, 0);
            assert_eq!(stats.messages_received, u64::from(3 * PER_SENDER));
            for peer in (0..4).filter(|p| *p != handle.me()) {
                assert!(handle.is_connected(peer), "{} not connected to {peer}: {stats:?}", handle.me());
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_outside_the_committee_cannot_deliver() {
    bounded(async {
        let mut net = Net::new(2);
        let (v1, mut v1_rx) = net.start(1);
        let outsider = outsider_key();

        // A full transport run by the outsider, which lists itself where validator 0 is.
        let mut its_view = net.committee.clone();
        its_view[0].0 = outsider.public();
        let socket = net.take_socket(0);
        let listen = socket.local_addr().expect("addr");
        let config = TransportConfig::new(0, outsider.clone(), its_view, listen);
        let (intruder, _intruder_rx) = Transport::<Msg>::start_on(config, socket).expect("start");
        for seq in 0..10 {
            intruder.send(1, &Msg::Hello { from: 0, seq }).expect("queued");
        }
        // Its handshakes fail on validator 1's side (it may believe it connected briefly).
        wait_until(|| v1.stats().connections_rejected >= 2).await;
        assert!(!intruder.is_connected(1));
        assert!(!v1.is_connected(0));

        // A raw client with the outsider's own certificate.
        let tls = client_tls_config(&TlsIdentity::new(&outsider).expect("id"), net.key(1)).expect("tls");
        assert!(raw_attempt(tls, net.addr(1)).await.is_err(), "unknown key was admitted");

        assert_silent(&mut v1_rx, Duration::from_millis(500)).await;
        assert_eq!(v1.stats().messages_received, 0);
        assert!(v1.stats().connections_rejected >= 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostors_cannot_take_a_validators_identity() {
    bounded(async {
        let mut net = Net::new(4);
        let (v0, _v0_rx) = net.start(0);
        let (v3, mut v3_rx) = net.start(3);
        let impostor = outsider_key();
        let committee_keys: Arc<[PublicKey]> = net.committee.iter().map(|(k, _)| *k).collect();

        // 1. An impostor listens on validator 2's address, first with its own certificate,
        //    then with validator 2's certificate (which it cannot sign for).
        let impostor_id = TlsIdentity::new(&impostor).expect("identity");
        let own = server_tls_config(&impostor_id, committee_keys.clone()).expect("tls");
        let mut stolen = server_tls_config(&impostor_id, committee_keys.clone()).expect("tls");
        stolen.cert_resolver = Arc::new(StolenCert::new(cert_of(&net.keys[2]), &impostor));
        let socket = net.take_socket(2);
        let quic = QuicServerConfig::try_from(own).expect("quic server");
        let server = quinn::ServerConfig::with_crypto(Arc::new(quic));
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .expect("impostor endpoint");
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let impostor_loop = {
            let (endpoint, accepted) = (endpoint.clone(), accepted.clone());
            tokio::spawn(async move {
                while let Some(incoming) = endpoint.accept().await {
                    if incoming.await.is_ok() {
                        accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        };
        for seq in 0..5 {
            v0.send(2, &Msg::Hello { from: 0, seq }).expect("queued");
        }
        let before = v0.stats().dial_failures;
        wait_until(|| v0.stats().dial_failures >= before + 2).await;
        let quic = QuicServerConfig::try_from(stolen).expect("quic server");
        endpoint.set_server_config(Some(quinn::ServerConfig::with_crypto(Arc::new(quic))));
        let before = v0.stats().dial_failures;
        wait_until(|| v0.stats().dial_failures >= before + 2).await;
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0, "impostor got a connection");
        assert!(!v0.is_connected(2));

        // 2. The impostor dials validator 3 claiming to be validator 2.
        let mut forged = client_tls_config(&impostor_id, net.key(3)).expect("tls");
        forged.client_auth_cert_resolver = Arc::new(StolenCert::new(cert_of(&net.keys[2]), &impostor));
        assert!(raw_attempt(forged, net.addr(3)).await.is_err(), "forged identity was admitted");
        let own = client_tls_config(&impostor_id, net.key(3)).expect("tls");
        assert!(raw_attempt(own, net.addr(3)).await.is_err(), "unknown key was admitted");

        assert_silent(&mut v3_rx, Duration::from_millis(500)).await;
        assert!(v3.stats().connections_rejected >= 2);
        assert!(!v3.is_connected(2));
        impostor_loop.abort();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_dropped_and_counted() {
    bounded(async {
        const LIMIT: usize = 1024;
        let mut net = Net::new(2);
        let mut config = net.config(1);
        config.max_frame_bytes = LIMIT;
        let (v1, mut v1_rx) = net.start_with(config);
        let key0 = net.keys[0].clone();

        let conn = raw_connect(&key0, net.key(1), net.addr(1)).await;
        let mut stream = conn.open_uni().await.expect("stream");
        let header = |len: u32, version: u8| {
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.push(version);
            bytes
        };
        // Unknown version, a payload that is not a Msg, an empty frame, then a good one.
        let mut bad_version = header(3, 2);
        bad_version.extend_from_slice(&[0, 0]);
        let mut garbage = header(5, frame::PROTOCOL_VERSION);
        garbage.extend_from_slice(&[0xff; 4]);
        let empty = 0u32.to_le_bytes().to_vec();
        let good = frame::encode(&Msg::Hello { from: 0, seq: 1 }, LIMIT).expect("encode");
        for bytes in [bad_version, garbage, empty, good.to_vec()] {
            stream.write_all(&bytes).await.expect("write");
        }
        assert_eq!(recv(&mut v1_rx).await, (0, Msg::Hello { from: 0, seq: 1 }));
        let stats = v1.stats();
        assert_eq!((stats.frames_bad_version, stats.frames_undecodable), (1, 2));

        // A length over the limit: counted, and the connection is closed without the
        // transport waiting for (or allocating) the announced body.
        stream.write_all(&(LIMIT as u32 + 1).to_le_bytes()).await.expect("write");
        let reason = conn.closed().await;
        assert!(matches!(reason, quinn::ConnectionError::ApplicationClosed(_)), "{reason}");
        assert_eq!(v1.stats().frames_too_large, 1);
        // A frame announcing u32::MAX bytes on a fresh connection is refused the same way.
        let conn = raw_connect(&key0, net.key(1), net.addr(1)).await;
        let mut stream = conn.open_uni().await.expect("stream");
        stream.write_all(&header(u32::MAX, frame::PROTOCOL_VERSION)).await.expect("write");
        conn.closed().await;
        assert_eq!(v1.stats().frames_too_large, 2);

        // The transport keeps working: a new connection delivers.
        let conn = raw_connect(&key0, net.key(1), net.addr(1)).await;
        let mut stream = conn.open_uni().await.expect("stream");
        let good = frame::encode(&Msg::Hello { from: 0, seq: 2 }, LIMIT).expect("encode");
        stream.write_all(&good).await.expect("write");
        assert_eq!(recv(&mut v1_rx).await, (0, Msg::Hello { from: 0, seq: 2 }));
        assert_eq!(v1.stats().messages_received, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_by_the_sender() {
    bounded(async {
        let mut net = Net::new(2);
        let mut config = net.config(0);
        config.max_frame_bytes = 1024;
        let (v0, _rx) = net.start_with(config);
        let err = v0.send(1, &Msg::Blob(vec![7; 2000])).expect_err("too large");
        assert!(matches!(err, SendError::TooLarge { max: 1024, .. }), "{err}");
        assert!(matches!(v0.broadcast(&Msg::Blob(vec![7; 2000])), Err(SendError::TooLarge { .. })));
        assert_eq!(v0.send(0, &Msg::Blob(vec![])), Err(SendError::UnknownPeer(0)));
        assert_eq!(v0.send(9, &Msg::Blob(vec![])), Err(SendError::UnknownPeer(9)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_peer_does_not_stall_the_others_and_is_reached_when_it_comes_up() {
    bounded(async {
        const QUEUE: usize = 16;
        let mut net = Net::new(4);
        let mut config = net.config(0);
        config.send_queue_len = QUEUE;
        let (v0, _v0_rx) = net.start_with(config);
        let (_v1, mut v1_rx) = net.start(1);
        let (_v2, mut v2_rx) = net.start(2);

        // Validator 3 is down: its queue fills and further messages are dropped, visibly.
        let mut full = 0;
        for seq in 0..100 {
            match v0.send(3, &Msg::Hello { from: 0, seq }) {
                Ok(()) => assert!(seq < QUEUE as u32, "queue bound not enforced"),
                Err(SendError::QueueFull(3)) => full += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(full, 100 - QUEUE);
        assert_eq!(v0.stats().dropped_full, (100 - QUEUE) as u64);

        // Meanwhile everyone else is served.
        let outcome = v0.broadcast(&Msg::Hello { from: 0, seq: 1000 }).expect("broadcast");
        assert_eq!(outcome.dropped, vec![3]);
        assert_eq!(recv(&mut v1_rx).await, (0, Msg::Hello { from: 0, seq: 1000 }));
        assert_eq!(recv(&mut v2_rx).await, (0, Msg::Hello { from: 0, seq: 1000 }));

        // Validator 3 comes up: it gets the queued messages, in order, then new ones.
        let (v3, mut v3_rx) = net.start(3);
        for seq in 0..QUEUE as u32 {
            assert_eq!(recv(&mut v3_rx).await, (0, Msg::Hello { from: 0, seq }));
        }
        wait_until(|| v0.is_connected(3)).await;
        v0.send(3, &Msg::Hello { from: 0, seq: 2000 }).expect("queued");
        assert_eq!(recv(&mut v3_rx).await, (0, Msg::Hello { from: 0, seq: 2000 }));
        // And it can talk to the validators it only accepts from.
        v3.broadcast(&Msg::Hello { from: 3, seq: 0 }).expect("broadcast");
        assert_eq!(recv(&mut v1_rx).await, (3, Msg::Hello { from: 3, seq: 0 }));
        assert_eq!(recv(&mut v2_rx).await, (3, Msg::Hello { from: 3, seq: 0 }));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_applies_backpressure_without_loss() {
    bounded(async {
        const COUNT: u32 = 300;
        let mut net = Net::new(2);
        let mut config = net.config(1);
        config.inbound_queue_len = 4;
        let (v0, _v0_rx) = net.start(0);
        let (_v1, mut v1_rx) = net.start_with(config);
        for seq in 0..COUNT {
            v0.send(1, &Msg::Hello { from: 0, seq }).expect("queued");
        }
        // Nobody reads for a while; the readers wait instead of dropping.
        sleep(Duration::from_millis(300)).await;
        for seq in 0..COUNT {
            assert_eq!(recv(&mut v1_rx).await, (0, Msg::Hello { from: 0, seq }));
        }
        assert_eq!(v0.stats().dropped_full, 0);
    })
    .await;
}

/// Megabytes at once between four validators: connections grow their packets to the path's
/// limit (path MTU discovery; loopback carries 64 KiB) and their congestion windows until
/// many large packets leave in one segmentation-offload send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_of_large_messages_arrive_complete_and_in_order() {
    bounded(async {
        const ROUNDS: u8 = 20;
        const PER_ROUND: usize = 25;
        const SIZE: usize = 64 * 1024;
        let mut net = Net::new(4);
        let nodes: Vec<_> = (0..4).map(|i| net.start(i)).collect();
        let (handles, mut receivers): (Vec<_>, Vec<_>) = nodes.into_iter().unzip();
        for round in 0..ROUNDS {
            for handle in &handles {
                for _ in 0..PER_ROUND {
                    handle.broadcast(&Msg::Blob(vec![round; SIZE])).expect("queued");
                }
            }
            for rx in &mut receivers {
                for _ in 0..3 * PER_ROUND {
                    let (_, msg) = recv(rx).await;
                    let Msg::Blob(bytes) = msg else { panic!("unexpected {msg:?}") };
                    assert!(
                        bytes.len() == SIZE && bytes.iter().all(|b| *b == round),
                        "a blob of round {round} damaged or late"
                    );
                }
            }
        }
        assert!(handles.iter().all(|handle| handle.stats().dropped_full == 0));
    })
    .await;
}

/// Keeps sending from every live validator to `target` and back until each direction has
/// delivered at least once (messages sent into a dying connection may be lost).
async fn exchange_with(target: u16, nodes: &mut [(TransportHandle<Msg>, Inbound<Msg>)]) {
    let mut heard_by_target = std::collections::HashSet::new();
    let mut heard_from_target = std::collections::HashSet::new();
    let others: Vec<u16> = (0..nodes.len() as u16).filter(|i| *i != target).collect();
    let mut seq = 0;
    while heard_by_target.len() < others.len() || heard_from_target.len() < others.len() {
        seq += 1;
        for (handle, _) in nodes.iter() {
            if handle.me() == target {
                let _ = handle.broadcast(&Msg::Hello { from: target, seq });
            } else {
                let _ = handle.send(target, &Msg::Hello { from: handle.me(), seq });
            }
        }
        sleep(Duration::from_millis(100)).await;
        for (handle, rx) in nodes.iter_mut() {
            while let Ok((from, msg)) = rx.try_recv() {
                let Msg::Hello { from: claimed, .. } = msg else { panic!("unexpected {msg:?}") };
                assert_eq!(claimed, from, "message attributed to the wrong validator");
                if handle.me() == target {
                    heard_by_target.insert(from);
                } else if from == target {
                    heard_from_target.insert(handle.me());
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_validator_rejoins() {
    bounded(async {
        let mut net = Net::new(4);
        let mut nodes: Vec<_> = (0..4).map(|i| net.start(i)).collect();
        exchange_with(2, &mut nodes).await;

        // Killed by dropping its handle, then started again on the same address.
        drop(nodes.remove(2));
        nodes.insert(2, net.restart(2).await);
        exchange_with(2, &mut nodes).await;

        // A clean shutdown, then a restart: traffic resumes again.
        nodes[2].0.shutdown().await;
        assert_eq!(nodes[2].0.send(0, &Msg::Blob(vec![])), Err(SendError::Closed));
        drop(nodes.remove(2));
        nodes.insert(2, net.restart(2).await);
        exchange_with(2, &mut nodes).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_validator_is_reconnected_before_the_idle_timeout() {
    bounded(async {
        let mut net = Net::new(4);
        let mut nodes: Vec<_> = (0..3).map(|i| net.start(i)).collect();
        // Validator 3 runs on its own runtime so it can die without closing anything.
        let doomed = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let crashed = {
            let _guard = doomed.enter();
            net.start(3)
        };
        nodes.push(crashed);
        exchange_with(3, &mut nodes).await;

        // Crash: its tasks vanish, no CONNECTION_CLOSE is sent, peers still think the old
        // connections are alive.
        doomed.shutdown_background();
        drop(nodes.pop());
        assert!(nodes.iter().all(|(h, _)| h.is_connected(3)));
        nodes.push(net.restart(3).await);
        // The new incarnation resets the stale connections (same stateless-reset key), so
        // traffic resumes well before the 10 s idle timeout would have noticed the crash.
        timeout(Duration::from_secs(6), exchange_with(3, &mut nodes))
            .await
            .expect("peers did not notice the restart before the idle timeout");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_errors_are_clear() {
    bounded(async {
        let net = Net::new(2);
        // Validator 0's address is still held by the test's socket.
        let err = Transport::<Msg>::start(net.config(0)).map(|_| ()).expect_err("port taken");
        assert!(matches!(err, TransportError::Bind { addr, .. } if addr == net.addr(0)), "{err}");
        assert!(err.to_string().contains(&net.addr(0).to_string()));

        let mut config = net.config(1);
        config.key = outsider_key();
        let err = Transport::<Msg>::start(config).map(|_| ()).expect_err("wrong key");
        assert!(matches!(err, TransportError::KeyMismatch { me: 1, .. }), "{err}");

        let mut config = net.config(1);
        config.me = 5;
        let err = Transport::<Msg>::start(config).map(|_| ()).expect_err("not a member");
        assert!(matches!(err, TransportError::NotInCommittee { me: 5, size: 2 }), "{err}");
    })
    .await;
}
