//! `bastion keys new | list | show`.

use bastion_client::keyring::{KeySource, NamedKey};
use serde_json::json;

use crate::args::KeysCommand;
use crate::context::Context;
use crate::exit::Exit;
use crate::output::table;

fn source(key: &NamedKey) -> String {
    match &key.source {
        KeySource::Dev => "dev (published seed)".into(),
        KeySource::File(path) => path.display().to_string(),
    }
}

fn key_json(key: &NamedKey) -> serde_json::Value {
    json!({
        "name": key.name,
        "address": key.address(),
        "public_key": key.key.public(),
        "dev": key.source == KeySource::Dev,
        "source": source(key),
    })
}

pub fn run(ctx: &Context, command: KeysCommand) -> anyhow::Result<Exit> {
    let ring = ctx.keyring()?;
    match command {
        KeysCommand::New { name } => {
            let key = ring.create(&name)?;
            if ctx.out.json {
                ctx.out.json(&key_json(&key));
            } else {
                println!("created key {name}");
                println!("address  {}", key.address());
                println!("file     {}", source(&key));
            }
        }
        KeysCommand::List => {
            let keys = ring.list()?;
            if ctx.out.json {
                ctx.out.json(&keys.iter().map(key_json).collect::<Vec<_>>());
            } else {
                let mut t = table(&["name", "address", "source"]);
                for key in &keys {
                    t.add_row(vec![key.name.clone(), key.address().to_hex(), source(key)]);
                }
                println!("{t}");
            }
        }
        KeysCommand::Show { name, secret } => {
            let key = ring.get(&name)?;
            let seed = secret.then(|| hex::encode(key.key.seed()));
            if ctx.out.json {
                let mut value = key_json(&key);
                if let Some(seed) = &seed {
                    value["seed"] = json!(seed);
                }
                ctx.out.json(&value);
            } else {
                println!("name     {}", key.name);
                println!("address  {}", key.address());
                println!("source   {}", source(&key));
                if let Some(seed) = seed {
                    println!("seed     {seed}");
                }
            }
        }
    }
    Ok(Exit::Success)
}
