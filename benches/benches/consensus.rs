//! Consensus hot paths: verifying quorum certificates of growing committees, and the core's
//! own throughput (blocks committed per second by 4 in-memory validators, no network, no
//! disk) — the ceiling the node's I/O can only lower.

use std::collections::VecDeque;

use bastion_consensus::{
    Action, Block, BlockInfo, CertificateCache, Committee, Config, ConsensusMessage, Core, Event, QuorumCert,
    Vote, VoteData,
};
use bastion_crypto::{Digest, DigestBuilder, KeyPair};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn keys(n: usize) -> Vec<KeyPair> {
    (0..n).map(|i| KeyPair::from_seed(DigestBuilder::new("bench/key").u64(i as u64).finish().0)).collect()
}

fn quorum_cert(committee: &Committee, keys: &[KeyPair]) -> QuorumCert {
    let genesis = BlockInfo::genesis(committee.chain_id());
    let block = BlockInfo { digest: Digest([7; 32]), round: 1, height: 1 };
    let data = VoteData { block, parent: genesis };
    let votes: Vec<Vote> = keys
        .iter()
        .enumerate()
        .take(committee.quorum())
        .map(|(i, k)| Vote::new(data, i as u16, k, committee.chain_id()))
        .collect();
    let refs: Vec<&Vote> = votes.iter().collect();
    QuorumCert::from_votes(data, &refs, committee.size())
}

fn qc_verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("qc_verify");
    for n in [4usize, 10, 31, 100] {
        let keys = keys(n);
        let publics: Vec<_> = keys.iter().map(|k| k.public()).collect();
        let committee = Committee::new("bench", &publics).expect("valid keys");
        let qc = quorum_cert(&committee, &keys);
        group.throughput(Throughput::Elements(committee.quorum() as u64));
        group.bench_with_input(BenchmarkId::new("uncached", n), &qc, |b, qc| {
            b.iter(|| qc.verify(&committee, &mut CertificateCache::default()).expect("valid QC"))
        });
        let mut cache = CertificateCache::default();
        group.bench_with_input(BenchmarkId::new("cached", n), &qc, |b, qc| {
            b.iter(|| qc.verify(&committee, &mut cache).expect("valid QC"))
        });
    }
    group.finish();
}

/// Runs 4 cores with instant, in-order delivery until `blocks` blocks are committed everywhere.
fn commit_blocks(blocks: u64) -> u64 {
    let keys = keys(4);
    let publics: Vec<_> = keys.iter().map(|k| k.public()).collect();
    let committee = Committee::new("bench", &publics).expect("valid keys");
    let mut cores: Vec<Core> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Core::new(committee.clone(), i as u16, k.clone(), Config::default()))
        .collect();
    let mut queue: VecDeque<(u16, u16, ConsensusMessage)> = VecDeque::new();
    let mut committed = [0u64; 4];
    let route = |from: u16, actions: Vec<Action>, queue: &mut VecDeque<_>, committed: &mut [u64; 4]| {
        for action in actions {
            match action {
                Action::Send(to, m) => queue.push_back((to, from, m)),
                Action::Broadcast(m) => {
                    for to in (0..4).filter(|&t| t != from) {
                        queue.push_back((to, from, m.clone()));
                    }
                }
                Action::Commit(bs) => committed[usize::from(from)] += bs.len() as u64,
                _ => {}
            }
        }
    };
    for (i, core) in cores.iter_mut().enumerate() {
        let actions = core.start();
        route(i as u16, actions, &mut queue, &mut committed);
    }
    while committed.iter().min().copied().unwrap_or(0) < blocks {
        let Some((to, from, message)) = queue.pop_front() else { break };
        let actions = cores[usize::from(to)].handle(Event::Message(from, message));
        route(to, actions, &mut queue, &mut committed);
    }
    committed.iter().copied().min().unwrap_or(0)
}

fn core_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_commit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(200));
    group.bench_function("n4_200_blocks", |b| b.iter(|| assert!(commit_blocks(200) >= 200)));
    group.finish();
}

fn block_verification(c: &mut Criterion) {
    let keys = keys(4);
    let publics: Vec<_> = keys.iter().map(|k| k.public()).collect();
    let committee = Committee::new("bench", &publics).expect("valid keys");
    let qc = quorum_cert(&committee, &keys);
    let payload: Vec<Digest> =
        (0..256u64).map(|i| DigestBuilder::new("bench/batch").u64(i).finish()).collect();
    let block = Block::new(&committee, &keys[2], 2, 2, qc, None, payload);
    let mut cache = CertificateCache::default();
    c.bench_function("block_verify_256_digests_cached_qc", |b| {
        b.iter(|| block.verify(&committee, &mut cache).expect("valid block"))
    });
}

criterion_group!(benches, qc_verification, core_throughput, block_verification);
criterion_main!(benches);
