//! The voting and timeout rules, one table of cases per rule, plus a property test that no
//! sequence of requests makes `SafetyRules` sign two votes for one round or vote in a round
//! it has timed out in.

mod common;

use bastion_consensus::{Block, BrokenRule, ConsensusError, Round, SafetyData, SafetyRules, TimeoutCert};
use common::{batch, timeout_signature_valid, vote_signature_valid, Fixture};
use proptest::prelude::*;

const VOTER: u16 = 3;

const ALREADY_VOTED: ConsensusError = ConsensusError::Unsafe("already voted in this round");
const NOT_JUSTIFIED: ConsensusError =
    ConsensusError::Unsafe("block neither extends the previous round's QC nor a valid TC");
const NOT_ENTERED: ConsensusError = ConsensusError::Unsafe("timeout round not entered through a QC or TC");
const OLDER_THAN_VOTE: ConsensusError = ConsensusError::Unsafe("timeout for a round older than our vote");
const BELOW_LOCK: ConsensusError = ConsensusError::Unsafe("highest QC is below our lock");

fn state(last_voted_round: Round, one_chain_round: Round) -> SafetyData {
    SafetyData { last_voted_round, one_chain_round, ..SafetyData::default() }
}

/// A block of `round` extending a QC of `qc_round`, with an optional TC given as
/// `(tc_round, high_qc_rounds)`.
fn block(f: &Fixture, round: Round, qc_round: Round, tc: Option<(Round, &[Round])>) -> Block {
    let tc: Option<TimeoutCert> = tc.map(|(r, hqcs)| f.tc(r, hqcs));
    f.proposal(round, &f.qc_at(qc_round), tc.as_ref())
}

