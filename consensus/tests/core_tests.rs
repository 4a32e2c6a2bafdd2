//! The consensus state machine, driven by hand: cores exchange messages through a FIFO
//! queue in the test ([`common::Net`]), timers fire only when a test says so, and every step
//! is checked for persisted-before-sent safety data, double votes and commit order.

mod common;

use std::collections::BTreeSet;

use bastion_consensus::{
    Action, CertificateCache, Config, ConsensusError, ConsensusMessage, Event, Recovery, SyncInfo,
    ValidatorIndex,
};
use bastion_crypto::Signature;
use common::{batch, proposals_in, timeouts_in, votes_in, Fixture, Net};

const BASE_MS: u64 = 1_000;

fn schedules(actions: &[Action]) -> Vec<(u64, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ScheduleTimeout { round, after_ms } => Some((*round, *after_ms)),
            _ => None,
        })
        .collect()
}

fn persists(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::PersistSafety(_))).count()
}

/// Takes the first queued message matching `pick` out of the queue.
fn take_message(net: &mut Net, pick: impl Fn(&common::Envelope) -> bool) -> common::Envelope {
    let index = net.queue.iter().position(pick).expect("no such message queued");
    net.queue.remove(index).unwrap()
}

fn happy_path(n: usize) {
    let mut net = Net::new(n);
    net.start_all();
    let reached = net.run_until(20_000, |net| net.connected().all(|i| net.committed_height(i) >= 8));
    assert!(reached, "n={n}: every core commits 8 blocks without a timeout");
    for i in net.connected() {
        let history = &net.history[usize::from(i)];
        assert!(history.iter().all(|actions| timeouts_in(actions).is_empty()), "n={n}: core {i} timed out");
        for (k, block) in net.committed[usize::from(i)].iter().enumerate() {
            assert_eq!(block.height, k as u64 + 1, "n={n}: consecutive heights");
            assert_eq!(block.round, block.height, "n={n}: one block per round when nothing fails");
            assert_eq!(
                block.author,
                net.fixture.committee.leader(block.round),
                "n={n}: proposed by the leader"
            );
        }
    }
    let shortest = net.connected().map(|i| net.committed[usize::from(i)].len()).min().unwrap();
    for i in net.connected() {
        assert_eq!(
            net.committed[usize::from(i)][..shortest],
            net.committed[0][..shortest],
            "n={n}: core {i} committed different blocks"
        );
    }
}

#[test]
fn happy_path_four_validators_commit_the_same_chain() {
    happy_path(4);
}

#[test]
fn happy_path_seven_validators_commit_the_same_chain() {
    happy_path(7);
}

#[test]
fn only_a_qc_one_round_after_its_parent_commits() {
    // Rounds 1, 2, 4, 5, 6: round 3 ended in a TC. With n = 7, core 0 leads none of them.
    let f = Fixture::new(7);
    let chain = f.certified_chain(&[1, 2, 4, 5, 6]);
    let blocks: Vec<_> = chain.iter().map(|(b, _)| b.clone()).collect();
    let mut core = f.core(0, Config::default());
    core.start();
    let mut commits = Vec::new();
    for block in &blocks {
        let actions = core.handle(Event::Message(block.author, ConsensusMessage::Proposal(block.clone())));
        assert_eq!(core.safety_data().last_voted_round, block.round, "votes in round {}", block.round);
        let committed: Vec<Vec<u64>> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Commit(bs) => Some(bs.iter().map(|b| b.round).collect()),
                _ => None,
            })
            .collect();
        commits.push((block.round, committed));
    }
    assert_eq!(
        commits,
        vec![
            (1, vec![]),
            (2, vec![]),           // QC of round 1 on genesis: commits genesis, i.e. nothing new
            (4, vec![vec![1]]),    // QC of round 2 on round 1
            (5, vec![]),           // QC of round 4 on round 2: a gap, no commit
            (6, vec![vec![2, 4]]), // QC of round 5 on round 4: round 4 and its ancestor round 2
        ]
    );
    assert_eq!(core.committed(), &blocks[2].info());
}

