//! Fuzz targets of certificate verification and of the core's message handling; see
//! `fuzz/harness.rs`. Inputs are wire encodings (bincode, fixed-width little endian, no
//! trailing bytes, limited to the input's length — the node's frame codec).
//!
//! What every input must satisfy:
//! * nothing panics;
//! * a [`QuorumCert`] or [`TimeoutCert`] verifies only if an independent check (each
//!   signer's signature verified on its own with `bastion_crypto::verify`, a quorum of
//!   distinct committee members, well-formed rounds) accepts it too — so no mutated
//!   certificate is accepted unless it is still a genuine one;
//! * a cache warmed with genuine certificates never changes a verdict;
//! * a core fed any sequence of decoded messages never votes twice in one round.

#[path = "../../fuzz/harness.rs"]
mod harness;

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;

use bastion_consensus::{
    domains, CertificateCache, Config, ConsensusMessage, Core, Event, QuorumCert, Round, SyncInfo, Timeout,
    TimeoutCert, VoteData,
};
use bastion_crypto::verify;
use bincode::Options;
use common::{batch, votes_in, Fixture};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn codec(limit: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
        .with_limit(limit as u64)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    codec(usize::MAX).serialize(value).expect("test values encode")
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    codec(bytes.len()).deserialize(bytes).ok()
}

/// The committees certificates are checked against: the one the seeds are signed for, and
/// a larger one with other keys and quorum.
fn committees() -> [Fixture; 2] {
    [Fixture::new(4), Fixture::new(7)]
}

/// The independent rule for a quorum certificate.
fn genuine_qc(f: &Fixture, qc: &QuorumCert) -> bool {
    if qc.round() == 0 {
        return qc == &f.genesis_qc();
    }
    let signers: Vec<_> = qc.signers.iter().collect();
    let digest = qc.data.signing_digest(f.chain_id());
    qc.data.block.round > qc.data.parent.round
        && qc.data.parent.height.checked_add(1) == Some(qc.data.block.height)
        && qc.signers == {
            let mut exact = bastion_consensus::SignerBitmap::new(f.n());
            signers.iter().for_each(|&s| exact.insert(s));
            exact
        }
        && signers.len() == qc.signatures.len()
        && signers.len() >= f.committee.quorum()
        && signers.iter().zip(&qc.signatures).all(|(&s, sig)| {
            usize::from(s) < f.n()
                && verify(domains::VOTE, digest.as_bytes(), &f.key(s).public(), sig).is_ok()
        })
}

/// The independent rule for a timeout certificate.
fn genuine_tc(f: &Fixture, tc: &TimeoutCert) -> bool {
    tc.signatures.windows(2).all(|w| w[0].author < w[1].author)
        && tc.signatures.len() >= f.committee.quorum()
        && tc.signatures.iter().all(|s| {
            let digest = Timeout::signing_digest(f.chain_id(), tc.round, s.high_qc_round);
            s.high_qc_round < tc.round
                && usize::from(s.author) < f.n()
                && verify(domains::TIMEOUT, digest.as_bytes(), &f.key(s.author).public(), &s.signature)
                    .is_ok()
        })
}

fn qc_seeds(f: &Fixture) -> Vec<QuorumCert> {
    let chain = f.certified_chain(&[1, 2, 4]);
    let mut qcs: Vec<QuorumCert> = chain.into_iter().map(|(_, qc)| qc).collect();
    let block = f.block(1, 1, &f.genesis_qc(), None, vec![batch(1), batch(2)]);
    let all: Vec<_> = (0..f.n() as u16).collect();
    qcs.push(f.qc(&block, &all));
    qcs.push(f.genesis_qc());
    qcs
}

fn tc_seeds(f: &Fixture) -> Vec<TimeoutCert> {
    let quorum = f.committee.quorum();
    let mixed: Vec<Round> = [1, 2, 4, 0].into_iter().cycle().take(quorum).collect();
    vec![f.tc(3, &vec![0; quorum]), f.tc(5, &mixed), f.tc(2, &vec![1; f.n()])]
}

