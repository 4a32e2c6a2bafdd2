//! The voting and timeout rules of two-chain HotStuff (Jolteon), and the data they guard.
//!
//! * **Vote** for a block of round `r` only if `r > last_voted_round` and either its QC is
//!   from round `r - 1`, or it carries a TC for round `r - 1` and its QC is at least as high
//!   as every QC round reported in that TC.
//! * **Time out** in round `r` only if the round was entered through a QC or TC of round
//!   `r - 1`, `r >= last_voted_round`, and our highest QC is at least `one_chain_round`
//!   (the highest QC we have voted or timed out on). After timing out in `r`, never vote in `r`.
//!
//! The caller must durably persist [`SafetyRules::data`] after every successful `vote` or
//! `timeout` and *before* sending the result: after a crash the validator then never signs
//! twice for one round.

use bastion_crypto::KeyPair;
use serde::{Deserialize, Serialize};

use crate::{Block, ConsensusError, QuorumCert, Round, Timeout, TimeoutCert, ValidatorIndex, Vote, VoteData};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyData {
    pub last_voted_round: Round,
    /// The highest QC round this validator has voted or timed out on (its lock).
    pub one_chain_round: Round,
    pub highest_timeout_round: Round,
    pub last_vote: Option<Vote>,
    pub last_timeout: Option<Timeout>,
}

/// A deliberately broken rule, for proving that the simulator's invariant checker catches
/// safety bugs. Never set outside tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenRule {
    /// Vote without checking `round > last_voted_round`.
    SkipLastVotedRound,
}

#[derive(Clone, Debug)]
pub struct SafetyRules {
    data: SafetyData,
    broken: Option<BrokenRule>,
}

impl SafetyRules {
    pub fn new(data: SafetyData, broken: Option<BrokenRule>) -> Self {
        SafetyRules { data, broken }
    }

    pub fn data(&self) -> &SafetyData {
        &self.data
    }

    /// Signs a vote for `block` if that is safe. `block` must already be verified.
    pub fn vote(
        &mut self,
        block: &Block,
        author: ValidatorIndex,
        key: &KeyPair,
        chain_id: &str,
    ) -> Result<Vote, ConsensusError> {
        let qc_round = block.parent_qc.round();
        if self.broken != Some(BrokenRule::SkipLastVotedRound) {
            ensure!(
                block.round > self.data.last_voted_round,
                ConsensusError::Unsafe("already voted in this round")
            );
        }
        let extends_previous_round = qc_round.checked_add(1) == Some(block.round);
        let justified_by_tc = block.timeout_cert.as_ref().is_some_and(|tc| {
            tc.round.checked_add(1) == Some(block.round) && qc_round >= tc.highest_qc_round()
        });
        ensure!(
            extends_previous_round || justified_by_tc,
            ConsensusError::Unsafe("block neither extends the previous round's QC nor a valid TC")
        );
        self.data.last_voted_round = block.round;
        self.data.one_chain_round = self.data.one_chain_round.max(qc_round);
        let vote =
            Vote::new(VoteData { block: block.info(), parent: *block.parent() }, author, key, chain_id);
        self.data.last_vote = Some(vote.clone());
        Ok(vote)
    }

    /// Signs a timeout for `round` if that is safe.
    pub fn timeout(
        &mut self,
        round: Round,
        high_qc: &QuorumCert,
        last_tc: Option<&TimeoutCert>,
        author: ValidatorIndex,
        key: &KeyPair,
        chain_id: &str,
    ) -> Result<Timeout, ConsensusError> {
        let qc_round = high_qc.round();
        let entered_by_qc = qc_round.checked_add(1) == Some(round);
        let entered_by_tc = last_tc.is_some_and(|tc| tc.round.checked_add(1) == Some(round));
        ensure!(
            entered_by_qc || entered_by_tc,
            ConsensusError::Unsafe("timeout round not entered through a QC or TC")
        );
        ensure!(
            round >= self.data.last_voted_round,
            ConsensusError::Unsafe("timeout for a round older than our vote")
        );
        ensure!(
            qc_round >= self.data.one_chain_round,
            ConsensusError::Unsafe("highest QC is below our lock")
        );
        self.data.last_voted_round = round;
        self.data.highest_timeout_round = self.data.highest_timeout_round.max(round);
        self.data.one_chain_round = qc_round;
        let timeout = Timeout::new(round, high_qc.clone(), author, key, chain_id);
        self.data.last_timeout = Some(timeout.clone());
        Ok(timeout)
    }
}
