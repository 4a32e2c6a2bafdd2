//! The Byzantine modes rewrite an honest core's actions as documented: what leaves the node
//! lies, in a way honest validators can tell (or outvote), and nothing else changes.

use bastion_consensus::{
    domains, Action, Block, CertificateCache, Committee, Config, ConsensusError, ConsensusMessage, Core,
    Event, QuorumCert, Timeout, Vote,
};
use bastion_crypto::{verify, Digest, DigestBuilder, KeyPair};
use bastion_node::byzantine::{Byzantine, ByzantineMode, STALE_ROUNDS};

const CHAIN: &str = "byzantine-test";

fn keys() -> Vec<KeyPair> {
    (0..4u8).map(|i| KeyPair::from_seed([i + 1; 32])).collect()
}

fn committee(keys: &[KeyPair]) -> Committee {
    Committee::new(CHAIN, &keys.iter().map(KeyPair::public).collect::<Vec<_>>()).unwrap()
}

fn core(keys: &[KeyPair], me: u16) -> Core {
    Core::new(committee(keys), me, keys[usize::from(me)].clone(), Config::default())
}

fn byzantine(keys: &[KeyPair], me: u16, mode: ByzantineMode) -> Byzantine {
    Byzantine::new(mode, me, keys[usize::from(me)].clone(), committee(keys))
}

/// Validator 1 leads round 1: its start-up actions hold its proposal (with `payload`).
fn leader_actions(keys: &[KeyPair], payload: &[Digest]) -> (Vec<Action>, Block) {
    let mut leader = core(keys, 1);
    // Queued before the round starts, so the (immediate) proposal orders them.
    for digest in payload {
        leader.handle(Event::PayloadAvailable(*digest));
    }
    let actions = leader.start();
    let block = proposals(&actions).into_iter().next().expect("the leader proposes").1;
    (actions, block)
}

/// Validator 3 votes for `block`; the vote goes to validator 2, the next leader.
fn voter_actions(keys: &[KeyPair], block: &Block) -> Vec<Action> {
    let mut voter = core(keys, 3);
    voter.start();
    for digest in &block.payload {
        voter.handle(Event::PayloadAvailable(*digest));
    }
    voter.handle(Event::Message(block.author, ConsensusMessage::Proposal(block.clone())))
}

/// Proposals in `actions` with their receiver (`None`: broadcast).
fn proposals(actions: &[Action]) -> Vec<(Option<u16>, Block)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(ConsensusMessage::Proposal(b)) => Some((None, b.clone())),
            Action::Send(to, ConsensusMessage::Proposal(b)) => Some((Some(*to), b.clone())),
            _ => None,
        })
        .collect()
}

fn votes(actions: &[Action]) -> Vec<(u16, Vote)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(to, ConsensusMessage::Vote(v)) => Some((*to, v.clone())),
            _ => None,
        })
        .collect()
}

fn is_message(action: &Action) -> bool {
    matches!(action, Action::Send(..) | Action::Broadcast(_))
}

fn vote_verifies(keys: &[KeyPair], vote: &Vote) -> bool {
    let digest = vote.data.signing_digest(CHAIN);
    verify(domains::VOTE, digest.as_bytes(), &keys[usize::from(vote.author)].public(), &vote.signature)
        .is_ok()
}

fn batch(i: u64) -> Digest {
    DigestBuilder::new("test/batch").u64(i).finish()
}

#[test]
fn equivocator_sends_each_half_of_the_others_a_different_valid_block() {
    let keys = keys();
    for payload in [vec![], vec![batch(1)], vec![batch(1), batch(2), batch(3)]] {
        let (honest, block) = leader_actions(&keys, &payload);
        let distorted = byzantine(&keys, 1, ByzantineMode::Equivocate).distort(honest.clone());
        let sent = proposals(&distorted);
        // One block to each other validator, none broadcast: 0 gets the honest block, 2 and 3
        // the twin.
        let receivers: Vec<_> = sent.iter().map(|(to, _)| *to).collect();
        assert_eq!(receivers, [Some(0), Some(2), Some(3)], "payload {payload:?}");
        assert_eq!(sent[0].1, block);
        let twin = &sent[1].1;
        assert_eq!(&sent[2].1, twin);
        assert_ne!(twin.digest, block.digest);
        assert_eq!((twin.round, twin.height, twin.author), (block.round, block.height, block.author));
        twin.verify(&committee(&keys), &mut CertificateCache::default()).expect("the twin is validly signed");
        // Everything else, in order, as the honest core asked.
        let others =
            |actions: &[Action]| actions.iter().filter(|a| !is_message(a)).cloned().collect::<Vec<_>>();
        assert_eq!(others(&distorted), others(&honest));
        let persist_at = distorted.iter().position(|a| matches!(a, Action::PersistSafety(_))).unwrap();
        let first_send = distorted.iter().position(is_message).unwrap();
        assert!(persist_at < first_send, "a proposal left before the leader's vote was persisted");
    }
}