struct VoteCase {
    name: &'static str,
    last_voted_round: Round,
    one_chain_round: Round,
    round: Round,
    qc_round: Round,
    tc: Option<(Round, &'static [Round])>,
    expected: Result<(), ConsensusError>,
}

#[test]
fn vote_rule_table() {
    let f = Fixture::new(4);
    #[rustfmt::skip]
    let cases = [
        VoteCase { name: "first round, genesis QC", last_voted_round: 0, one_chain_round: 0, round: 1, qc_round: 0, tc: None, expected: Ok(()) },
        VoteCase { name: "QC of the previous round", last_voted_round: 3, one_chain_round: 2, round: 5, qc_round: 4, tc: None, expected: Ok(()) },
        VoteCase { name: "same round twice", last_voted_round: 5, one_chain_round: 4, round: 5, qc_round: 4, tc: None, expected: Err(ALREADY_VOTED) },
        VoteCase { name: "older round", last_voted_round: 6, one_chain_round: 4, round: 5, qc_round: 4, tc: None, expected: Err(ALREADY_VOTED) },
        VoteCase { name: "gap, no TC", last_voted_round: 0, one_chain_round: 0, round: 5, qc_round: 3, tc: None, expected: Err(NOT_JUSTIFIED) },
        VoteCase { name: "TC for r-1, QC equals its highest", last_voted_round: 3, one_chain_round: 2, round: 5, qc_round: 3, tc: Some((4, &[3, 2, 1])), expected: Ok(()) },
        VoteCase { name: "TC for r-1, QC above its highest", last_voted_round: 3, one_chain_round: 2, round: 5, qc_round: 3, tc: Some((4, &[2, 2, 0])), expected: Ok(()) },
        VoteCase { name: "TC for r-1, QC below its highest", last_voted_round: 3, one_chain_round: 2, round: 5, qc_round: 2, tc: Some((4, &[3, 1, 0])), expected: Err(NOT_JUSTIFIED) },
        VoteCase { name: "TC for r-2", last_voted_round: 0, one_chain_round: 0, round: 5, qc_round: 2, tc: Some((3, &[2, 2, 2])), expected: Err(NOT_JUSTIFIED) },
        VoteCase { name: "TC for the block's own round", last_voted_round: 0, one_chain_round: 0, round: 5, qc_round: 3, tc: Some((5, &[3, 3, 3])), expected: Err(NOT_JUSTIFIED) },
        VoteCase { name: "QC of r-1 makes a stale TC irrelevant", last_voted_round: 0, one_chain_round: 0, round: 5, qc_round: 4, tc: Some((3, &[2, 2, 2])), expected: Ok(()) },
        VoteCase { name: "TC justifies but round already voted", last_voted_round: 5, one_chain_round: 2, round: 5, qc_round: 3, tc: Some((4, &[3, 2, 1])), expected: Err(ALREADY_VOTED) },
        VoteCase { name: "lock above the QC never decreases", last_voted_round: 5, one_chain_round: 4, round: 7, qc_round: 3, tc: Some((6, &[3, 2, 1])), expected: Ok(()) },
    ];
    for case in cases {
        let before = state(case.last_voted_round, case.one_chain_round);
        let mut rules = SafetyRules::new(before.clone(), None);
        let block = block(&f, case.round, case.qc_round, case.tc);
        let result = rules.vote(&block, VOTER, f.key(VOTER), f.chain_id());
        match (&result, &case.expected) {
            (Ok(vote), Ok(())) => {
                assert_eq!(vote.data.block, block.info(), "{}: vote names the block", case.name);
                assert_eq!(vote.data.parent, *block.parent(), "{}: vote names the parent", case.name);
                assert_eq!(vote.author, VOTER, "{}", case.name);
                assert!(vote_signature_valid(&f, vote), "{}: vote signature", case.name);
                let after = rules.data();
                assert_eq!(after.last_voted_round, case.round, "{}: last_voted_round", case.name);
                assert_eq!(
                    after.one_chain_round,
                    case.one_chain_round.max(case.qc_round),
                    "{}: one_chain_round",
                    case.name
                );
                assert_eq!(after.last_vote.as_ref(), Some(vote), "{}: last vote stored", case.name);
            }
            (Err(got), Err(want)) => {
                assert_eq!(got, want, "{}", case.name);
                assert_eq!(rules.data(), &before, "{}: a refusal changes nothing", case.name);
            }
            _ => panic!("{}: expected {:?}, got {:?}", case.name, case.expected, result),
        }
    }
}

struct TimeoutCase {
    name: &'static str,
    last_voted_round: Round,
    one_chain_round: Round,
    round: Round,
    qc_round: Round,
    tc_round: Option<Round>,
    expected: Result<(), ConsensusError>,
}

#[test]
fn timeout_rule_table() {
    let f = Fixture::new(4);
    #[rustfmt::skip]
    let cases = [
        TimeoutCase { name: "entered by QC", last_voted_round: 4, one_chain_round: 3, round: 5, qc_round: 4, tc_round: None, expected: Ok(()) },
        TimeoutCase { name: "entered by TC", last_voted_round: 4, one_chain_round: 2, round: 5, qc_round: 2, tc_round: Some(4), expected: Ok(()) },
        TimeoutCase { name: "entered by TC, QC equal to the lock", last_voted_round: 4, one_chain_round: 3, round: 5, qc_round: 3, tc_round: Some(4), expected: Ok(()) },
        TimeoutCase { name: "after voting in the same round", last_voted_round: 5, one_chain_round: 4, round: 5, qc_round: 4, tc_round: None, expected: Ok(()) },
        TimeoutCase { name: "neither QC nor TC of r-1", last_voted_round: 0, one_chain_round: 0, round: 5, qc_round: 3, tc_round: None, expected: Err(NOT_ENTERED) },
        TimeoutCase { name: "TC of r-2", last_voted_round: 0, one_chain_round: 0, round: 5, qc_round: 2, tc_round: Some(3), expected: Err(NOT_ENTERED) },
        TimeoutCase { name: "TC of the round itself", last_voted_round: 0, one_chain_round: 0, round: 5, qc_round: 2, tc_round: Some(5), expected: Err(NOT_ENTERED) },
        TimeoutCase { name: "highest QC below the lock", last_voted_round: 4, one_chain_round: 3, round: 5, qc_round: 2, tc_round: Some(4), expected: Err(BELOW_LOCK) },
        TimeoutCase { name: "round older than the last vote", last_voted_round: 6, one_chain_round: 3, round: 5, qc_round: 4, tc_round: None, expected: Err(OLDER_THAN_VOTE) },
    ];
    for case in cases {
        let before = state(case.last_voted_round, case.one_chain_round);
        let mut rules = SafetyRules::new(before.clone(), None);
        let high_qc = f.qc_at(case.qc_round);
        let tc = case.tc_round.map(|r| f.tc(r, &[case.qc_round.min(r - 1); 3]));
        let result = rules.timeout(case.round, &high_qc, tc.as_ref(), VOTER, f.key(VOTER), f.chain_id());
        match (&result, &case.expected) {
            (Ok(timeout), Ok(())) => {
                assert_eq!(timeout.round, case.round, "{}", case.name);
                assert_eq!(timeout.high_qc, high_qc, "{}: carries the highest QC", case.name);
                assert_eq!(timeout.author, VOTER, "{}", case.name);
                assert!(timeout_signature_valid(&f, timeout), "{}: timeout signature", case.name);
                let after = rules.data();
                assert_eq!(after.last_voted_round, case.round, "{}: last_voted_round", case.name);
                assert_eq!(after.highest_timeout_round, case.round, "{}: highest_timeout_round", case.name);
                assert_eq!(after.one_chain_round, case.qc_round, "{}: one_chain_round", case.name);
                assert_eq!(after.last_timeout.as_ref(), Some(timeout), "{}: last timeout stored", case.name);
            }
            (Err(got), Err(want)) => {
                assert_eq!(got, want, "{}", case.name);
                assert_eq!(rules.data(), &before, "{}: a refusal changes nothing", case.name);
            }
            _ => panic!("{}: expected {:?}, got {:?}", case.name, case.expected, result),
        }
    }
}

#[test]
fn no_vote_in_a_round_after_timing_out_in_it() {
    let f = Fixture::new(4);
    let mut rules = SafetyRules::new(state(4, 3), None);
    rules.timeout(5, &f.qc_at(4), None, VOTER, f.key(VOTER), f.chain_id()).expect("timeout allowed");
    let proposal = block(&f, 5, 4, None);
    assert_eq!(rules.vote(&proposal, VOTER, f.key(VOTER), f.chain_id()), Err(ALREADY_VOTED));
    assert!(rules.data().last_vote.is_none());
    // The next round is still open.
    rules.vote(&block(&f, 6, 5, None), VOTER, f.key(VOTER), f.chain_id()).expect("vote in the next round");
}

#[test]
fn a_second_timeout_in_the_same_round_is_allowed_and_replaces_the_first() {
    // Re-signing a timeout is harmless (timeouts only make rounds end) and needed after a
    // restart that lost the first one.
    let f = Fixture::new(4);
    let mut rules = SafetyRules::new(state(4, 2), None);
    rules.timeout(5, &f.qc_at(2), Some(&f.tc(4, &[2, 2, 2])), VOTER, f.key(VOTER), f.chain_id()).unwrap();
    let second = rules.timeout(5, &f.qc_at(4), None, VOTER, f.key(VOTER), f.chain_id()).unwrap();
    assert_eq!(rules.data().last_timeout.as_ref(), Some(&second));
    assert_eq!(rules.data().one_chain_round, 4);
}

#[test]
fn broken_rule_skip_last_voted_round_allows_a_second_vote() {
    let f = Fixture::new(4);
    let first = f.block(1, 5, &f.qc_at(4), None, vec![batch(1)]);
    let second = f.block(1, 5, &f.qc_at(4), None, vec![batch(2)]);
    assert_ne!(first.digest, second.digest);

    let mut honest = SafetyRules::new(state(4, 3), None);
    honest.vote(&first, VOTER, f.key(VOTER), f.chain_id()).unwrap();
    assert_eq!(honest.vote(&second, VOTER, f.key(VOTER), f.chain_id()), Err(ALREADY_VOTED));

    let mut broken = SafetyRules::new(state(4, 3), Some(BrokenRule::SkipLastVotedRound));
    let a = broken.vote(&first, VOTER, f.key(VOTER), f.chain_id()).unwrap();
    let b = broken.vote(&second, VOTER, f.key(VOTER), f.chain_id()).expect("the broken rule votes twice");
    assert_eq!(a.round(), b.round());
    assert_ne!(a.data, b.data, "two conflicting votes in one round");
    // Only the one check is skipped: the QC/TC rule still holds.
    assert_eq!(broken.vote(&block(&f, 9, 3, None), VOTER, f.key(VOTER), f.chain_id()), Err(NOT_JUSTIFIED));
}

#[derive(Clone, Debug)]
enum Request {
    /// A block of `round` on a QC of `qc_round`, with a TC of `(round, highest reported QC)`.
    Vote {
        round: Round,
        qc_round: Round,
        tc: Option<(Round, Round)>,
    },
    Timeout {
        round: Round,
        qc_round: Round,
        tc_round: Option<Round>,
    },
}

fn request() -> impl Strategy<Value = Request> {
    let tc = proptest::option::of((1..10u64).prop_flat_map(|r| (Just(r), 0..r)));
    prop_oneof![
        (1..10u64, 0..10u64, tc).prop_map(|(round, qc, tc)| Request::Vote {
            round,
            qc_round: qc.min(round - 1),
            tc
        }),
        (1..10u64, 0..10u64, proptest::option::of(1..10u64)).prop_map(|(round, qc, tc_round)| {
            Request::Timeout { round, qc_round: qc.min(round - 1), tc_round }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever it is asked, the rules sign at most one vote per round, never vote in a round
    /// at or below one they timed out in, only vote for justified blocks, and never lower
    /// `last_voted_round` or the lock.
    #[test]
    fn never_two_votes_in_a_round(requests in proptest::collection::vec(request(), 1..24)) {
        let f = Fixture::new(4);
        let qcs: Vec<_> = (0..10).map(|r| f.qc_at(r)).collect();
        let mut rules = SafetyRules::new(SafetyData::default(), None);
        let mut voted_rounds: Vec<Round> = Vec::new();
        let mut highest_timeout: Round = 0;
        for request in requests {
            let before = rules.data().clone();
            match request {
                Request::Vote { round, qc_round, tc } => {
                    let tc = tc.map(|(r, hqc)| f.tc(r, &[hqc, 0, 0]));
                    let proposal = f.proposal(round, &qcs[qc_round as usize], tc.as_ref());
                    if let Ok(vote) = rules.vote(&proposal, VOTER, f.key(VOTER), f.chain_id()) {
                        prop_assert!(voted_rounds.iter().all(|&r| r < vote.round()), "votes in strictly increasing rounds");
                        prop_assert!(vote.round() > highest_timeout, "no vote at or below a timed-out round");
                        let justified = qc_round + 1 == round
                            || tc.as_ref().is_some_and(|tc| tc.round + 1 == round && qc_round >= tc.highest_qc_round());
                        prop_assert!(justified);
                        voted_rounds.push(vote.round());
                    }
                }
                Request::Timeout { round, qc_round, tc_round } => {
                    let tc = tc_round.map(|r| f.tc(r, &[0, 0, 0]));
                    if rules.timeout(round, &qcs[qc_round as usize], tc.as_ref(), VOTER, f.key(VOTER), f.chain_id()).is_ok() {
                        prop_assert!(round >= before.last_voted_round);
                        prop_assert!(qc_round >= before.one_chain_round);
                        highest_timeout = highest_timeout.max(round);
                    }
                }
            }
            let after = rules.data();
            prop_assert!(after.last_voted_round >= before.last_voted_round);
            prop_assert!(after.one_chain_round >= before.one_chain_round);
            prop_assert!(after.highest_timeout_round >= before.highest_timeout_round);
        }
    }
}
