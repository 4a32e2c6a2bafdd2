//! Quorum and timeout certificates: what verifies, what is refused and why, and what the
//! certificate cache may and may not skip.

mod common;

use bastion_consensus::{
    CertificateCache, ConsensusError, QuorumCert, SignerBitmap, TimeoutCert, ValidatorIndex,
};
use bastion_crypto::Signature;
use common::{batch, Fixture};

fn verify_qc(f: &Fixture, qc: &QuorumCert) -> Result<(), ConsensusError> {
    qc.verify(&f.committee, &mut CertificateCache::default())
}

fn verify_tc(f: &Fixture, tc: &TimeoutCert) -> Result<(), ConsensusError> {
    tc.verify(&f.committee, &mut CertificateCache::default())
}

/// A committee with the same chain id as `f` but other keys: a certificate signed for `f`
/// only passes against it if its signatures are not checked.
fn impostor_committee(f: &Fixture) -> Fixture {
    let keys: Vec<_> = (0..f.n()).map(|i| bastion_crypto::KeyPair::from_seed([100 + i as u8; 32])).collect();
    let publics: Vec<_> = keys.iter().map(|k| k.public()).collect();
    let committee = bastion_consensus::Committee::new(f.chain_id(), &publics).unwrap();
    Fixture { committee, keys }
}

#[test]
fn qc_from_a_quorum_verifies() {
    for (n, signer_sets) in [
        (4, vec![vec![0, 1, 2], vec![1, 2, 3], vec![0, 2, 3], vec![0, 1, 2, 3]]),
        (7, vec![vec![0, 1, 2, 3, 4], vec![2, 3, 4, 5, 6], vec![0, 1, 2, 3, 4, 5, 6]]),
    ] {
        let f = Fixture::new(n);
        let block = f.proposal(1, &f.genesis_qc(), None);
        for signers in signer_sets {
            // Votes in any order make the same certificate.
            let reversed: Vec<ValidatorIndex> = signers.iter().rev().copied().collect();
            let qc = f.qc(&block, &reversed);
            assert_eq!(qc, f.qc(&block, &signers));
            assert_eq!(qc.signers.iter().collect::<Vec<_>>(), signers, "n={n}");
            assert_eq!(verify_qc(&f, &qc), Ok(()), "n={n} signers={signers:?}");
        }
    }
}

#[test]
fn qc_below_quorum_is_refused() {
    for (n, signers, got, needed) in [
        (4, vec![0, 1], 2, 3),
        (4, vec![3], 1, 3),
        (4, vec![], 0, 3),
        (7, vec![0, 1, 2, 3], 4, 5),
        (7, vec![6, 5, 4, 3], 4, 5),
    ] {
        let f = Fixture::new(n);
        let qc = f.qc(&f.proposal(1, &f.genesis_qc(), None), &signers);
        assert_eq!(
            verify_qc(&f, &qc),
            Err(ConsensusError::NoQuorum { got, needed }),
            "n={n} signers={signers:?}"
        );
    }
}

#[test]
fn one_forged_signature_names_its_signer() {
    for (n, signers) in [(4, vec![0, 1, 2]), (4, vec![0, 1, 2, 3]), (7, vec![0, 2, 3, 5, 6])] {
        let f = Fixture::new(n);
        let block = f.proposal(1, &f.genesis_qc(), None);
        let other = f.block(1, 1, &f.genesis_qc(), None, vec![batch(9)]);
        for (position, &signer) in signers.iter().enumerate() {
            let honest = f.qc(&block, &signers);
            let forgeries: [(&str, Signature); 3] = [
                ("the signer's vote for another block", f.vote(&other, signer).signature),
                ("another validator's vote", f.vote(&block, (signer + 1) % n as ValidatorIndex).signature),
                ("garbage bytes", Signature([0xA5; 64])),
            ];
            for (what, forged) in forgeries {
                let mut qc = honest.clone();
                qc.signatures[position] = forged;
                assert_eq!(
                    verify_qc(&f, &qc),
                    Err(ConsensusError::InvalidSignature(signer)),
                    "n={n}: {what} at position {position}"
                );
            }
        }
    }
}

