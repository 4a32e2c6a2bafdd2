//! What a `bastion bench` run measured, reduced to its report: throughput, latency
//! percentiles and the fate of every transaction. Pure (no I/O), so it is unit-tested.

use std::time::Duration;

use serde::Serialize;

/// What became of one transaction's submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Never sent (the submission window closed first).
    NotSent,
    /// Sent, answer not back yet.
    InFlight,
    /// The node admitted it.
    Accepted,
    /// Answered 429 (or a 5xx, or nothing) until the submission window closed: never
    /// admitted.
    Rejected,
    /// Any other refusal (a 4xx other than 429).
    Failed,
}

/// One transaction, times measured from the start of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub outcome: Outcome,
    /// When its request was sent.
    pub submitted_at: Option<Duration>,
    /// When the followed validator's event stream showed it in a block.
    pub committed_at: Option<Duration>,
    /// Its receipt in that block says `rejected` (e.g. "bad nonce"): it is in the chain but
    /// did not execute, so it counts apart from the committed ones.
    pub rejected_in_block: bool,
    /// Answered 429, a 5xx or nothing at least once (then sent again).
    pub backpressured: bool,
}

/// The `--json` document of `bastion bench`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Committed (executed: receipt `committed_ok` or `committed_failed`) transactions /
    /// (last commit − first submission), per second.
    pub committed_tps: f64,
    /// Latency from submission to commit, over committed transactions (`null` if none).
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Requests sent.
    pub submitted: u64,
    /// Admitted by the node.
    pub accepted: u64,
    /// Seen executed in a committed block.
    pub committed: u64,
    /// In a committed block with a `rejected` receipt (not executed, e.g. "bad nonce").
    pub rejected_in_block: u64,
    /// Answered 429 (mempool full, node busy), a 5xx or nothing (timeout) at least once;
    /// each is sent again until admitted or the submission window closes.
    pub backpressured: u64,
    /// Never admitted: still refused so when the submission window closed.
    pub rejected: u64,
    /// Other refusals and transport errors.
    pub errors: u64,
    /// Accepted but never seen in a block.
    pub lost: u64,
    /// `bastion_round_timeouts_total` summed over validators, end minus start (`null` if
    /// some validator's metrics could not be read).
    pub round_timeouts: Option<u64>,
    /// Submitted / submission window, per second: the load actually offered.
    pub offered_tps: f64,
}

/// Reduces the samples to the report.
pub fn summarize(samples: &[Sample], round_timeouts: Option<u64>) -> Report {
    let count = |o: Outcome| samples.iter().filter(|s| s.outcome == o).count() as u64;
    let sent: Vec<&Sample> = samples.iter().filter(|s| s.submitted_at.is_some()).collect();
    let first_submit = sent.iter().filter_map(|s| s.submitted_at).min();
    let last_submit = sent.iter().filter_map(|s| s.submitted_at).max();
    // A transaction whose answer was lost (timeout) may still commit: it counts.
    let executed: Vec<&&Sample> = sent.iter().filter(|s| !s.rejected_in_block).collect();
    let mut latencies_ms: Vec<f64> = executed
        .iter()
        .filter_map(|s| Some(s.committed_at?.saturating_sub(s.submitted_at?).as_secs_f64() * 1e3))
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    let committed = latencies_ms.len() as u64;
    let last_commit = executed.iter().filter_map(|s| s.committed_at).max();
    let committed_tps = match (first_submit, last_commit) {
        (Some(first), Some(last)) if last > first => committed as f64 / (last - first).as_secs_f64(),
        _ => 0.0,
    };
    let offered_tps = match (first_submit, last_submit) {
        (Some(first), Some(last)) if last > first => {
            // n sends at a steady rate span n−1 intervals.
            (sent.len() as f64 - 1.0) / (last - first).as_secs_f64()
        }
        _ => 0.0,
    };
    let lost =
        samples.iter().filter(|s| s.outcome == Outcome::Accepted && s.committed_at.is_none()).count() as u64;
    Report {
        committed_tps: round2(committed_tps),
        p50_ms: percentile(&latencies_ms, 50.0).map(round2),
        p90_ms: percentile(&latencies_ms, 90.0).map(round2),
        p99_ms: percentile(&latencies_ms, 99.0).map(round2),
        max_ms: latencies_ms.last().copied().map(round2),
        submitted: sent.len() as u64,
        accepted: count(Outcome::Accepted),
        committed,
        rejected_in_block: samples.iter().filter(|s| s.rejected_in_block && s.committed_at.is_some()).count()
            as u64,
        backpressured: samples.iter().filter(|s| s.backpressured).count() as u64,
        rejected: count(Outcome::Rejected),
        errors: count(Outcome::Failed) + count(Outcome::InFlight),
        lost,
        round_timeouts,
        offered_tps: round2(offered_tps),
    }
}

/// The nearest-rank `p`th percentile (0 < p ≤ 100) of ascending `sorted` values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Sum of the samples of `metric` (any labels) in a Prometheus text exposition; `None`
/// if the metric is absent.
pub fn metric_sum(exposition: &str, metric: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(metric) else { continue };
        // `metric 3` or `metric{labels} 3`, not `metric_other 3`.
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').next().and_then(|v| v.trim().parse::<f64>().ok());
        if let Some(value) = value {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