/// Named seed files from `values` of both committees.
fn named<T: Serialize>(prefix: &str, values: impl Fn(&Fixture) -> Vec<T>) -> Vec<(String, Vec<u8>)> {
    committees()
        .iter()
        .flat_map(|f| {
            values(f)
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{prefix}_n{}_{i}.bin", f.n()), encode(v)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn ensure(target: &str, seeds: Vec<(String, Vec<u8>)>) {
    let seeds: Vec<(&str, Vec<u8>)> = seeds.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    harness::ensure_seeds(target, &seeds);
}

/// Verifies with a fresh cache and with one warmed by genuine certificates; both must agree.
fn verdicts<T>(
    committees: &[Fixture; 2],
    warm: &RefCell<Vec<CertificateCache>>,
    verify_with: impl Fn(&Fixture, &mut CertificateCache) -> bool,
    genuine: impl Fn(&Fixture) -> bool,
    what: &T,
) -> Result<(), String>
where
    T: std::fmt::Debug,
{
    for (f, cache) in committees.iter().zip(warm.borrow_mut().iter_mut()) {
        let fresh = verify_with(f, &mut CertificateCache::default());
        let cached = verify_with(f, cache);
        if fresh != cached {
            return Err(format!(
                "n={}: the warm cache changed the verdict ({fresh} fresh) on {what:?}",
                f.n()
            ));
        }
        if fresh && !genuine(f) {
            return Err(format!("n={}: accepted a certificate that is not genuine: {what:?}", f.n()));
        }
    }
    Ok(())
}

fn warmed<T>(
    committees: &[Fixture; 2],
    seeds: impl Fn(&Fixture) -> Vec<T>,
    ok: impl Fn(&T, &Fixture, &mut CertificateCache) -> bool,
) -> RefCell<Vec<CertificateCache>> {
    let caches = committees
        .iter()
        .map(|f| {
            let mut cache = CertificateCache::default();
            for seed in seeds(f) {
                assert!(ok(&seed, f, &mut cache), "a genuine seed certificate verifies");
            }
            cache
        })
        .collect();
    RefCell::new(caches)
}

#[test]
fn fuzz_quorum_cert_verify() {
    ensure("quorum_certs", named("qc", qc_seeds));
    let committees = committees();
    let warm = warmed(&committees, qc_seeds, |qc, f, cache| qc.verify(&f.committee, cache).is_ok());
    harness::run("quorum_certs", 2_000, 512, |input| {
        let Some(qc) = decode::<QuorumCert>(input) else { return Ok(()) };
        verdicts(
            &committees,
            &warm,
            |f, cache| qc.verify(&f.committee, cache).is_ok(),
            |f| genuine_qc(f, &qc),
            &qc,
        )
    });
}

#[test]
fn fuzz_timeout_cert_verify() {
    ensure("timeout_certs", named("tc", tc_seeds));
    let committees = committees();
    let warm = warmed(&committees, tc_seeds, |tc, f, cache| tc.verify(&f.committee, cache).is_ok());
    harness::run("timeout_certs", 2_000, 512, |input| {
        let Some(tc) = decode::<TimeoutCert>(input) else { return Ok(()) };
        verdicts(
            &committees,
            &warm,
            |f, cache| tc.verify(&f.committee, cache).is_ok(),
            |f| genuine_tc(f, &tc),
            &tc,
        )
    });
}

fn message_seeds(f: &Fixture) -> Vec<ConsensusMessage> {
    let chain = f.certified_chain(&[1, 2, 3, 5]);
    let (b3, qc3) = (&chain[2].0, &chain[2].1);
    let tc4 = f.tc(4, &vec![3; f.committee.quorum()]);
    let next = f.proposal(6, &chain[3].1, None);
    vec![
        ConsensusMessage::Proposal(chain[0].0.clone()),
        ConsensusMessage::Proposal(next.clone()),
        ConsensusMessage::Vote(f.vote(b3, 1)),
        ConsensusMessage::Timeout { timeout: f.timeout(4, qc3, 2), last_tc: None },
        ConsensusMessage::Timeout { timeout: f.timeout(5, qc3, 1), last_tc: Some(tc4.clone()) },
        ConsensusMessage::BlockRequest { digest: next.digest, count: 3 },
        ConsensusMessage::BlockResponse { blocks: chain.iter().rev().map(|(b, _)| b.clone()).collect() },
        ConsensusMessage::SyncInfo(SyncInfo { highest_qc: qc3.clone(), highest_tc: Some(tc4) }),
    ]
}

/// A validator's votes so far, by round: it must never sign two different ones.
type Signed = BTreeMap<Round, VoteData>;

fn feed(core: &mut Core, signed: &mut Signed, from: u16, message: ConsensusMessage) -> Result<(), String> {
    for (_, vote) in votes_in(&core.handle(Event::Message(from, message))) {
        if let Some(earlier) = signed.insert(vote.round(), vote.data) {
            if earlier != vote.data {
                return Err(format!(
                    "voted twice in round {}: {earlier:?} then {:?}",
                    vote.round(),
                    vote.data
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_consensus_messages_into_core() {
    let f = Fixture::new(4);
    ensure(
        "consensus_messages",
        message_seeds(&f)
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("{}_{i}.bin", m.kind()), encode(m)))
            .collect(),
    );
    // Validator 3 of 4; inputs are attributed to a sender picked from the input itself.
    let state = RefCell::new((f.core(3, Config::default()), Signed::new()));
    harness::run("consensus_messages", 5_000, 512, |input| {
        let Some(message) = decode::<ConsensusMessage>(input) else { return Ok(()) };
        let from = input.first().map_or(0, |b| u16::from(*b % 4));
        let (core, signed) = &mut *state.borrow_mut();
        feed(core, signed, from, message)
    });
}