#[test]
fn first_round_leader_proposes_on_start_and_others_vote_to_the_next_leader() {
    let mut net = Net::new(4);
    let leader = net.start(1);
    let proposals = proposals_in(&leader);
    assert_eq!(proposals.len(), 1, "the leader of round 1 proposes when started");
    let block = &proposals[0];
    assert_eq!((block.round, block.height, block.author), (1, 1, 1));
    assert_eq!(block.parent_qc, net.fixture.genesis_qc());
    assert_eq!(votes_in(&leader).iter().map(|(to, v)| (*to, v.round())).collect::<Vec<_>>(), vec![(2, 1)]);

    for i in [0, 2, 3] {
        let actions = net.start(i);
        assert!(proposals_in(&actions).is_empty(), "core {i} does not lead round 1");
        assert_eq!(schedules(&actions), vec![(1, BASE_MS)]);
    }
    for i in [0, 3] {
        let envelope =
            take_message(&mut net, |e| e.to == i && matches!(e.message, ConsensusMessage::Proposal(_)));
        let actions = net.inject(envelope.from, i, envelope.message);
        let votes = votes_in(&actions);
        assert_eq!(votes.len(), 1, "core {i} votes once");
        assert_eq!(votes[0].0, 2, "to the leader of round 2");
        assert_eq!(votes[0].1.data.block, block.info());
    }
}

