use std::time::Duration;

use super::*;

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

fn sample(outcome: Outcome, submitted: Option<Duration>, committed: Option<Duration>) -> Sample {
    Sample {
        outcome,
        submitted_at: submitted,
        committed_at: committed,
        rejected_in_block: false,
        backpressured: false,
    }
}

#[test]
fn percentiles_are_nearest_rank() {
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&values, 50.0), Some(50.0));
    assert_eq!(percentile(&values, 90.0), Some(90.0));
    assert_eq!(percentile(&values, 99.0), Some(99.0));
    assert_eq!(percentile(&values, 100.0), Some(100.0));
    assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
    assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), Some(2.0));
    assert_eq!(percentile(&[], 50.0), None);
}

#[test]
fn report_counts_every_fate_and_measures_from_first_submit_to_last_commit() {
    let samples = vec![
        // Latencies 100, 200, 300, 400 ms.
        sample(Outcome::Accepted, ms(0), ms(100)),
        sample(Outcome::Accepted, ms(100), ms(300)),
        sample(Outcome::Accepted, ms(200), ms(500)),
        sample(Outcome::Accepted, ms(300), ms(700)),
        // Accepted, never committed.
        sample(Outcome::Accepted, ms(400), None),
        sample(Outcome::Rejected, ms(500), None),
        // The answer timed out, but it committed: counted as committed, not lost.
        sample(Outcome::Failed, ms(600), ms(1_000)),
        sample(Outcome::NotSent, None, None),
        // In a block, but its receipt is `rejected`: neither committed nor lost, and its
        // latency does not count. It had been answered 429 once.
        Sample {
            rejected_in_block: true,
            backpressured: true,
            ..sample(Outcome::Accepted, ms(650), ms(5_000))
        },
    ];
    let report = summarize(&samples, Some(3));
    assert_eq!(report.submitted, 8);
    assert_eq!(report.accepted, 6);
    assert_eq!(report.committed, 5);
    assert_eq!((report.rejected_in_block, report.backpressured), (1, 1));
    assert_eq!(report.rejected, 1);
    assert_eq!(report.errors, 1);
    assert_eq!(report.lost, 1);
    assert_eq!(report.round_timeouts, Some(3));
    // 5 commits between 0 and 1 s.
    assert_eq!(report.committed_tps, 5.0);
    assert_eq!(report.p50_ms, Some(300.0));
    assert_eq!(report.p90_ms, Some(400.0));
    assert_eq!(report.p99_ms, Some(400.0));
    assert_eq!(report.max_ms, Some(400.0));
    // 8 sends over 650 ms.
    assert_eq!(report.offered_tps, round2(7.0 / 0.65));
}

#[test]
fn nothing_committed_gives_null_latencies_and_zero_tps() {
    let samples = vec![sample(Outcome::Accepted, ms(0), None), sample(Outcome::Rejected, ms(1), None)];
    let report = summarize(&samples, None);
    assert_eq!((report.committed, report.lost, report.rejected), (0, 1, 1));
    assert_eq!(report.committed_tps, 0.0);
    assert_eq!((report.p50_ms, report.p99_ms), (None, None));
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "committed_tps",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "submitted",
        "committed",
        "rejected",
        "rejected_in_block",
        "backpressured",
        "lost",
        "round_timeouts",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn metric_sum_adds_labelled_samples_and_ignores_longer_names() {
    let text = "# HELP bastion_round_timeouts Rounds\n\
                # TYPE bastion_round_timeouts counter\n\
                bastion_round_timeouts_total 4\n\
                bastion_round_timeouts_total{peer=\"1\"} 2\n\
                bastion_round_timeouts_total_extra 100\n";
    assert_eq!(metric_sum(text, "bastion_round_timeouts_total"), Some(6.0));
    assert_eq!(metric_sum(text, "bastion_missing_total"), None);
}
