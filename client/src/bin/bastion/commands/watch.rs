//! `bastion watch [--from H]`: committed blocks and their events as they come, until
//! Ctrl-C. With `--json`, one JSON document per line (one per block).

use crate::args::WatchArgs;
use crate::context::Context;
use crate::exit::Exit;
use crate::output::block_lines;

pub async fn run(ctx: &Context, args: WatchArgs) -> anyhow::Result<Exit> {
    let node = ctx.node().await?;
    let mut stream = node.client.events(args.from).await?;
    if !ctx.out.json {
        let from = args.from.map_or_else(|| "new blocks".to_string(), |h| format!("height {h}"));
        eprintln!("watching {} from {from} (Ctrl-C to stop)", node.client.base_url());
    }
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(block)) => {
                    if ctx.out.json {
                        println!("{}", serde_json::to_string(&block)?);
                    } else {
                        for line in block_lines(&block) {
                            println!("{line}");
                        }
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(Exit::Success),
            },
            _ = tokio::signal::ctrl_c() => return Ok(Exit::Success),
        }
    }
}
