//! `bastion view | tx | block`: read-only queries.

use std::time::Duration;

use bastion_client::ClientError;
use serde_json::json;

use crate::args::{BlockArgs, TxArgs, ViewArgs};
use crate::commands::send::{report, wait, TxDoc};
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{block_lines, describe_bytes, event_line};

pub async fn view(ctx: &Context, args: ViewArgs) -> anyhow::Result<Exit> {
    let node = ctx.node().await?;
    let answer = node.client.view(&args.contract, &args.method, &args.args.0).await?;
    // Checking a view needs re-running it over the witness's proven reads, which the
    // ledger does not offer yet: say so rather than claim a verification.
    let note = "views are answered by one node and not verified in this version";
    if ctx.out.json {
        ctx.out.json(&json!({
            "return_hex": answer.return_hex,
            "height": answer.height,
            "verified": false,
            "fuel_used": answer.fuel_used,
            "events": answer.events,
            "note": note,
        }));
    } else {
        println!("return     {}", describe_bytes(&answer.return_hex));
        println!("height     {}", answer.height);
        println!("fuel used  {}", answer.fuel_used);
        for event in &answer.events {
            println!("{}", event_line(event));
        }
        println!("({note})");
    }
    Ok(Exit::Success)
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
