//! `bastion view | tx | block`: read-only queries.

use std::time::Duration;

use bastion_client::{verify_view, ClientError};
use serde_json::json;

use crate::args::{BlockArgs, TxArgs, ViewArgs};
use crate::commands::send::{report, wait, TxDoc};
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{block_lines, describe_bytes, event_line};

/// Runs the view at the certified height and re-runs it locally over the node's witness:
/// the answer printed is the one proven state gives, or the command says it is not verified.
pub async fn view(ctx: &Context, args: ViewArgs) -> anyhow::Result<Exit> {
    let node = ctx.node().await?;
    node.await_certified_tip().await?;
    let answer = node.client.view(&args.contract, &args.method, &args.args.0, true).await?;
    let committee = node.committee(args.genesis.as_deref()).await?;
    if !committee.trusted && !ctx.out.json {
        eprintln!(
            "warning: no local genesis for chain {}; checking against the committee {} (pass --genesis FILE for a trustless check)",
            committee.chain_id, committee.source
        );
    }
    let verdict = verify_view(
        &answer,
        &args.contract,
        &args.method,
        &args.args.0,
        &committee.chain_id,
        &committee.keys,
    );
    if ctx.out.json {
        let mut doc = json!({
            "return_hex": answer.return_hex,
            "height": answer.height,
            "verified": verdict.is_ok(),
            "fuel_used": answer.fuel_used,
            "events": answer.events,
            "validators": committee.keys.len(),
            "committee_from_genesis": committee.trusted,
        });
        match &verdict {
            Ok(v) => doc["signers"] = json!(v.signers),
            Err(e) => doc["error"] = json!(e.to_string()),
        }
        ctx.out.json(&doc);
    } else {
        println!("return     {}", describe_bytes(&answer.return_hex));
        println!("height     {}", answer.height);
        println!("fuel used  {}", answer.fuel_used);
        for event in &answer.events {
            println!("{}", event_line(event));
        }
        match &verdict {
            Ok(v) => println!("verified at height {} by {}/{} validators", v.height, v.signers, v.validators),
            Err(e) => eprintln!("error: NOT verified: {e}"),
        }
    }
    Ok(if verdict.is_ok() { Exit::Success } else { Exit::Unverified })
}

pub async fn tx(ctx: &Context, args: TxArgs) -> anyhow::Result<Exit> {
    let node = ctx.node().await?;
    let found = match node.client.transaction(&args.hash).await {
        Ok(found) => found,
        Err(ClientError::Api { status: 404, .. }) => {
            anyhow::bail!(ClientError::Api {
                url: node.client.base_url().to_string(),
                status: 404,
                body: bastion_client::api::ErrorBody {
                    code: bastion_client::api::codes::NOT_FOUND.into(),
                    message: format!("the node does not know transaction {}", args.hash),
                },
                retry_after: None,
            })
        }
        Err(e) => return Err(e.into()),
    };
    ctx.out.line(format!("tx {}", found.hash));
    let (doc, exit) = if args.wait && !found.status.is_final() {
        wait(&node.client, ctx.out, &found, Duration::from_secs(args.timeout)).await
    } else {
        (TxDoc::from_response(&found), if args.wait { Exit::of_status(found.status) } else { Exit::Success })
    };
    Ok(report(ctx.out, doc, exit))
}

pub async fn block(ctx: &Context, args: BlockArgs) -> anyhow::Result<Exit> {
    let node = ctx.node().await?;
    let block = node.client.block(args.id).await?;
    if ctx.out.json {
        ctx.out.json(&block);
    } else {
        for line in block_lines(&block) {
            println!("{line}");
        }
        println!("  parent {}", block.parent);
        if let Some(root) = block.state_root {
            println!("  state root {root}");
        }
        println!("  batches {}", block.batches.len());
    }
    Ok(Exit::Success)
}
