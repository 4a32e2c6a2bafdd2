//! Collecting votes into quorum certificates and timeouts into timeout certificates.
//!
//! Votes are stored unverified and checked lazily: only when a quorum for one vote data
//! could form are that bucket's signatures verified, as one batch (bisected on failure, and
//! the bad votes thrown out). Each validator counts once per round (its first message wins),
//! which bounds memory to `n` entries per round in the accepted window. Timeouts arrive
//! already verified (they are rare and trigger round changes).

use std::collections::{BTreeMap, BTreeSet};

use bastion_crypto::{find_invalid, verify_batch, Digest};

use crate::{Committee, QuorumCert, Round, Timeout, TimeoutCert, ValidatorIndex, Vote, VoteData};

#[derive(Default, Debug)]
struct RoundVotes {
    voted: BTreeSet<ValidatorIndex>,
    buckets: BTreeMap<Digest, (VoteData, Vec<Vote>)>,
    certified: bool,
}

#[derive(Default, Debug)]
pub struct VoteAggregator {
    rounds: BTreeMap<Round, RoundVotes>,
    /// Votes thrown out for bad signatures, for metrics.
    pub rejected: u64,
}

impl VoteAggregator {
    /// Adds a vote whose author is known to be in the committee; returns a QC when it
    /// completes a verified quorum.
    pub fn add(&mut self, vote: Vote, committee: &Committee) -> Option<QuorumCert> {
        let round = self.rounds.entry(vote.round()).or_default();
        if round.certified || !round.voted.insert(vote.author) {
            return None;
        }
        let digest = vote.data.signing_digest(committee.chain_id());
        let (data, votes) = round.buckets.entry(digest).or_insert_with(|| (vote.data, Vec::new()));
        votes.push(vote);
        if votes.len() < committee.quorum() {
            return None;
        }
        let items: Option<Vec<_>> = votes.iter().map(|v| v.batch_item(&digest, committee).ok()).collect();
        let items = items?;
        if verify_batch(&items).is_err() {
            let bad = find_invalid(&items);
            drop(items);
            self.rejected += bad.len() as u64;
            for index in bad.into_iter().rev() {
                votes.remove(index);
            }
            if votes.len() < committee.quorum() {
                return None;
            }
        }
        round.certified = true;
        let refs: Vec<&Vote> = votes.iter().collect();
        Some(QuorumCert::from_votes(*data, &refs, committee.size()))
    }

    pub fn prune_below(&mut self, round: Round) {
        self.rounds = self.rounds.split_off(&round);
    }
}

#[derive(Default, Debug)]
struct RoundTimeouts {
    timeouts: BTreeMap<ValidatorIndex, Timeout>,
    certified: bool,
}

#[derive(Default, Debug)]
pub struct TimeoutAggregator {
    rounds: BTreeMap<Round, RoundTimeouts>,
}

/// What adding a timeout achieved.
#[derive(Debug)]
pub struct TimeoutProgress {
    /// Distinct validators known to have timed out in this round.
    pub count: usize,
    /// Set exactly once per round, when the count first reaches a quorum.
    pub certificate: Option<TimeoutCert>,
}

impl TimeoutAggregator {
    /// Adds a verified timeout.
    pub fn add(&mut self, timeout: Timeout, committee: &Committee) -> TimeoutProgress {
        let round_number = timeout.round;
        let round = self.rounds.entry(round_number).or_default();
        round.timeouts.entry(timeout.author).or_insert(timeout);
        let count = round.timeouts.len();
        let mut certificate = None;
        if count >= committee.quorum() && !round.certified {
            round.certified = true;
            let refs: Vec<&Timeout> = round.timeouts.values().collect();
            certificate = Some(TimeoutCert::from_timeouts(round_number, &refs));
        }
        TimeoutProgress { count, certificate }
    }

    pub fn prune_below(&mut self, round: Round) {
        self.rounds = self.rounds.split_off(&round);
    }
}