#[test]
fn double_voter_follows_each_vote_with_a_conflicting_signed_one() {
    let keys = keys();
    let (_, block) = leader_actions(&keys, &[batch(7)]);
    let honest = voter_actions(&keys, &block);
    assert_eq!(votes(&honest).len(), 1, "{honest:?}");
    let mut voter = byzantine(&keys, 3, ByzantineMode::DoubleVote);
    let sent = votes(&voter.distort(honest));
    assert_eq!(sent.len(), 2);
    let ((to_a, a), (to_b, b)) = (&sent[0], &sent[1]);
    assert_eq!((to_a, to_b), (&2, &2));
    assert_eq!(a.data.block.digest, block.digest);
    assert_ne!(b.data.block.digest, block.digest);
    assert_eq!((b.round(), b.author), (a.round(), a.author));
    assert!(vote_verifies(&keys, a) && vote_verifies(&keys, b));
    assert_eq!(voter.distorted(), 1);
}

#[test]
fn bad_signatures_break_every_proposal_vote_and_timeout_signature() {
    let keys = keys();
    let committee = committee(&keys);
    let (honest, block) = leader_actions(&keys, &[]);
    let mut liar = byzantine(&keys, 1, ByzantineMode::BadSignatures);
    let distorted = liar.distort(honest.clone());
    assert_eq!(distorted.len(), honest.len());
    let (_, forged) = proposals(&distorted).pop().unwrap();
    assert_eq!(forged.digest, block.digest);
    assert!(matches!(
        forged.verify(&committee, &mut CertificateCache::default()),
        Err(ConsensusError::InvalidSignature(1))
    ));

    let mut voter = byzantine(&keys, 3, ByzantineMode::BadSignatures);
    let (_, vote) = votes(&voter.distort(voter_actions(&keys, &block))).pop().unwrap();
    assert!(!vote_verifies(&keys, &vote));

    let timeout = Timeout::new(5, QuorumCert::genesis(&committee), 3, &keys[3], CHAIN);
    let sent = voter.distort(vec![Action::Broadcast(ConsensusMessage::Timeout { timeout, last_tc: None })]);
    let [Action::Broadcast(ConsensusMessage::Timeout { timeout, .. })] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let digest = Timeout::signing_digest(CHAIN, 5, 0);
    assert!(verify(domains::TIMEOUT, digest.as_bytes(), &keys[3].public(), &timeout.signature).is_err());
    assert_eq!(voter.distorted(), 2);
}

#[test]
fn silent_validator_sends_nothing_but_keeps_its_own_bookkeeping() {
    let keys = keys();
    let (honest, _) = leader_actions(&keys, &[batch(1)]);
    assert!(honest.iter().any(is_message));
    let distorted = byzantine(&keys, 1, ByzantineMode::Silent).distort(honest.clone());
    assert!(!distorted.iter().any(is_message), "{distorted:?}");
    assert_eq!(distorted, honest.into_iter().filter(|a| !is_message(a)).collect::<Vec<_>>());
}

#[test]
fn stale_validator_replays_only_messages_at_least_ten_rounds_old() {
    let keys = keys();
    let committee = committee(&keys);
    let mut stale = byzantine(&keys, 3, ByzantineMode::Stale);
    let timeout = |round| {
        let timeout = Timeout::new(round, QuorumCert::genesis(&committee), 3, &keys[3], CHAIN);
        Action::Broadcast(ConsensusMessage::Timeout { timeout, last_tc: None })
    };
    // Rounds 1..STALE_ROUNDS: nothing is old enough yet.
    for round in 1..=STALE_ROUNDS {
        assert_eq!(stale.distort(vec![timeout(round)]), vec![timeout(round)]);
    }
    let mut replayed = Vec::new();
    for round in STALE_ROUNDS + 1..STALE_ROUNDS + 4 {
        let sent = stale.distort(vec![timeout(round)]);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0], timeout(round));
        let Action::Broadcast(ConsensusMessage::Timeout { timeout: old, .. }) = &sent[1] else {
            panic!("{sent:?}")
        };
        assert!(old.round + STALE_ROUNDS <= round, "round {} replayed in round {round}", old.round);
        replayed.push(old.round);
    }
    // Replays cycle through the old messages rather than repeating one.
    assert_eq!(replayed, [1, 2, 3]);
}