#[test]
fn malformed_qcs_are_refused() {
    let f = Fixture::new(4);
    // A block of round 2 on a parent of round 1, so that lowering its round does not make it
    // look like genesis.
    let block = f.certified_chain(&[1, 2]).pop().unwrap().0;
    let honest = f.qc(&block, &[0, 1, 2]);
    let bad_bitmap = ConsensusError::MalformedCertificate("bad signer bitmap");
    let count_mismatch = ConsensusError::MalformedCertificate("signature count mismatch");
    let not_extending = ConsensusError::MalformedCertificate("block does not extend its parent");

    let mut cases: Vec<(&str, QuorumCert, ConsensusError)> = Vec::new();

    let mut qc = honest.clone();
    qc.signers.insert(5); // within the byte, past n = 4
    qc.signatures.push(f.vote(&block, 3).signature);
    cases.push(("bit past n", qc, bad_bitmap.clone()));

    let mut qc = honest.clone();
    qc.signers = SignerBitmap::new(16);
    for i in [0, 1, 2] {
        qc.signers.insert(i);
    }
    cases.push(("bitmap longer than the committee needs", qc, bad_bitmap.clone()));

    let mut qc = honest.clone();
    qc.signers = SignerBitmap::new(0);
    qc.signatures.clear();
    cases.push(("empty bitmap", qc, bad_bitmap));

    let mut qc = honest.clone();
    qc.signatures.pop();
    cases.push(("one signature missing", qc, count_mismatch.clone()));

    let mut qc = honest.clone();
    qc.signatures.push(qc.signatures[0]);
    cases.push(("one signature too many", qc, count_mismatch.clone()));

    let dup = f.vote(&block, 0);
    let qc = QuorumCert::from_votes(Fixture::vote_data(&block), &[&dup, &dup, &f.vote(&block, 1)], 4);
    cases.push(("the same vote twice", qc, count_mismatch));

    let mut qc = honest.clone();
    qc.data.block.round = qc.data.parent.round;
    cases.push(("block round not above its parent's", qc, not_extending.clone()));

    let mut qc = honest.clone();
    qc.data.block.height += 1;
    cases.push(("block height not parent + 1", qc, not_extending));

    for (what, qc, expected) in cases {
        assert_eq!(verify_qc(&f, &qc), Err(expected), "{what}");
    }
}

#[test]
fn qc_for_another_chain_is_refused() {
    let f = Fixture::new(4);
    let other_chain = Fixture::with_chain(4, "another-chain");
    let qc = other_chain.quorum_qc(&other_chain.proposal(1, &other_chain.genesis_qc(), None));
    assert_eq!(verify_qc(&other_chain, &qc), Ok(()));
    // Same keys, same signers: only the chain id in the signed digest differs.
    assert_eq!(verify_qc(&f, &qc), Err(ConsensusError::InvalidSignature(0)));
}

#[test]
fn genesis_qc_verifies_and_forgeries_of_it_do_not() {
    let f = Fixture::new(4);
    let mut cache = CertificateCache::default();
    assert_eq!(f.genesis_qc().verify(&f.committee, &mut cache), Ok(()));
    assert!(cache.is_empty(), "genesis needs no verification, so nothing is cached");

    let forged = ConsensusError::MalformedCertificate("forged genesis");
    let real_block = f.proposal(1, &f.genesis_qc(), None);
    let mut cases: Vec<(&str, QuorumCert)> = Vec::new();

    let mut qc = f.genesis_qc();
    qc.signers.insert(0);
    qc.signatures.push(f.vote(&real_block, 0).signature);
    cases.push(("genesis with a signer", qc));

    cases.push(("another chain's genesis", Fixture::with_chain(4, "another-chain").genesis_qc()));

    let mut qc = f.genesis_qc();
    qc.data.block.digest = real_block.digest;
    cases.push(("round 0 certifying some other block", qc));

    let mut qc = f.genesis_qc();
    qc.data.block.height = 7;
    cases.push(("genesis at another height", qc));

    let mut qc = f.genesis_qc();
    qc.data.parent = real_block.info();
    cases.push(("genesis with another parent", qc));

    for (what, qc) in cases {
        assert_eq!(verify_qc(&f, &qc), Err(forged.clone()), "{what}");
    }
}

/// The cache is sound because it is keyed by the whole certificate: the chain id, the vote
/// data, the signer bitmap and the signatures. A hit therefore means these exact bytes were
/// verified before against this chain's committee, so checking them again would prove
/// nothing new. It must not vouch for a *different* certificate over the same data: an
/// honest validator forwards the certificates it accepts (as a proposal's parent QC, a
/// timeout's high QC, sync info), and a copy with unverified signatures would make those
/// honest messages unverifiable for every peer that has not cached the data.
#[test]
fn cache_skips_reverifying_the_same_qc_but_not_a_copy_with_other_signatures() {
    let f = Fixture::new(4);
    let impostor = impostor_committee(&f);
    let qc = f.quorum_qc(&f.proposal(1, &f.genesis_qc(), None));
    assert!(
        matches!(verify_qc(&impostor, &qc), Err(ConsensusError::InvalidSignature(_))),
        "control: actually checking the signatures against other keys fails"
    );

    let mut cache = CertificateCache::default();
    assert_eq!(qc.verify(&f.committee, &mut cache), Ok(()));
    assert_eq!(cache.len(), 1);
    assert_eq!(
        qc.verify(&impostor.committee, &mut cache),
        Ok(()),
        "a cache hit accepts the QC without looking at a single signature"
    );
    assert_eq!(cache.len(), 1);

    let mut garbage = qc.clone();
    garbage.signatures = vec![Signature([7; 64]); garbage.signatures.len()];
    assert_eq!(garbage.verify(&f.committee, &mut cache), Err(ConsensusError::InvalidSignature(0)));

    let other_signers = f.qc(&f.proposal(1, &f.genesis_qc(), None), &[1, 2, 3]);
    assert_eq!(
        other_signers.verify(&f.committee, &mut cache),
        Ok(()),
        "a genuine QC by other signers verifies"
    );
}

