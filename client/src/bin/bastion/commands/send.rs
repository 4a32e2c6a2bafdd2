//! `bastion transfer | deploy | call`: sign with a named key, submit, print the hash at
//! once, and with `--wait` wait for the outcome (a timeout says "still pending", never
//! "failed").

use std::time::Duration;

use anyhow::Context as _;
use bastion_client::api::{ReceiptView, TxResponse, TxStatus};
use bastion_client::{Client, ClientError};
use bastion_crypto::Digest;
use bastion_ledger::{compile_wat, Address, SignedTransaction, TransactionBuilder};
use serde::Serialize;

use crate::args::{CallArgs, DeployArgs, SendArgs, TransferArgs};
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{receipt_lines, status_name, Out};

/// The `--json` document of a sent (or looked-up) transaction.
#[derive(Clone, Debug, Serialize)]
pub struct TxDoc {
    pub hash: Digest,
    pub status: TxStatus,
    /// `null` until committed.
    pub receipt: Option<ReceiptView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TxDoc {
    pub fn from_response(tx: &TxResponse) -> Self {
        TxDoc {
            hash: tx.hash,
            status: tx.status,
            receipt: tx.receipt.clone(),
            contract: None,
            reason: tx.reason.clone().or_else(|| tx.receipt.as_ref().and_then(|r| r.reason.clone())),
            note: None,
        }
    }
}

pub async fn transfer(ctx: &Context, args: TransferArgs) -> anyhow::Result<Exit> {
    let ring = ctx.keyring()?;
    let from = ring.get(&args.from)?;
    let to = ring.resolve_address(&args.to)?;
    let node = ctx.node().await?;
    let builder = node.client.transaction_builder(&from.key, args.send.fuel).await?;
    let tx = builder.transfer(to, args.amount)?;
    ctx.out.line(format!("transfer {} from {} to {}", args.amount, from.address(), to));
    send(&node.client, ctx.out, &args.send, tx, None).await
}

pub async fn deploy(ctx: &Context, args: DeployArgs) -> anyhow::Result<Exit> {
    let from = ctx.keyring()?.get(&args.from)?;
    let source = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    // Transactions carry binary modules; compile_wat passes binary input through.
    let code =
        compile_wat(&source).with_context(|| format!("{} is not a valid contract", args.file.display()))?;
    let node = ctx.node().await?;
    let builder: TransactionBuilder = node.client.transaction_builder(&from.key, args.send.fuel).await?;
    let contract = builder.contract_address();
    let tx = builder.deploy(code, args.init.0)?;
    ctx.out.line(format!("deploy {} from {}", args.file.display(), from.address()));
    ctx.out.line(format!("contract {contract}"));
    send(&node.client, ctx.out, &args.send, tx, Some(contract)).await
}

pub async fn call(ctx: &Context, args: CallArgs) -> anyhow::Result<Exit> {
    let from = ctx.keyring()?.get(&args.from)?;
    let node = ctx.node().await?;
    let builder = node.client.transaction_builder(&from.key, args.send.fuel).await?;
    let tx = builder.call(args.contract, args.method.clone(), args.args.0)?;
    ctx.out.line(format!("call {}.{} from {}", args.contract, args.method, from.address()));
    send(&node.client, ctx.out, &args.send, tx, None).await
}

async fn send(
    client: &Client,
    out: Out,
    opts: &SendArgs,
    tx: SignedTransaction,
    contract: Option<Address>,
) -> anyhow::Result<Exit> {
    let local_hash = tx.hash()?;
    let accepted = client.submit(&tx).await?;
    if accepted.hash != local_hash {
        eprintln!("warning: the node reports hash {} for transaction {local_hash}", accepted.hash);
    }
    out.line(format!("tx {}", accepted.hash));
    let waited = opts.wait && !accepted.status.is_final();
    let (mut doc, exit) = if waited {
        wait(client, out, &accepted, Duration::from_secs(opts.timeout)).await
    } else {
        (TxDoc::from_response(&accepted), Exit::Success)
    };
    doc.contract = contract;
    Ok(report(out, doc, exit))
}

/// Waits (with a spinner) until `tx` is final or `timeout` passes. Returns what to print
/// and the exit: the final status's, [`Exit::Pending`] on timeout, or the class of the
/// error if contact with the node was lost (the transaction's fate is then unknown).
pub async fn wait(client: &Client, out: Out, tx: &TxResponse, timeout: Duration) -> (TxDoc, Exit) {
    let spinner = out.spinner(format!("waiting for {} to commit", &tx.hash.to_hex()[..12]));
    let result = client.wait_for_final(&tx.hash, timeout).await;
    spinner.finish_and_clear();
    match result {
        Ok(latest) => {
            let mut doc = TxDoc::from_response(&latest);
            if latest.status == TxStatus::Pending {
                doc.note = Some(format!(
                    "still pending after {}s: not committed yet, and not failed; check with `bastion tx {} --wait`",
                    timeout.as_secs(),
                    latest.hash
                ));
            }
            (doc, Exit::of_status(latest.status))
        }
        Err(e) => {
            let mut doc = TxDoc::from_response(tx);
            doc.note = Some(format!(
                "lost contact with the node while waiting ({e}); the transaction may still commit: check with `bastion tx {}`",
                tx.hash
            ));
            let exit = match &e {
                ClientError::Api { status: 404, .. } => Exit::Pending,
                e => Exit::of_client_error(e),
            };
            (doc, exit)
        }
    }
}

/// Prints a transaction's document (JSON) or its status and receipt (text).
pub fn report(out: Out, doc: TxDoc, exit: Exit) -> Exit {
    if out.json {
        out.json(&doc);
        return exit;
    }
    match &doc.receipt {
        Some(receipt) => receipt_lines(receipt).iter().for_each(|l| println!("{l}")),
        None => {
            let mut line = format!("status {}", status_name(&doc.status));
            if let Some(reason) = &doc.reason {
                line.push_str(&format!(": {reason}"));
            }
            println!("{line}");
        }
    }
    if let Some(note) = &doc.note {
        eprintln!("{note}");
    } else if doc.status == TxStatus::Pending {
        println!("(not waiting; follow it with `bastion tx {} --wait`)", doc.hash);
    }
    exit
}
