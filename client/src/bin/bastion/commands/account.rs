//! `bastion account <name|address> [--proof]`.

use bastion_client::api::AccountResponse;
use bastion_client::verify_account;
use serde_json::json;

use crate::args::AccountArgs;
use crate::context::Context;
use crate::exit::Exit;

pub async fn run(ctx: &Context, args: AccountArgs) -> anyhow::Result<Exit> {
    let address = ctx.keyring()?.resolve_address(&args.who)?;
    let node = ctx.node().await?;
    if !args.proof {
        let account = node.client.account(&address).await?;
        if ctx.out.json {
            ctx.out.json(&account_json(&account));
        } else {
            print_account(&account);
            println!("at height      {} (not verified; add --proof)", account.height);
        }
        return Ok(Exit::Success);
    }

    node.await_certified_tip().await?;
    let account = node.client.account_with_proof(&address).await?;
    let committee = node.committee(args.genesis.as_deref()).await?;
    if !committee.trusted && !ctx.out.json {
        eprintln!(
            "warning: no local genesis for chain {}; checking against the committee {} (pass --genesis FILE for a trustless check)",
            committee.chain_id, committee.source
        );
    }
    let verdict = verify_account(&account, &committee.chain_id, &committee.keys);
    let signers = account.proof.as_ref().map_or(0, |p| p.certificate.signers.len());
    let proof = match &verdict {
        Ok(v) => json!({
            "verified": true,
            "height": v.height,
            "signers": v.signers,
            "validators": v.validators,
            "committee": committee.source,
            "committee_from_genesis": committee.trusted,
        }),
        Err(e) => json!({
            "verified": false,
            "height": account.height,
            "signers": signers,
            "validators": committee.keys.len(),
            "committee": committee.source,
            "committee_from_genesis": committee.trusted,
            "error": e.to_string(),
        }),
    };
    if ctx.out.json {
        let mut doc = account_json(&account);
        doc["proof"] = proof;
        ctx.out.json(&doc);
    } else {
        print_account(&account);
        match &verdict {
            Ok(v) => println!("verified at height {} by {}/{} validators", v.height, v.signers, v.validators),
            Err(e) => eprintln!("error: NOT verified: {e}"),
        }
    }
    Ok(if verdict.is_ok() { Exit::Success } else { Exit::Unverified })
}

/// The `--json` document of an account (DESIGN §4 fields plus a few extras).
fn account_json(account: &AccountResponse) -> serde_json::Value {
    json!({
        "address": account.address,
        "balance": account.balance,
        "nonce": account.nonce,
        "pending_nonce": account.pending_nonce,
        "is_contract": account.is_contract,
        "height": account.height,
    })
}

fn print_account(account: &AccountResponse) {
    println!("address        {}", account.address);
    println!("balance        {}", account.balance);
    println!("nonce          {} (pending {})", account.nonce, account.pending_nonce);
    if account.is_contract {
        println!("contract       yes");
    }
}