#[test]
fn tc_from_a_quorum_verifies() {
    for (n, high_qc_rounds) in
        [(4, vec![3, 1, 0]), (4, vec![0, 0, 0, 0]), (7, vec![2, 2, 1, 0, 3]), (7, vec![4; 7])]
    {
        let f = Fixture::new(n);
        let tc = f.tc(5, &high_qc_rounds);
        assert_eq!(verify_tc(&f, &tc), Ok(()), "n={n} {high_qc_rounds:?}");
        assert_eq!(tc.highest_qc_round(), *high_qc_rounds.iter().max().unwrap());
    }
}

#[test]
fn malformed_tcs_are_refused() {
    let f = Fixture::new(4);
    let honest = f.tc(5, &[3, 2, 4]);
    let unsorted = ConsensusError::MalformedCertificate("timeout signers not sorted and distinct");
    let from_the_future =
        ConsensusError::MalformedCertificate("timeout reports a QC from its own round or later");
    let mut cases: Vec<(&str, TimeoutCert, ConsensusError)> = Vec::new();

    let mut tc = honest.clone();
    tc.signatures.insert(1, tc.signatures[0].clone());
    cases.push(("duplicate signer", tc, unsorted.clone()));

    let mut tc = honest.clone();
    tc.signatures.swap(0, 2);
    cases.push(("signers out of order", tc, unsorted));

    let mut tc = honest.clone();
    tc.signatures.pop();
    cases.push(("below quorum", tc, ConsensusError::NoQuorum { got: 2, needed: 3 }));

    let tc = f.tc(5, &[3, 2, 4]);
    let mut tc_at_round = tc.clone();
    tc_at_round.signatures[1].high_qc_round = 5;
    cases.push(("a signer's QC is from the TC's round", tc_at_round, from_the_future.clone()));
    let mut tc_after = tc.clone();
    tc_after.signatures[2].high_qc_round = 9;
    cases.push(("a signer's QC is from a later round", tc_after, from_the_future));

    let mut tc = honest.clone();
    tc.signatures[1].signature = f.timeout(5, &f.qc_at(1), 1).signature;
    cases.push(("a signature over another QC round", tc, ConsensusError::InvalidSignature(1)));

    let mut tc = honest.clone();
    tc.signatures[2].signature = f.timeout(4, &f.qc_at(3), 2).signature;
    cases.push(("a signature over another round", tc, ConsensusError::InvalidSignature(2)));

    let mut tc = honest.clone();
    tc.signatures[2].author = 9;
    cases.push(("a signer outside the committee", tc, ConsensusError::UnknownValidator(9)));

    let other = Fixture::with_chain(4, "another-chain");
    cases.push(("another chain's TC", other.tc(5, &[3, 2, 4]), ConsensusError::InvalidSignature(0)));

    for (what, tc, expected) in cases {
        assert_eq!(verify_tc(&f, &tc), Err(expected), "{what}");
    }
}

#[test]
fn cache_skips_reverifying_the_same_tc_but_not_one_with_altered_qc_rounds() {
    let f = Fixture::new(4);
    let impostor = impostor_committee(&f);
    let tc = f.tc(5, &[3, 2, 4]);
    let mut cache = CertificateCache::default();
    assert_eq!(tc.verify(&f.committee, &mut cache), Ok(()));
    assert_eq!(tc.verify(&impostor.committee, &mut cache), Ok(()), "a cache hit checks no signature");

    // Same round, same signers, same signatures; only the reported QC rounds differ. The
    // voting rule reads those rounds, so this must not pass as the TC verified above.
    let mut lowered = tc.clone();
    lowered.signatures[2].high_qc_round = 0;
    assert_eq!(lowered.highest_qc_round(), 3);
    assert_eq!(lowered.verify(&f.committee, &mut cache), Err(ConsensusError::InvalidSignature(2)));

    let mut garbage = tc.clone();
    garbage.signatures[0].signature = Signature([7; 64]);
    assert_eq!(garbage.verify(&f.committee, &mut cache), Err(ConsensusError::InvalidSignature(0)));
}

#[test]
fn tc_assembled_locally_is_trusted_through_insert_tc() {
    let f = Fixture::new(4);
    let impostor = impostor_committee(&f);
    let tc = f.tc(5, &[3, 2, 4]);
    let mut cache = CertificateCache::default();
    cache.insert_tc(&tc, f.chain_id());
    assert_eq!(tc.verify(&impostor.committee, &mut cache), Ok(()));
    assert!(matches!(verify_tc(&impostor, &tc), Err(ConsensusError::InvalidSignature(_))));
}
