//! `bastion bench`: an open-loop load test against the local testnet (or one `--node`).
//!
//! Every transaction is built (and, in signed mode, signed) before the clock starts, so
//! the client's own work does not shape the load. Transactions go out at `--rate` per
//! second for `--duration` seconds, spread over every validator (each sending account always
//! to the same one, so its nonces arrive in order), with at most `--concurrency` requests in
//! flight. Every [`TICK`] the transactions that fell due go out, up to `--batch` per request
//! (`POST /v1/transactions/batch`; `--batch 1` posts them one by one); latency counts from
//! the request's first send. A transaction answered 429 (mempool full, node busy), a 5xx or
//! nothing (timeout: resubmitting is idempotent) is sent again,
//! ahead of anything newer for its validator, after [`RETRY_DELAY`] doubled on each refusal
//! up to [`MAX_RETRY_DELAY`] (a client that retried at once would only add load to an
//! overloaded node): dropping it would leave a nonce gap that dooms its sender's later
//! transactions. It counts as `backpressured`, and
//! as `rejected` if the window closes before it is admitted.
//! One validator's event stream tells when each transaction committed, and whether its
//! receipt says it executed (`committed`) or was rejected in the block (`rejected_in_block`,
//! e.g. "bad nonce"), which is not counted as committed. The run is bounded:
//! the submission window closes at twice the duration plus 5 s even if the node stalls,
//! and stragglers are awaited at most [`STRAGGLER_WAIT`].

mod report;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bastion_client::api::{codes, TxStatus, MAX_SUBMIT_BATCH};
use bastion_client::discovery::NodeSource;
use bastion_client::{Client, ClientError};
use bastion_crypto::{sha256, Digest, KeyPair};
use bastion_ledger::{Address, TransactionBuilder};
use bastion_testnet::dev_keys::{bench_key, dev_key, BENCH_KEY_COUNT, DEV_KEY_COUNT};
use bastion_testnet::layout::TestnetDir;
use bastion_testnet::Manifest;
use indicatif::{ProgressBar, ProgressStyle};
use rand::RngCore;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::args::BenchArgs;
use crate::context::Context;
use crate::exit::Exit;
use report::{metric_sum, summarize, Outcome, Report, Sample};

/// The longest the run waits, after the last submission, for accepted transactions to commit.
pub const STRAGGLER_WAIT: Duration = Duration::from_secs(30);
/// The most transactions one run may prepare.
pub const MAX_TRANSACTIONS: u64 = 10_000_000;
/// Fuel limit of a bench transfer (a transfer uses about 1,500).
const TRANSFER_FUEL_LIMIT: u64 = 10_000;
/// Signed transactions expire this many heights after the start: far beyond any run.
const EXPIRY_BLOCKS: u64 = 10_000_000;
/// Per-request timeout of a submission.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);
const ROUND_TIMEOUTS_METRIC: &str = "bastion_round_timeouts_total";
/// How often the transactions that fell due are sent.
pub const TICK: Duration = Duration::from_millis(5);
/// How long a transaction answered 429 waits before it is sent again the first time...
pub const RETRY_DELAY: Duration = Duration::from_millis(100);
/// ... doubling on each further 429, up to this.
pub const MAX_RETRY_DELAY: Duration = Duration::from_millis(1_600);

pub fn run(ctx: &Context, args: BenchArgs) -> anyhow::Result<Exit> {
    anyhow::ensure!(args.rate > 0, "--rate must be at least 1");
    anyhow::ensure!(args.duration > 0, "--duration must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(
        (1..=MAX_SUBMIT_BATCH).contains(&args.batch),
        "--batch must be 1 to {MAX_SUBMIT_BATCH} (transactions per request)"
    );
    let total = args.rate.saturating_mul(args.duration);
    anyhow::ensure!(
        total <= MAX_TRANSACTIONS,
        "--rate × --duration is {total} transactions; at most {MAX_TRANSACTIONS} per run"
    );
    if args.opaque {
        anyhow::ensure!(args.tx_size > 0, "--tx-size must be at least 1");
    } else {
        let most = usize::from(DEV_KEY_COUNT) + usize::from(BENCH_KEY_COUNT);
        anyhow::ensure!(
            (1..=most).contains(&args.accounts),
            "--accounts must be 1 to {most} (dev0..dev9, then the testnet's {BENCH_KEY_COUNT} load-test accounts)"
        );
    }
    let report =
        tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(ctx, &args))?;
    print(ctx, &report);
    Ok(Exit::Success)
}

