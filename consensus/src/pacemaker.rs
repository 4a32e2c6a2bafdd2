//! The pacemaker: the current round and how long to wait in it.
//!
//! A validator enters round `r + 1` when it sees a QC or a TC for round `r`, whichever comes
//! first; it never goes back. Each round that ends in a timeout doubles the next round's
//! timeout (capped), and a round entered through a QC resets it, so after GST every honest
//! validator eventually waits long enough for an honest leader.

use crate::Round;

#[derive(Clone, Debug)]
pub struct Pacemaker {
    round: Round,
    consecutive_timeouts: u32,
    base_ms: u64,
    max_ms: u64,
}

impl Pacemaker {
    pub fn new(base_ms: u64, max_ms: u64) -> Self {
        Pacemaker { round: 0, consecutive_timeouts: 0, base_ms: base_ms.max(1), max_ms: max_ms.max(base_ms) }
    }

    pub fn round(&self) -> Round {
        self.round
    }

    /// Enters `round` if it is ahead of the current one; `after_timeout` says whether the
    /// previous round ended in a timeout certificate. Returns whether the round changed.
    pub fn advance(&mut self, round: Round, after_timeout: bool) -> bool {
        if round <= self.round {
            return false;
        }
        self.round = round;
        if after_timeout {
            self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
        } else {
            self.consecutive_timeouts = 0;
        }
        true
    }

    /// How long to wait in the current round before timing out.
    pub fn timeout_ms(&self) -> u64 {
        let doublings = self.consecutive_timeouts.min(20);
        self.base_ms.saturating_mul(1u64 << doublings).min(self.max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_on_timeouts_and_resets_on_progress() {
        let mut p = Pacemaker::new(100, 1_000);
        assert!(p.advance(1, false));
        assert_eq!(p.timeout_ms(), 100);
        assert!(p.advance(2, true));
        assert_eq!(p.timeout_ms(), 200);
        assert!(p.advance(3, true));
        assert_eq!(p.timeout_ms(), 400);
        assert!(p.advance(7, true));
        assert!(p.advance(8, true));
        assert_eq!(p.timeout_ms(), 1_000, "capped");
        assert!(p.advance(9, false));
        assert_eq!(p.timeout_ms(), 100, "progress resets the back-off");
    }

    #[test]
    fn never_goes_back() {
        let mut p = Pacemaker::new(100, 1_000);
        assert!(p.advance(5, false));
        assert!(!p.advance(5, false));
        assert!(!p.advance(3, true));
        assert_eq!(p.round(), 5);
    }
}
