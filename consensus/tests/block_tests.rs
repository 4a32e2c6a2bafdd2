//! `Block::verify`: every structural and cryptographic check, each with the error it must
//! produce, and the block digest's coverage.

mod common;

use bastion_consensus::{Block, CertificateCache, ConsensusError};
use bastion_crypto::Digest;
use common::{batch, Fixture};

fn verify(f: &Fixture, block: &Block) -> Result<(), ConsensusError> {
    block.verify(&f.committee, &mut CertificateCache::default())
}

#[test]
fn well_formed_blocks_verify() {
    let f = Fixture::new(4);
    let chain = f.certified_chain(&[1, 2, 5, 6]);
    for (block, _) in &chain {
        assert_eq!(verify(&f, block), Ok(()), "round {}", block.round);
    }
    let tc_block = &chain[2].0;
    assert_eq!(tc_block.timeout_cert.as_ref().map(|tc| tc.round), Some(4));
    assert_eq!(tc_block.height, 3, "height counts blocks, not rounds");
    let full = f.block(1, 1, &f.genesis_qc(), None, (0..4096).map(batch).collect());
    assert_eq!(verify(&f, &full), Ok(()), "4096 payload digests are allowed");
}

#[test]
fn block_verify_table() {
    let f = Fixture::new(4);
    let chain = f.certified_chain(&[1, 2, 3]);
    let (b2, qc2) = (&chain[1].0, &chain[1].1);
    let qc1 = &chain[0].1;
    let valid = f.proposal(3, qc2, None);
    assert_eq!(verify(&f, &valid), Ok(()));

    let mut cases: Vec<(&str, Block, ConsensusError)> = Vec::new();

    cases.push((
        "too many payload digests",
        f.block(3, 3, qc2, None, (0..4097).map(batch).collect()),
        ConsensusError::MalformedBlock("too many payload digests"),
    ));

    let mut b = valid.clone();
    b.author = 9;
    cases.push(("author outside the committee", b, ConsensusError::UnknownValidator(9)));

    let mut b = valid.clone();
    b.height += 1;
    cases.push(("height skips one", b, ConsensusError::BadHeight { got: 4, parent: 2 }));

    let mut b = valid.clone();
    b.height = 2;
    cases.push(("height equals the parent's", b, ConsensusError::BadHeight { got: 2, parent: 2 }));

    cases.push((
        "round equal to the parent's",
        f.block(2, 2, qc2, None, Vec::new()),
        ConsensusError::MalformedBlock("round does not exceed the parent's"),
    ));

    cases.push((
        "round below the parent's",
        f.block(1, 1, qc2, None, Vec::new()),
        ConsensusError::MalformedBlock("round does not exceed the parent's"),
    ));

    let tc_not_for_previous =
        ConsensusError::MalformedBlock("timeout certificate is not for the previous round");
    cases.push((
        "TC two rounds back",
        f.proposal(5, qc2, Some(&f.tc(3, &[2, 2, 2]))),
        tc_not_for_previous.clone(),
    ));
    cases.push((
        "TC for the block's own round",
        f.proposal(5, qc2, Some(&f.tc(5, &[2, 2, 2]))),
        tc_not_for_previous,
    ));

    let mut b = valid.clone();
    b.payload.push(batch(1));
    cases.push(("payload changed after signing", b, ConsensusError::BadDigest));

    let mut b = valid.clone();
    b.digest = Digest([1; 32]);
    cases.push(("digest replaced", b, ConsensusError::BadDigest));

    let mut b = valid.clone();
    b.round = 4;
    cases.push(("round changed after signing", b, ConsensusError::BadDigest));

    let mut b = valid.clone();
    b.parent_qc = qc1.clone();
    b.height = 2;
    cases.push(("parent swapped after signing", b, ConsensusError::BadDigest));

    // Same key, same parent, same everything but the chain id the digest was computed for.
    let other_chain = Fixture::with_chain(4, "another-chain");
    let b = Block::new(&other_chain.committee, f.key(1), 1, 1, f.genesis_qc(), None, Vec::new());
    cases.push(("signed for another chain", b, ConsensusError::BadDigest));

    let mut b = valid.clone();
    b.signature = f.key(2).sign(bastion_consensus::domains::PROPOSAL, b.digest.as_bytes());
    cases.push(("signed by another validator", b, ConsensusError::InvalidSignature(3)));

    let mut b = valid.clone();
    b.signature = f.key(3).sign(bastion_consensus::domains::VOTE, b.digest.as_bytes());
    cases.push(("signed under the vote domain", b, ConsensusError::InvalidSignature(3)));

    let mut weak_qc = qc2.clone();
    weak_qc.signatures[1] = f.vote(b2, 3).signature;
    cases.push((
        "parent QC with a forged signature",
        f.proposal(3, &weak_qc, None),
        ConsensusError::InvalidSignature(1),
    ));

    cases.push((
        "parent QC below quorum",
        f.proposal(3, &f.qc(b2, &[0, 1]), None),
        ConsensusError::NoQuorum { got: 2, needed: 3 },
    ));

    let mut bad_tc = f.tc(4, &[2, 2, 2]);
    bad_tc.signatures.pop();
    cases.push((
        "TC below quorum",
        f.proposal(5, qc2, Some(&bad_tc)),
        ConsensusError::NoQuorum { got: 2, needed: 3 },
    ));

    for (what, block, expected) in cases {
        assert_eq!(verify(&f, &block), Err(expected), "{what}");
    }
}

#[test]
fn digest_binds_round_height_author_parent_and_payload() {
    let f = Fixture::new(4);
    let chain = f.certified_chain(&[1, 2]);
    let parent = chain[1].0.info();
    let base = Block::compute_digest(f.chain_id(), 3, 3, 3, &parent, &[batch(1)]);
    let mut other_parent = parent;
    other_parent.round = 1;
    let variants = [
        ("chain id", Block::compute_digest("another-chain", 3, 3, 3, &parent, &[batch(1)])),
        ("round", Block::compute_digest(f.chain_id(), 4, 3, 3, &parent, &[batch(1)])),
        ("height", Block::compute_digest(f.chain_id(), 3, 4, 3, &parent, &[batch(1)])),
        ("author", Block::compute_digest(f.chain_id(), 3, 3, 2, &parent, &[batch(1)])),
        ("parent round", Block::compute_digest(f.chain_id(), 3, 3, 3, &other_parent, &[batch(1)])),
        ("payload", Block::compute_digest(f.chain_id(), 3, 3, 3, &parent, &[batch(2)])),
        ("payload order", Block::compute_digest(f.chain_id(), 3, 3, 3, &parent, &[batch(1), batch(2)])),
        ("empty payload", Block::compute_digest(f.chain_id(), 3, 3, 3, &parent, &[])),
    ];
    for (field, digest) in variants {
        assert_ne!(digest, base, "the digest must change with the {field}");
    }
    let ab = Block::compute_digest(f.chain_id(), 3, 3, 3, &parent, &[batch(1), batch(2)]);
    let ba = Block::compute_digest(f.chain_id(), 3, 3, 3, &parent, &[batch(2), batch(1)]);
    assert_ne!(ab, ba, "payload order is part of the block");
}

#[test]
fn blocks_survive_a_bincode_round_trip() {
    let f = Fixture::new(4);
    let chain = f.certified_chain(&[1, 2, 4]);
    for (block, _) in &chain {
        let bytes = bincode::serialize(block).unwrap();
        let decoded: Block = bincode::deserialize(&bytes).unwrap();
        assert_eq!(&decoded, block);
        assert_eq!(verify(&f, &decoded), Ok(()));
    }
}