/// A prepared transaction: its hash, the bytes to post, and its lane (the sending account,
/// or its position for opaque payloads), which picks the validator it goes to.
struct Prepared {
    hash: Digest,
    bytes: Vec<u8>,
    lane: usize,
}

/// What the submitters and the follower record, indexed like the prepared transactions.
struct Record {
    outcome: Vec<AtomicU8>,
    /// Nanoseconds since the start + 1 (0: not yet).
    submitted_ns: Vec<AtomicU64>,
    committed_ns: Vec<AtomicU64>,
    rejected_in_block: Vec<AtomicBool>,
    /// 429 answers so far.
    refusals: Vec<AtomicU8>,
    accepted: AtomicUsize,
    /// Transactions with a final answer (admitted, refused, or given up after 429s).
    settled: AtomicUsize,
    /// Seen in a block, whatever their receipt.
    in_block: AtomicUsize,
    /// Seen executed in a block.
    committed: AtomicUsize,
    /// Answered 429, each with when to send it again.
    retry: Mutex<Vec<(Instant, (usize, Prepared))>>,
}

impl Record {
    fn retries(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, (usize, Prepared))>> {
        self.retry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn bench(ctx: &Context, args: &BenchArgs) -> anyhow::Result<Report> {
    let urls = validator_urls(ctx).await?;
    let clients =
        urls.iter().map(|url| Client::with_timeout(url, SUBMIT_TIMEOUT)).collect::<Result<Vec<_>, _>>()?;
    let follow = &clients[0];
    let status = follow.status().await.context("cannot read the node's status")?;
    if args.opaque != status.consensus_only {
        let mode = if status.consensus_only { "consensus-only" } else { "executing (not consensus-only)" };
        eprintln!("warning: the node is {mode}; --opaque is {}", args.opaque);
    }
    let total = args.rate * args.duration;
    let txs = if args.opaque {
        opaque(total, args.tx_size)
    } else {
        signed(follow, &status.chain_id, status.committed_height, total, args.accounts).await?
    };
    let index: Arc<HashMap<Digest, usize>> =
        Arc::new(txs.iter().enumerate().map(|(i, t)| (t.hash, i)).collect());
    anyhow::ensure!(index.len() == txs.len(), "two prepared transactions have the same hash");
    let record = Arc::new(Record {
        outcome: (0..txs.len()).map(|_| AtomicU8::new(encode(Outcome::NotSent))).collect(),
        submitted_ns: (0..txs.len()).map(|_| AtomicU64::new(0)).collect(),
        committed_ns: (0..txs.len()).map(|_| AtomicU64::new(0)).collect(),
        rejected_in_block: (0..txs.len()).map(|_| AtomicBool::new(false)).collect(),
        refusals: (0..txs.len()).map(|_| AtomicU8::new(0)).collect(),
        accepted: AtomicUsize::new(0),
        settled: AtomicUsize::new(0),
        in_block: AtomicUsize::new(0),
        committed: AtomicUsize::new(0),
        retry: Mutex::new(Vec::new()),
    });
    let timeouts_before = round_timeouts(&clients).await;

    // Follow commits from the block after the current tip.
    let from = follow.status().await?.committed_height + 1;
    let mut stream = follow.events(Some(from)).await.context("cannot open the event stream")?;
    let start = Instant::now();
    let follower = {
        let (record, index) = (record.clone(), index.clone());
        tokio::spawn(async move {
            while let Some(block) = stream.next().await {
                let block = block?;
                let at = nanos_since(start);
                for tx in &block.txs {
                    let Some(&i) = index.get(&tx.hash) else { continue };
                    if record.committed_ns[i]
                        .compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                    {
                        record.in_block.fetch_add(1, Ordering::Relaxed);
                        if matches!(tx.status, TxStatus::CommittedOk | TxStatus::CommittedFailed) {
                            record.committed.fetch_add(1, Ordering::Relaxed);
                        } else {
                            record.rejected_in_block[i].store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            Ok::<(), ClientError>(())
        })
    };

    let bar = progress(ctx, total);
    let semaphore = Arc::new(Semaphore::new(args.concurrency));
    let close = start + Duration::from_secs(args.duration * 2 + 5);
    let mut next = 0usize;
    let mut txs = txs.into_iter();
    // Each tick: everything due by now, grouped by validator, `--batch` per request.
    let mut due_now: Vec<Vec<(usize, Prepared)>> = clients.iter().map(|_| Vec::new()).collect();
    // Until everything is sent and answered (retries included), or the window closes.
    while (next < total as usize || record.settled.load(Ordering::Relaxed) < next) && Instant::now() < close {
        // Retries first: they hold lower nonces than anything newer of their senders.
        let now = Instant::now();
        let (mut again, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut *record.retries()).into_iter().partition(|(at, _)| *at <= now);
        record.retries().extend(later);
        again.sort_by_key(|(_, (i, _))| *i);
        for (_, (i, tx)) in again {
            due_now[tx.lane % clients.len()].push((i, tx));
        }
        let due = ((start.elapsed().as_secs_f64() * args.rate as f64) as usize + 1).min(total as usize);
        while next < due {
            let Some(tx) = txs.next() else { break };
            due_now[tx.lane % clients.len()].push((next, tx));
            next += 1;
        }
        for (v, group) in due_now.iter_mut().enumerate() {
            while !group.is_empty() {
                let take = group.len().min(args.batch);
                let chunk: Vec<(usize, Prepared)> = group.drain(..take).collect();
                let Ok(permit) = semaphore.clone().acquire_owned().await else { break };
                let (client, record) = (clients[v].clone(), record.clone());
                tokio::spawn(async move {
                    send(&client, chunk, &record, start).await;
                    drop(permit);
                });
            }
        }
        bar.set_position(next as u64);
        bar.set_message(status_message(&record));
        tokio::time::sleep_until((Instant::now() + TICK).min(close)).await;
    }
    if next < total as usize {
        eprintln!("warning: the submission window closed with {} transactions unsent", total as usize - next);
    }
    // Let the requests in flight answer first: one refused now joins the retries given up
    // below instead of staying "in flight" until the straggler wait runs out.
    let all_permits = u32::try_from(args.concurrency).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(STRAGGLER_WAIT, semaphore.acquire_many(all_permits)).await;
    let given_up: Vec<usize> = record.retries().drain(..).map(|(_, (i, _))| i).collect();
    if !given_up.is_empty() {
        eprintln!("warning: {} transactions were still answered 429 when the window closed", given_up.len());
    }
    for i in &given_up {
        record.outcome[*i].store(encode(Outcome::Rejected), Ordering::Relaxed);
    }
    record.settled.fetch_add(given_up.len(), Ordering::Relaxed);
    let submit_end = Instant::now();

    // Wait for the answers in flight, then for accepted transactions to commit.
    let deadline = submit_end + STRAGGLER_WAIT;
    bar.set_message("waiting for stragglers");
    loop {
        let settled = record.settled.load(Ordering::Relaxed) >= next;
        let committed = record.in_block.load(Ordering::Relaxed) >= record.accepted.load(Ordering::Relaxed);
        if (settled && committed) || Instant::now() >= deadline || follower.is_finished() {
            break;
        }
        bar.set_message(format!("waiting for stragglers: {}", status_message(&record)));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bar.finish_and_clear();
    if follower.is_finished() {
        match follower.await {
            Ok(Err(e)) => eprintln!("warning: the event stream ended early: {e}"),
            Err(e) => eprintln!("warning: the event follower failed: {e}"),
            Ok(Ok(())) => {}
        }
    } else {
        follower.abort();
    }
    let timeouts_after = round_timeouts(&clients).await;
    let round_timeouts = match (timeouts_before, timeouts_after) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let samples: Vec<Sample> = (0..record.outcome.len())
        .map(|i| Sample {
            outcome: decode(record.outcome[i].load(Ordering::Relaxed)),
            submitted_at: since_start(record.submitted_ns[i].load(Ordering::Relaxed)),
            committed_at: since_start(record.committed_ns[i].load(Ordering::Relaxed)),
            rejected_in_block: record.rejected_in_block[i].load(Ordering::Relaxed),
            backpressured: record.refusals[i].load(Ordering::Relaxed) > 0,
        })
        .collect();
    Ok(summarize(&samples, round_timeouts))
}

/// Posts `chunk` (one transaction alone, else as a batch) and records each one's outcome;
/// those answered 429 go back for another try.
async fn send(client: &Client, chunk: Vec<(usize, Prepared)>, record: &Record, start: Instant) {
    let sent = nanos_since(start);
    for (i, _) in &chunk {
        // Latency counts from the first send.
        let _ = record.submitted_ns[*i].compare_exchange(0, sent, Ordering::Relaxed, Ordering::Relaxed);
        record.outcome[*i].store(encode(Outcome::InFlight), Ordering::Relaxed);
    }
    let outcomes: Vec<Outcome> = if let [(_, tx)] = chunk.as_slice() {
        vec![match client.submit_raw(tx.bytes.clone()).await {
            Ok(_) => Outcome::Accepted,
            Err(e) => refusal(e.status()),
        }]
    } else {
        let bodies: Vec<&[u8]> = chunk.iter().map(|(_, tx)| tx.bytes.as_slice()).collect();
        match client.submit_batch(&bodies).await {
            Ok(answer) => answer
                .results
                .iter()
                .map(|result| match (&result.hash, &result.error) {
                    (Some(_), _) => Outcome::Accepted,
                    (None, Some(error)) if error.code == codes::MEMPOOL_FULL => Outcome::Rejected,
                    _ => Outcome::Failed,
                })
                .collect(),
            Err(e) => vec![refusal(e.status()); chunk.len()],
        }
    };
    let answered = Instant::now();
    let mut settled = 0;
    for (k, (i, tx)) in chunk.into_iter().enumerate() {
        // A short answer (a server bug) leaves the rest failed, never silently accepted.
        let outcome = outcomes.get(k).copied().unwrap_or(Outcome::Failed);
        if outcome == Outcome::Rejected {
            let refusals = record.refusals[i].fetch_add(1, Ordering::Relaxed).saturating_add(1);
            let delay = RETRY_DELAY.saturating_mul(1 << (refusals - 1).min(8)).min(MAX_RETRY_DELAY);
            record.retries().push((answered + delay, (i, tx)));
            continue;
        }
        if outcome == Outcome::Accepted {
            record.accepted.fetch_add(1, Ordering::Relaxed);
        }
        record.outcome[i].store(encode(outcome), Ordering::Relaxed);
        settled += 1;
    }
    record.settled.fetch_add(settled, Ordering::Relaxed);
}

/// A refused or failed request: `rejected` (to be sent again) for 429 (mempool full or
/// node busy), a 5xx (e.g. 503, not ready) or no answer at all (timeout, connection lost:
/// sending again is safe, a transaction already admitted keeps its hash); else an error.
fn refusal(status: Option<u16>) -> Outcome {
    match status {
        None | Some(429) | Some(500..) => Outcome::Rejected,
        Some(_) => Outcome::Failed,
    }
}

/// Every validator of the local testnet, or the one node of `--node` / `$BASTION_NODE`.
async fn validator_urls(ctx: &Context) -> anyhow::Result<Vec<String>> {
    let node = ctx.node().await?;
    let mut urls = vec![node.client.base_url().to_string()];
    let NodeSource::Testnet { dir, .. } = &node.discovered.source else { return Ok(urls) };
    let manifest = TestnetDir::new(dir).ok().and_then(|layout| Manifest::load_dir(&layout).ok());
    for v in manifest.iter().flat_map(|m| m.validators.iter()) {
        let Ok(client) = Client::with_timeout(&v.api_url, Duration::from_secs(2)) else { continue };
        let url = client.base_url().to_string();
        if !urls.contains(&url) && client.health().await.is_ok_and(|h| h.ready) {
            urls.push(url);
        }
    }
    Ok(urls)
}

/// `total` transfers of 1 token to a fixed recipient, round-robin over the first k senders,
/// each account's nonces consecutive from its pending nonce.
async fn signed(
    client: &Client,
    chain_id: &str,
    height: u64,
    total: u64,
    accounts: usize,
) -> anyhow::Result<Vec<Prepared>> {
    let recipient = Address(sha256(b"bastion bench recipient").0);
    let mut builders = Vec::new();
    for i in 0..accounts {
        let (name, key) = sender(i).context("no such sending account")?;
        let address = Address::from_public_key(&key.public());
        let (nonce, balance) = match client.account(&address).await {
            Ok(account) => (account.pending_nonce, account.balance),
            Err(e) if e.status() == Some(404) => (0, 0),
            Err(e) => return Err(e).with_context(|| format!("cannot read {name}'s account")),
        };
        anyhow::ensure!(
            balance > 0,
            "{name} ({address}) holds nothing on this chain: testnets made before load-test accounts \
             existed fund only dev0..dev9 (use --accounts 10, or `bastion testnet up --reset`)"
        );
        let builder = TransactionBuilder::new(chain_id.to_string(), key)
            .expiry_height(height.saturating_add(EXPIRY_BLOCKS))
            .fuel_limit(TRANSFER_FUEL_LIMIT);
        builders.push((builder, nonce));
    }
    // Sign each account's share on its own thread, then interleave.
    let per_account: Vec<_> = builders
        .into_iter()
        .enumerate()
        .map(|(a, (builder, first))| {
            let count = (total as usize).saturating_sub(a).div_ceil(accounts);
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Prepared>> {
                (0..count as u64)
                    .map(|n| {
                        let tx = builder.clone().nonce(first + n).transfer(recipient, 1)?;
                        Ok(Prepared { hash: tx.hash()?, bytes: tx.to_bytes()?, lane: a })
                    })
                    .collect()
            })
        })
        .collect();
    let mut shares = Vec::new();
    for task in per_account {
        shares.push(task.await??.into_iter());
    }
    let mut txs = Vec::with_capacity(total as usize);
    'outer: loop {
        for share in shares.iter_mut() {
            match share.next() {
                Some(tx) => txs.push(tx),
                None => break 'outer,
            }
        }
    }
    Ok(txs)
}

/// Sending account `i`: dev0 … dev9, then the load-test accounts bench0, bench1, …
fn sender(i: usize) -> Option<(String, KeyPair)> {
    let dev = usize::from(DEV_KEY_COUNT);
    if i < dev {
        return dev_key(i as u8).map(|key| (format!("dev{i}"), key));
    }
    let j = u16::try_from(i - dev).ok()?;
    bench_key(j).map(|key| (format!("bench{j}"), key))
}

/// `total` random payloads of `size` bytes; the node names each by its SHA-256.
fn opaque(total: u64, size: usize) -> Vec<Prepared> {
    let mut rng = rand::thread_rng();
    (0..total as usize)
        .map(|lane| {
            let mut bytes = vec![0u8; size];
            rng.fill_bytes(&mut bytes);
            Prepared { hash: sha256(&bytes), bytes, lane }
        })
        .collect()
}

/// The sum of every validator's round-timeout counter; `None` if one cannot be read.
async fn round_timeouts(clients: &[Client]) -> Option<u64> {
    let mut sum = 0.0;
    for client in clients {
        let text = client.metrics().await.ok()?;
        sum += metric_sum(&text, ROUND_TIMEOUTS_METRIC).unwrap_or(0.0);
    }
    Some(sum as u64)
}

fn progress(ctx: &Context, total: u64) -> ProgressBar {
    if ctx.out.json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} sent ({elapsed}) {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn status_message(record: &Record) -> String {
    format!(
        "{} accepted, {} committed",
        record.accepted.load(Ordering::Relaxed),
        record.committed.load(Ordering::Relaxed)
    )
}

fn print(ctx: &Context, report: &Report) {
    if ctx.out.json {
        ctx.out.json(report);
        return;
    }
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    println!("committed {:.1} tx/s (offered {:.1} tx/s)", report.committed_tps, report.offered_tps);
    println!(
        "latency p50 {}  p90 {}  p99 {}  max {}",
        ms(report.p50_ms),
        ms(report.p90_ms),
        ms(report.p99_ms),
        ms(report.max_ms)
    );
    println!(
        "submitted {}  accepted {}  committed {}  rejected in block {}  lost {}",
        report.submitted, report.accepted, report.committed, report.rejected_in_block, report.lost
    );
    println!(
        "answered 429, 5xx or nothing {} (sent again)  never admitted {}  errors {}",
        report.backpressured, report.rejected, report.errors
    );
    match report.round_timeouts {
        Some(n) => println!("round timeouts {n}"),
        None => println!("round timeouts unknown (a validator's /metrics could not be read)"),
    }
}

fn nanos_since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64 + 1
}

fn since_start(nanos: u64) -> Option<Duration> {
    nanos.checked_sub(1).map(Duration::from_nanos)
}

fn encode(outcome: Outcome) -> u8 {
    outcome as u8
}

fn decode(value: u8) -> Outcome {
    [Outcome::NotSent, Outcome::InFlight, Outcome::Accepted, Outcome::Rejected, Outcome::Failed]
        .into_iter()
        .find(|o| *o as u8 == value)
        .unwrap_or(Outcome::Failed)
}
