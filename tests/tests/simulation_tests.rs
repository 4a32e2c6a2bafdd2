//! Seeded simulations of the consensus core with the invariant checker.
//!
//! `SIM_SEEDS=<k>` sets how many random seeds the sweep runs (default 300; `make sim-soak`
//! runs thousands); `SIM_SEED=<s>` replays exactly one seed of the sweep.

use bastion_consensus::BrokenRule;
use bastion_tests::byzantine::Behaviour;
use bastion_tests::scenario::Scenario;
use bastion_tests::simulation::{SimReport, Simulation};

/// After GST, an honest commit must come within this many rounds (round-robin leaders, at
/// most f of them faulty, back-off capped at 8x).
const MAX_ROUNDS_TO_RESUME: u64 = 40;

fn assert_safe_and_live(report: &SimReport, scenario: &str) {
    assert!(
        report.violations.is_empty(),
        "seed {} ({scenario}): invariant violations: {:#?}\nreplay: SIM_SEED={} cargo test --release -p bastion-tests --test simulation_tests sweep",
        report.seed,
        report.violations,
        report.seed
    );
    let resumed = report.rounds_to_resume.unwrap_or(u64::MAX);
    assert!(
        resumed <= MAX_ROUNDS_TO_RESUME,
        "seed {} ({scenario}): commits did not resume within {MAX_ROUNDS_TO_RESUME} rounds after GST: {report:?}",
        report.seed
    );
    assert!(
        report.min_honest_height > report.height_at_gst,
        "seed {} ({scenario}): an honest validator made no progress after GST: {report:?}",
        report.seed
    );
}

fn scenario_for(seed: u64) -> Scenario {
    let n = [4, 7, 10][(seed % 3) as usize];
    Scenario::random(seed, n)
}

#[test]
fn calm_network_commits_steadily() {
    let report = Simulation::new(Scenario::calm(1, 4)).run();
    assert!(report.violations.is_empty(), "{report:?}");
    assert!(report.committed_height > 100, "only {} blocks in 20 s of calm network", report.committed_height);
}

#[test]
fn sweep() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let count: u64 = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
            (0..count).collect()
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<u64>> =
        (0..threads).map(|t| seeds.iter().copied().skip(t).step_by(threads).collect()).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            std::thread::spawn(move || {
                chunk
                    .into_iter()
                    .map(|seed| {
                        let scenario = scenario_for(seed);
                        let describe = format!("{scenario:?}");
                        (Simulation::new(scenario).run(), describe)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut runs = 0;
    for handle in handles {
        for (report, describe) in handle.join().expect("simulation thread panicked") {
            assert_safe_and_live(&report, &describe);
            runs += 1;
        }
    }
    assert_eq!(runs, seeds.len());
}

#[test]
fn every_byzantine_kind_at_f_for_n4_and_n7() {
    for n in [4, 7] {
        let f = (n - 1) / 3;
        for (k, kind) in Behaviour::BYZANTINE.into_iter().enumerate() {
            let seed = 10_000 + (n * 10 + k) as u64;
            let mut scenario = Scenario::random(seed, n);
            scenario.behaviours = vec![Behaviour::Honest; n];
            // Byzantine validators at the leaders of rounds 1.. so they act early and often.
            for i in 0..f {
                scenario.behaviours[(i + 1) % n] = kind;
            }
            let describe = format!("{kind:?} x{f}, n={n}");
            let report = Simulation::new(scenario).run();
            assert_safe_and_live(&report, &describe);
        }
    }
}

#[test]
fn twins_never_fork_honest_validators() {
    for n in [4, 7] {
        for seed in 0..15 {
            let report = Simulation::new(Scenario::twins(20_000 + seed, n)).run();
            assert_safe_and_live(&report, &format!("twins of validator 0, n={n}"));
        }
    }
}

#[test]
fn a_seed_replays_exactly() {
    let first = Simulation::new(Scenario::random(77, 7)).run();
    let second = Simulation::new(Scenario::random(77, 7)).run();
    assert_eq!(
        (first.committed_height, first.messages_delivered, first.messages_dropped, first.rounds_to_resume),
        (
            second.committed_height,
            second.messages_delivered,
            second.messages_dropped,
            second.rounds_to_resume
        )
    );
}

/// Proves the checker has teeth: with the round check switched off, an equivocating leader
/// gets honest validators to sign two votes in one round, and the checker says so.
#[test]
fn checker_catches_a_broken_voting_rule() {
    let mut caught = 0;
    for seed in 0..5 {
        let mut scenario = Scenario::calm(30_000 + seed, 4);
        scenario.behaviours[1] = Behaviour::Equivocator;
        scenario.broken_rule = Some(BrokenRule::SkipLastVotedRound);
        let report = Simulation::new(scenario).run();
        if report.violations.iter().any(|v| v.contains("two different votes")) {
            caught += 1;
        }
    }
    assert_eq!(caught, 5, "the invariant checker missed a broken safety rule");
    // And the same runs with the rule intact are clean.
    for seed in 0..5 {
        let mut scenario = Scenario::calm(30_000 + seed, 4);
        scenario.behaviours[1] = Behaviour::Equivocator;
        let report = Simulation::new(scenario).run();
        assert_safe_and_live(&report, "equivocator, rules intact");
    }
}

/// An idle chain proposes slowly (one empty block per delay), and payload still commits promptly.
#[test]
fn idle_leaders_wait_but_payload_commits() {
    let mut scenario = Scenario::calm(5, 4);
    scenario.empty_block_delay_ms = 200;
    scenario.batch_interval_ms = 1_000;
    let report = Simulation::new(scenario).run();
    assert!(report.violations.is_empty(), "{report:?}");
    // Mostly idle for 20 s: far fewer blocks than the calm run's hundreds, but progress.
    assert!(report.committed_height > 20, "{report:?}");
    assert!(report.committed_height < 200, "idle leaders did not wait: {report:?}");
}