#[test]
fn persist_safety_precedes_every_new_vote_timeout_and_own_proposal_in_its_action_list() {
    let mut net = Net::new(4);
    net.start_all();
    assert!(net.run_until(5_000, |net| net.committed_height(0) >= 3));
    // Cut off the next leaders in turn so rounds end in timeouts, too.
    net.isolated.insert(net.fixture.committee.leader(net.cores[0].round()));
    assert!(net.run_until(5_000, |net| net.committed_height(0) >= 6));
    net.isolated.clear();
    assert!(net.run_until(5_000, |net| net.connected().all(|i| net.committed_height(i) >= 8)));

    let (mut votes, mut timeouts, mut proposals) = (BTreeSet::new(), BTreeSet::new(), 0);
    for (core, lists) in net.history.iter().enumerate() {
        for actions in lists {
            for (position, action) in actions.iter().enumerate() {
                let persisted_before = || {
                    actions[..position].iter().filter_map(|a| match a {
                        Action::PersistSafety(data) => Some(data),
                        _ => None,
                    })
                };
                // Only a first transmission must follow its PersistSafety; re-sends (a timer
                // firing twice, a restart) go out of what is already durable.
                match action {
                    Action::Send(_, ConsensusMessage::Vote(vote))
                        if votes.insert((vote.author, vote.round())) =>
                    {
                        assert!(
                            persisted_before().any(|d| d.last_vote.as_ref() == Some(vote)),
                            "core {core}: vote of round {} sent before it was persisted",
                            vote.round()
                        );
                    }
                    Action::Broadcast(ConsensusMessage::Timeout { timeout, .. })
                        if timeouts.insert((timeout.author, timeout.round)) =>
                    {
                        assert!(
                            persisted_before().any(|d| d.last_timeout.as_ref() == Some(timeout)),
                            "core {core}: timeout of round {} sent before it was persisted",
                            timeout.round
                        );
                    }
                    Action::Broadcast(ConsensusMessage::Proposal(block)) => {
                        proposals += 1;
                        assert!(
                            persisted_before()
                                .any(|d| d.last_vote.as_ref().is_some_and(|v| v.data.block == block.info())),
                            "core {core}: proposal of round {} left before the leader's own vote was persisted",
                            block.round
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(
        votes.len() > 10 && timeouts.len() >= 3 && proposals > 5,
        "the run exercised all three: {} votes, {} timeouts, {proposals} proposals",
        votes.len(),
        timeouts.len()
    );
}

#[test]
fn proposal_from_a_non_leader_is_refused() {
    let f = Fixture::new(4);
    let mut core = f.core(0, Config::default());
    core.start();
    let impostor = f.block(2, 1, &f.genesis_qc(), None, Vec::new());
    let actions = core.handle(Event::Message(2, ConsensusMessage::Proposal(impostor)));
    assert!(actions.is_empty(), "no vote, no stored block: {actions:?}");
    assert_eq!(core.take_refusals(), vec![ConsensusError::NotLeader { author: 2, round: 1 }]);
    assert_eq!(core.safety_data().last_voted_round, 0);

    let genuine = f.proposal(1, &f.genesis_qc(), None);
    let actions = core.handle(Event::Message(1, ConsensusMessage::Proposal(genuine)));
    assert_eq!(votes_in(&actions).len(), 1, "control: the leader's proposal gets a vote");
}

#[test]
fn proposal_relayed_by_someone_other_than_its_author_is_refused() {
    let f = Fixture::new(4);
    let mut core = f.core(0, Config::default());
    core.start();
    let block = f.proposal(1, &f.genesis_qc(), None);
    let actions = core.handle(Event::Message(3, ConsensusMessage::Proposal(block.clone())));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(core.take_refusals(), vec![ConsensusError::WrongAuthor { from: 3, author: 1 }]);
    let actions = core.handle(Event::Message(1, ConsensusMessage::Proposal(block)));
    assert_eq!(votes_in(&actions).len(), 1, "control: the same block from its author gets a vote");
}

#[test]
fn vote_sent_to_a_validator_that_is_not_the_next_leader_is_refused() {
    let f = Fixture::new(4);
    let block = f.proposal(1, &f.genesis_qc(), None);
    let mut bystander = f.core(3, Config::default());
    let mut next_leader = f.core(2, Config::default());
    bystander.start();
    next_leader.start();
    for voter in [0, 1, 2] {
        let message = ConsensusMessage::Vote(f.vote(&block, voter));
        assert!(bystander.handle(Event::Message(voter, message.clone())).is_empty());
        next_leader.handle(Event::Message(voter, message));
    }
    assert_eq!(bystander.take_refusals(), vec![ConsensusError::NotLeader { author: 3, round: 2 }; 3]);
    assert_eq!(bystander.round(), 1, "no QC formed at a validator that does not lead round 2");
    assert_eq!(next_leader.round(), 2, "control: the next leader forms the QC");
    assert_eq!(next_leader.highest_qc().round(), 1);
}

#[test]
fn vote_relayed_for_someone_else_is_refused() {
    let f = Fixture::new(4);
    let block = f.proposal(1, &f.genesis_qc(), None);
    let mut leader = f.core(2, Config::default());
    leader.start();
    assert!(leader.handle(Event::Message(3, ConsensusMessage::Vote(f.vote(&block, 0)))).is_empty());
    assert_eq!(leader.take_refusals(), vec![ConsensusError::WrongAuthor { from: 3, author: 0 }]);
}

#[test]
fn vote_with_a_bad_signature_does_not_count() {
    let f = Fixture::new(4);
    let block = f.proposal(1, &f.genesis_qc(), None);
    let mut leader = f.core(2, Config::default());
    leader.start();
    leader.handle(Event::Message(0, ConsensusMessage::Vote(f.vote(&block, 0))));
    leader.handle(Event::Message(1, ConsensusMessage::Vote(f.vote(&block, 1))));
    let mut forged = f.vote(&block, 3);
    forged.signature = Signature([3; 64]);
    let actions = leader.handle(Event::Message(3, ConsensusMessage::Vote(forged)));
    assert!(actions.is_empty(), "three votes but one is forged: no QC, {actions:?}");
    assert_eq!(leader.round(), 1);
    assert_eq!(leader.highest_qc().round(), 0);

    // The leader's own vote completes a quorum of good votes.
    let actions = leader.handle(Event::Message(1, ConsensusMessage::Proposal(block)));
    assert_eq!(leader.round(), 2, "QC from votes 0, 1, 2");
    let proposal = proposals_in(&actions).pop().expect("the leader of round 2 proposes");
    assert_eq!(
        proposal.parent_qc.signers.iter().collect::<Vec<_>>(),
        vec![0, 1, 2],
        "the forger is not a signer"
    );
    assert_eq!(proposal.parent_qc.verify(&f.committee, &mut CertificateCache::default()), Ok(()));
}

#[test]
fn local_timeout_persists_then_broadcasts_and_reschedules() {
    let f = Fixture::new(4);
    let mut core = f.core(0, Config::default());
    core.start();
    assert!(core.handle(Event::Timeout(0)).is_empty(), "a stale timer does nothing");
    assert!(core.handle(Event::Timeout(2)).is_empty(), "a timer for a future round does nothing");

    let actions = core.handle(Event::Timeout(1));
    assert_eq!(actions.len(), 3, "{actions:?}");
    let Action::PersistSafety(data) = &actions[0] else { panic!("first persist: {actions:?}") };
    let Action::Broadcast(ConsensusMessage::Timeout { timeout, last_tc }) = &actions[1] else {
        panic!("then broadcast: {actions:?}")
    };
    assert_eq!(actions[2], Action::ScheduleTimeout { round: 1, after_ms: BASE_MS });
    assert_eq!((timeout.round, timeout.author), (1, 0));
    assert_eq!(timeout.high_qc, f.genesis_qc());
    assert!(last_tc.is_none(), "round 1 was not entered through a TC");
    assert_eq!(data.last_timeout.as_ref(), Some(timeout));
    assert_eq!(data.highest_timeout_round, 1);
    assert!(common::timeout_signature_valid(&f, timeout));

    // The timer fires again: the same timeout goes out again, nothing new is signed.
    let again = core.handle(Event::Timeout(1));
    assert_eq!(persists(&again), 0);
    assert_eq!(timeouts_in(&again), vec![timeout.clone()]);
    assert_eq!(schedules(&again), vec![(1, BASE_MS)]);

    // Having timed out, the core no longer votes in round 1.
    let late =
        core.handle(Event::Message(1, ConsensusMessage::Proposal(f.proposal(1, &f.genesis_qc(), None))));
    assert!(votes_in(&late).is_empty(), "{late:?}");
    assert_eq!(core.take_refusals(), vec![ConsensusError::Unsafe("already voted in this round")]);
}

#[test]
fn three_timeouts_form_a_tc_that_moves_every_core_to_the_next_round() {
    let mut net = Net::new(4);
    net.start_all();
    net.queue.clear(); // the round-1 proposal is lost
    for i in [0, 1, 2] {
        net.handle(i, Event::Timeout(1));
    }
    assert!(net.run_until(200, |net| net.cores.iter().all(|c| c.round() >= 2)));
    for i in 0..4u16 {
        let core = &net.cores[usize::from(i)];
        assert_eq!(core.round(), 2, "core {i}");
        assert!(
            net.history[usize::from(i)].iter().any(|a| schedules(a).contains(&(2, 2 * BASE_MS))),
            "core {i}: a round entered after a timeout waits twice as long"
        );
    }
    let leader = net.fixture.committee.leader(2);
    let proposal = net.history[usize::from(leader)]
        .iter()
        .flat_map(|a| proposals_in(a))
        .next()
        .expect("leader of 2 proposes");
    assert_eq!(proposal.round, 2);
    assert_eq!(proposal.height, 1, "extends genesis: round 1 produced no block");
    assert_eq!(proposal.timeout_cert.as_ref().map(|tc| tc.round), Some(1));
    assert_eq!(proposal.parent_qc, net.fixture.genesis_qc());

    // The TC-justified block gets certified and eventually committed by everyone.
    assert!(net.run_until(2_000, |net| (0..4).all(|i| net.committed_height(i) >= 2)));
    for i in 0..4 {
        assert_eq!(net.committed[i][0], proposal);
    }
}

#[test]
fn f_plus_one_timeouts_make_a_core_that_has_not_timed_out_join() {
    let f = Fixture::new(7); // f = 2, quorum = 5
    let mut core = f.core(6, Config::default());
    core.start();
    let timeout = |i| ConsensusMessage::Timeout { timeout: f.timeout(1, &f.genesis_qc(), i), last_tc: None };
    for i in [0, 1] {
        let actions = core.handle(Event::Message(i, timeout(i)));
        assert!(actions.is_empty(), "{} timeouts (f) are not enough: {actions:?}", i + 1);
    }
    let actions = core.handle(Event::Message(2, timeout(2)));
    assert!(matches!(actions.first(), Some(Action::PersistSafety(_))), "{actions:?}");
    let mine = timeouts_in(&actions);
    assert_eq!(mine.len(), 1, "f + 1 timeouts: join them");
    assert_eq!((mine[0].round, mine[0].author), (1, 6));
    assert_eq!(core.round(), 1, "4 of 7 is no TC yet");

    // With n = 4, joining can complete the TC: 2 received + our own = 3.
    let f = Fixture::new(4);
    let mut core = f.core(3, Config::default());
    core.start();
    core.handle(Event::Message(
        0,
        ConsensusMessage::Timeout { timeout: f.timeout(1, &f.genesis_qc(), 0), last_tc: None },
    ));
    let actions = core.handle(Event::Message(
        1,
        ConsensusMessage::Timeout { timeout: f.timeout(1, &f.genesis_qc(), 1), last_tc: None },
    ));
    assert_eq!(timeouts_in(&actions).len(), 1);
    assert_eq!(core.round(), 2);
}

#[test]
fn forged_timeout_does_not_count_towards_joining_or_a_tc() {
    let f = Fixture::new(4);
    let mut core = f.core(3, Config::default());
    core.start();
    core.handle(Event::Message(
        0,
        ConsensusMessage::Timeout { timeout: f.timeout(1, &f.genesis_qc(), 0), last_tc: None },
    ));
    let mut forged = f.timeout(1, &f.genesis_qc(), 1);
    forged.signature = Signature([1; 64]);
    let actions =
        core.handle(Event::Message(1, ConsensusMessage::Timeout { timeout: forged, last_tc: None }));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(core.take_refusals(), vec![ConsensusError::InvalidSignature(1)]);
    assert_eq!(core.safety_data().highest_timeout_round, 0);
}

#[test]
fn stale_timeout_is_answered_with_sync_info_that_brings_the_sender_up() {
    let mut net = Net::new(4);
    net.start_all();
    assert!(net.run_until(1_000, |net| net.cores[0].round() >= 4));
    net.queue.clear();
    let f = &net.fixture;
    let mut behind = f.core(3, Config::default());
    behind.start();
    let actions = behind.handle(Event::Timeout(1));
    let timeout = timeouts_in(&actions).pop().unwrap();
    let answer = net.cores[0].handle(Event::Message(3, ConsensusMessage::Timeout { timeout, last_tc: None }));
    let [Action::Send(3, sync @ ConsensusMessage::SyncInfo(info))] = answer.as_slice() else {
        panic!("expected a SyncInfo for validator 3: {answer:?}")
    };
    assert_eq!(&info.highest_qc, net.cores[0].highest_qc());
    behind.handle(Event::Message(0, sync.clone()));
    assert_eq!(behind.round(), net.cores[0].round(), "the sync info moves the sender to the current round");
}

#[test]
fn missing_payload_is_fetched_and_the_vote_waits_for_it() {
    let f = Fixture::new(4);
    let mut leader = f.core(1, Config::default());
    leader.handle(Event::PayloadAvailable(batch(1)));
    let proposal = proposals_in(&leader.start()).pop().unwrap();
    assert_eq!(proposal.payload, vec![batch(1)], "the leader orders the batch it holds");

    let mut voter = f.core(0, Config::default());
    voter.start();
    let actions = voter.handle(Event::Message(1, ConsensusMessage::Proposal(proposal.clone())));
    assert!(actions.contains(&Action::FetchPayload { digests: vec![batch(1)], from: 1 }), "{actions:?}");
    assert!(
        votes_in(&actions).is_empty() && persists(&actions) == 0,
        "no vote without the payload: {actions:?}"
    );

    assert!(voter.handle(Event::PayloadAvailable(batch(2))).is_empty(), "some other batch changes nothing");
    let actions = voter.handle(Event::PayloadAvailable(batch(1)));
    assert!(matches!(actions.first(), Some(Action::PersistSafety(_))), "{actions:?}");
    let votes = votes_in(&actions);
    assert_eq!(votes.len(), 1);
    assert_eq!((votes[0].0, votes[0].1.data.block), (2, proposal.info()));
}

#[test]
fn payload_arriving_after_the_round_ended_produces_no_vote() {
    let f = Fixture::new(4);
    let proposal = f.block(1, 1, &f.genesis_qc(), None, vec![batch(1)]);
    let mut voter = f.core(0, Config::default());
    voter.start();
    voter.handle(Event::Message(1, ConsensusMessage::Proposal(proposal)));
    let tc = f.tc(1, &[0, 0, 0]);
    let sync = SyncInfo { highest_qc: f.genesis_qc(), highest_tc: Some(tc) };
    voter.handle(Event::Message(2, ConsensusMessage::SyncInfo(sync)));
    assert_eq!(voter.round(), 2);
    let actions = voter.handle(Event::PayloadAvailable(batch(1)));
    assert!(votes_in(&actions).is_empty(), "the round-1 proposal is stale: {actions:?}");
    assert_eq!(voter.safety_data().last_voted_round, 0);
}

#[test]
fn recovered_core_resends_its_vote_and_never_votes_for_another_block_in_that_round() {
    let mut net = Net::new(4);
    net.start_all();
    let envelope =
        take_message(&mut net, |e| e.to == 0 && matches!(e.message, ConsensusMessage::Proposal(_)));
    let actions = net.inject(envelope.from, 0, envelope.message);
    let (_, vote) = votes_in(&actions).pop().expect("core 0 votes in round 1");
    assert_eq!(net.persisted_safety[0].last_vote.as_ref(), Some(&vote));
    assert_eq!(net.persisted_blocks[0].len(), 1);

    let restarted = net.restart(0);
    assert_eq!(votes_in(&restarted), vec![(2, vote.clone())], "start() re-sends the persisted vote");
    assert_eq!(net.cores[0].round(), 1);

    // The leader equivocates: a second block for round 1.
    let f = &net.fixture;
    let other = f.block(1, 1, &f.genesis_qc(), None, vec![batch(7)]);
    net.handle(0, Event::PayloadAvailable(batch(7)));
    let actions = net.inject(1, 0, ConsensusMessage::Proposal(other.clone()));
    assert!(votes_in(&actions).is_empty(), "{actions:?}");

    // Same, for a core that lost its blocks but kept its safety data: the safety rules alone
    // refuse.
    let recovery = Recovery { safety: net.persisted_safety[0].clone(), blocks: Vec::new(), committed: None };
    let mut core = net.fixture.recovered_core(0, Config::default(), recovery);
    assert_eq!(votes_in(&core.start()), vec![(2, vote)]);
    core.handle(Event::PayloadAvailable(batch(7)));
    let actions = core.handle(Event::Message(1, ConsensusMessage::Proposal(other)));
    assert!(votes_in(&actions).is_empty(), "{actions:?}");
    assert_eq!(core.take_refusals(), vec![ConsensusError::Unsafe("already voted in this round")]);
}

#[test]
fn recovered_core_resends_its_timeout_and_keeps_its_round() {
    let mut net = Net::new(4);
    net.start_all();
    net.queue.clear();
    net.handle(2, Event::Timeout(1));
    let sent = timeouts_in(net.history[2].last().unwrap()).pop().unwrap();
    let restarted = net.restart(2);
    assert_eq!(timeouts_in(&restarted), vec![sent]);
    assert_eq!(net.cores[2].round(), 1);
    let late = net.inject(
        1,
        2,
        ConsensusMessage::Proposal(net.fixture.proposal(1, &net.fixture.genesis_qc(), None)),
    );
    assert!(votes_in(&late).is_empty(), "timed out in round 1 before the crash: no vote in it after");
}

#[test]
fn restarted_leader_does_not_sign_a_second_proposal_for_its_round() {
    let mut net = Net::new(4);
    net.handle(1, Event::PayloadAvailable(batch(1)));
    let first = proposals_in(&net.start(1));
    assert_eq!(first.len(), 1);
    assert_eq!(net.persisted_safety[1].last_voted_round, 1, "the leader voted for its own block");

    // Restarted, the leader has lost its in-memory batch queue; proposing again for round 1
    // would sign a second, different block: an equivocation by an honest validator.
    let restarted = net.restart(1);
    for proposal in proposals_in(&restarted) {
        assert_eq!(proposal, first[0], "a second, different proposal for round {}", proposal.round);
    }
    assert_eq!(votes_in(&restarted).len(), 1, "it still re-sends its vote");
}

#[test]
fn lagging_core_catches_up_through_block_requests_and_commits_the_same_blocks() {
    let mut net = Net::new(4);
    net.isolated.insert(3);
    net.start_all();
    assert!(
        net.run_until(20_000, |net| net.connected().all(|i| net.committed_height(i) >= 10)),
        "three of four validators make progress without the fourth"
    );
    assert_eq!(net.committed_height(3), 0);
    assert!(
        net.committed[0].iter().any(|b| b.timeout_cert.is_some()),
        "rounds led by the missing validator ended in timeouts"
    );

    net.isolated.clear();
    let target = net.committed_height(0) + 4;
    assert!(
        net.run_until(20_000, |net| (0..4).all(|i| net.committed_height(i) >= target)),
        "the lagging core catches up"
    );
    let history = &net.history[3];
    let requested = history
        .iter()
        .flatten()
        .filter(|a| matches!(a, Action::Send(_, ConsensusMessage::BlockRequest { .. })))
        .count();
    assert!(requested > 0, "it fetched the blocks it missed");
    let len = net.committed[3].len();
    assert_eq!(
        net.committed[3][..],
        net.committed[0][..len],
        "the same blocks, in the same order, from height 1"
    );
    for i in 1..3 {
        let common = len.min(net.committed[i].len());
        assert_eq!(net.committed[i][..common], net.committed[3][..common]);
    }
}

#[test]
fn block_request_is_answered_with_the_block_and_its_ancestors_newest_first() {
    let mut net = Net::new(4);
    net.start_all();
    assert!(net.run_until(2_000, |net| net.committed_height(0) >= 5));
    net.queue.clear();
    let tip = net.committed[0][4].clone();
    let answer = net.cores[0]
        .handle(Event::Message(2, ConsensusMessage::BlockRequest { digest: tip.digest, count: 3 }));
    let [Action::Send(2, ConsensusMessage::BlockResponse { blocks })] = answer.as_slice() else {
        panic!("{answer:?}")
    };
    let expected: Vec<_> = net.committed[0][2..5].iter().rev().cloned().collect();
    assert_eq!(blocks, &expected);

    // Unsolicited blocks are ignored: nobody can fill a core's memory with them.
    let mut fresh = net.fixture.core(3, Config::default());
    fresh.start();
    let actions = fresh.handle(Event::Message(2, ConsensusMessage::BlockResponse { blocks: blocks.clone() }));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(fresh.round(), 1);
}

/// A Byzantine peer makes a core verify (and cache) a genuine QC inside a message that is
/// then refused, and sends a copy of that QC with garbage signatures. Whatever certificate
/// the honest core ends up holding, it forwards in its own timeouts and proposals, so that
/// certificate must verify for a peer that has seen nothing.
#[test]
fn a_core_only_forwards_certificates_whose_signatures_it_verified() {
    let f = Fixture::new(4);
    let (_, qc1) = f.certified_chain(&[1]).pop().unwrap();
    let mut honest = f.core(0, Config::default());
    honest.start();

    let mut bad_tc = f.tc(1, &[0, 0, 0]);
    bad_tc.signatures[0].signature = Signature([7; 64]);
    let sync = SyncInfo { highest_qc: qc1.clone(), highest_tc: Some(bad_tc) };
    honest.handle(Event::Message(3, ConsensusMessage::SyncInfo(sync)));
    assert_eq!(honest.take_refusals(), vec![ConsensusError::InvalidSignature(0)]);

    let mut garbage = qc1.clone();
    garbage.signatures = vec![Signature([9; 64]); garbage.signatures.len()];
    honest.handle(Event::Message(
        3,
        ConsensusMessage::SyncInfo(SyncInfo { highest_qc: garbage, highest_tc: None }),
    ));

    assert_eq!(honest.highest_qc().verify(&f.committee, &mut CertificateCache::default()), Ok(()));
    let round = honest.round();
    let timeout =
        timeouts_in(&honest.handle(Event::Timeout(round))).pop().expect("the honest core times out");
    let mut peer = f.core(1, Config::default());
    peer.start();
    peer.handle(Event::Message(0, ConsensusMessage::Timeout { timeout, last_tc: None }));
    assert_eq!(
        peer.take_refusals(),
        vec![],
        "an honest validator's timeout must be accepted by honest peers"
    );
}

#[test]
fn vote_for_the_largest_round_is_refused_without_panicking() {
    let f = Fixture::new(4);
    let mut leader = f.core(2, Config::default());
    leader.start();
    let mut vote = f.vote(&f.proposal(1, &f.genesis_qc(), None), 0);
    vote.data.block.round = u64::MAX;
    assert!(leader.handle(Event::Message(0, ConsensusMessage::Vote(vote))).is_empty());
    assert_eq!(
        leader.take_refusals(),
        vec![ConsensusError::RoundOutOfWindow { round: u64::MAX, current: 1 }]
    );
}

#[test]
fn messages_from_outside_the_committee_are_refused() {
    let f = Fixture::new(4);
    let mut core = f.core(0, Config::default());
    core.start();
    let outsider: ValidatorIndex = 4;
    let sync = SyncInfo { highest_qc: f.genesis_qc(), highest_tc: None };
    assert!(core.handle(Event::Message(outsider, ConsensusMessage::SyncInfo(sync))).is_empty());
    assert_eq!(core.take_refusals(), vec![ConsensusError::UnknownValidator(outsider)]);
}

fn delayed(delay_ms: u64) -> Config {
    Config { empty_block_delay_ms: delay_ms, ..Config::default() }
}

#[test]
fn idle_leader_defers_its_empty_block_until_the_delay_runs_out() {
    let f = Fixture::new(4);
    let mut leader = f.core(1, delayed(50));
    let actions = leader.start();
    assert!(proposals_in(&actions).is_empty(), "nothing to order: wait, {actions:?}");
    assert!(actions.contains(&Action::ScheduleProposal { round: 1, after_ms: 50 }), "{actions:?}");
    assert!(leader.handle(Event::ProposalDue(0)).is_empty(), "another round's delay does nothing");

    let actions = leader.handle(Event::ProposalDue(1));
    let proposals = proposals_in(&actions);
    assert_eq!(proposals.len(), 1, "the delay is over: propose the empty block, {actions:?}");
    assert_eq!((proposals[0].round, proposals[0].payload.len()), (1, 0));
    let persist =
        actions.iter().position(|a| matches!(a, Action::PersistSafety(_))).expect("own vote persisted");
    let broadcast = actions.iter().position(|a| matches!(a, Action::Broadcast(_))).unwrap();
    assert!(persist < broadcast, "the leader's vote is durable before its proposal leaves: {actions:?}");
    assert!(leader.handle(Event::ProposalDue(1)).is_empty(), "one proposal per round");
}

#[test]
fn payload_arriving_during_the_delay_is_proposed_at_once() {
    let f = Fixture::new(4);
    let mut leader = f.core(1, delayed(50));
    leader.start();
    let actions = leader.handle(Event::PayloadAvailable(batch(3)));
    let proposals = proposals_in(&actions);
    assert_eq!(proposals.len(), 1, "{actions:?}");
    assert_eq!(proposals[0].payload, vec![batch(3)]);
    assert!(leader.handle(Event::ProposalDue(1)).is_empty(), "already proposed");
}

#[test]
fn leader_with_payload_or_after_a_timeout_does_not_wait() {
    let f = Fixture::new(4);
    let mut busy = f.core(1, delayed(50));
    busy.handle(Event::PayloadAvailable(batch(1)));
    assert_eq!(proposals_in(&busy.start()).len(), 1);

    // Round 2 entered through a TC: the leader proposes at once, so the TC travels.
    let mut after_tc = f.core(2, delayed(50));
    after_tc.start();
    let sync = SyncInfo { highest_qc: f.genesis_qc(), highest_tc: Some(f.tc(1, &[0, 0, 0])) };
    let actions = after_tc.handle(Event::Message(0, ConsensusMessage::SyncInfo(sync)));
    let proposal = proposals_in(&actions).pop().expect("proposes at once after a TC");
    assert_eq!(proposal.timeout_cert.map(|tc| tc.round), Some(1));
}

#[test]
fn stale_proposal_delay_does_nothing() {
    let f = Fixture::new(4);
    let mut leader = f.core(1, delayed(50));
    leader.start();
    let sync = SyncInfo { highest_qc: f.genesis_qc(), highest_tc: Some(f.tc(1, &[0, 0, 0])) };
    leader.handle(Event::Message(0, ConsensusMessage::SyncInfo(sync)));
    assert_eq!(leader.round(), 2);
    assert!(proposals_in(&leader.handle(Event::ProposalDue(1))).is_empty());
}

#[test]
fn idle_chain_with_a_proposal_delay_still_commits_without_timeouts() {
    let mut net = Net::with_config(4, delayed(50));
    net.start_all();
    assert!(net.run_until(20_000, |net| net.connected().all(|i| net.committed_height(i) >= 6)));
    for i in 0..4 {
        assert!(net.history[i].iter().all(|a| timeouts_in(a).is_empty()), "core {i} timed out");
    }
}

#[test]
fn a_batch_announced_again_after_its_commit_is_not_ordered_twice() {
    let mut net = Net::new(4);
    for i in 0..4 {
        net.handle(i, Event::PayloadAvailable(batch(7)));
    }
    net.start_all();
    let reached = net.run_until(20_000, |net| net.connected().all(|i| net.committed_height(i) >= 3));
    assert!(reached, "the chain commits");
    // A late copy of the batch (a fetch answered twice) reaches every validator again.
    for i in 0..4 {
        net.handle(i, Event::PayloadAvailable(batch(7)));
    }
    let reached = net.run_until(20_000, |net| net.connected().all(|i| net.committed_height(i) >= 10));
    assert!(reached, "the chain goes on committing");
    for i in net.connected() {
        let orderings =
            net.committed[usize::from(i)].iter().filter(|b| b.payload.contains(&batch(7))).count();
        assert_eq!(orderings, 1, "core {i} committed the batch in {orderings} blocks");
    }
}

#[test]
fn a_proposal_naming_a_committed_batch_is_voted_for_without_fetching_it() {
    // n = 7: core 0 leads none of rounds 1 to 4.
    let f = Fixture::new(7);
    let mut core = f.core(0, Config::default());
    core.start();
    core.handle(Event::PayloadAvailable(batch(7)));
    let mut qc = f.genesis_qc();
    let mut commits = Vec::new();
    for round in 1..=4 {
        // Round 1 orders the batch; round 3's QC of round 2 commits it; round 4 (a faulty
        // leader) names it again.
        let payload = if round == 1 || round == 4 { vec![batch(7)] } else { Vec::new() };
        let block = f.block(f.committee.leader(round), round, &qc, None, payload);
        qc = f.quorum_qc(&block);
        let actions = core.handle(Event::Message(block.author, ConsensusMessage::Proposal(block)));
        assert!(
            !actions.iter().any(|a| matches!(a, Action::FetchPayload { .. })),
            "round {round}: {actions:?}"
        );
        assert_eq!(core.safety_data().last_voted_round, round, "votes in round {round}: {actions:?}");
        for action in &actions {
            if let Action::Commit(blocks) = action {
                commits.extend(blocks.iter().map(|b| (round, b.round)));
            }
        }
    }
    assert!(commits.contains(&(3, 1)), "round 3's proposal commits round 1: {commits:?}");
}
