use clap::Parser;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("bastion").chain(args.iter().copied()))
}

fn ok(args: &[&str]) -> Cli {
    parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn fails(args: &[&str]) {
    assert!(parse(args).is_err(), "{args:?} should not parse");
}

const ADDR: &str = "0951120bacd9a850d711cb1141c3658b8a7b15b4d6e374b9d31549aa3c1d3c91";

#[test]
fn testnet_commands() {
    let cli = ok(&[
        "testnet",
        "up",
        "--validators",
        "7",
        "--dir",
        "/tmp/t",
        "--detach",
        "--reset",
        "--consensus-only",
    ]);
    let Command::Testnet(t) = cli.command else { panic!() };
    assert_eq!(t.dir, PathBuf::from("/tmp/t"));
    let TestnetCommand::Up(up) = t.command else { panic!() };
    assert_eq!(up.validators, Some(7));
    assert!(up.detach && up.reset && up.consensus_only);
    assert_eq!(up.ready_timeout, 60);

    // --dir before or after the subcommand; the default when absent.
    let Command::Testnet(t) = ok(&["testnet", "--dir", "x", "status"]).command else { panic!() };
    assert_eq!(t.dir, PathBuf::from("x"));
    assert!(matches!(t.command, TestnetCommand::Status));
    if std::env::var_os(TESTNET_DIR_ENV).is_none() {
        let Command::Testnet(t) = ok(&["testnet", "up"]).command else { panic!() };
        assert_eq!(t.dir, PathBuf::from(".bastion-testnet"));
        let TestnetCommand::Up(up) = t.command else { panic!() };
        assert_eq!(up.validators, None);
    }
    for (args, expected) in [(["testnet", "kill", "2"], 2u16), (["testnet", "restart", "3"], 3)] {
        let Command::Testnet(t) = ok(&args).command else { panic!() };
        match t.command {
            TestnetCommand::Kill { index } | TestnetCommand::Restart { index } => assert_eq!(index, expected),
            other => panic!("{other:?}"),
        }
    }
    let Command::Testnet(t) = ok(&["testnet", "logs", "1", "-f", "-n", "20"]).command else { panic!() };
    let TestnetCommand::Logs(logs) = t.command else { panic!() };
    assert_eq!((logs.index, logs.follow, logs.lines), (1, true, Some(20)));
    assert!(matches!(
        ok(&["testnet", "down"]).command,
        Command::Testnet(TestnetArgs { command: TestnetCommand::Down, .. })
    ));
    assert!(matches!(
        ok(&["testnet", "compose", "--json"]).command,
        Command::Testnet(TestnetArgs { command: TestnetCommand::Compose, .. })
    ));
    fails(&["testnet", "kill"]);
    fails(&["testnet", "kill", "x"]);
    fails(&["testnet", "up", "--validators", "four"]);
    fails(&["testnet"]);
}

#[test]
fn keys_commands() {
    assert!(
        matches!(ok(&["keys", "new", "alice"]).command, Command::Keys(KeysCommand::New { name }) if name == "alice")
    );
    assert!(matches!(ok(&["keys", "list"]).command, Command::Keys(KeysCommand::List)));
    assert!(matches!(
        ok(&["keys", "show", "dev0", "--secret"]).command,
        Command::Keys(KeysCommand::Show { secret: true, .. })
    ));
    fails(&["keys", "new"]);
    fails(&["keys", "delete", "x"]);
}

#[test]
fn account_and_global_flags() {
    let cli = ok(&["account", "dev0", "--proof", "--json", "--node", "http://127.0.0.1:9"]);
    assert!(cli.json);
    assert_eq!(cli.node.as_deref(), Some("http://127.0.0.1:9"));
    let Command::Account(a) = cli.command else { panic!() };
    assert_eq!((a.who.as_str(), a.proof, a.genesis), ("dev0", true, None));
    // Global flags also before the command.
    let cli = ok(&["--json", "account", ADDR]);
    assert!(cli.json && cli.node.is_none());
    fails(&["account"]);
}

#[test]
fn transfer_deploy_call() {
    let Command::Transfer(t) =
        ok(&["transfer", "--from", "dev0", "--to", "dev1", "--amount", "1_000", "--wait", "--fuel", "5000"])
            .command
    else {
        panic!()
    };
    assert_eq!((t.from.as_str(), t.to.as_str(), t.amount), ("dev0", "dev1", 1000));
    assert!(t.send.wait);
    assert_eq!((t.send.fuel, t.send.timeout), (5000, 60));
    fails(&["transfer", "--from", "dev0", "--to", "dev1"]);
    fails(&["transfer", "--from", "dev0", "--to", "dev1", "--amount", "-5"]);
    fails(&["transfer", "--from", "dev0", "--to", "dev1", "--amount", "1.5"]);

    let Command::Deploy(d) =
        ok(&["deploy", "--from", "dev0", "examples/contracts/token.wat", "--init", "e803000000000000"])
            .command
    else {
        panic!()
    };
    assert_eq!(d.file, PathBuf::from("examples/contracts/token.wat"));
    assert_eq!(d.init.0, vec![0xe8, 0x03, 0, 0, 0, 0, 0, 0]);
    assert!(!d.send.wait);
    assert_eq!(d.send.fuel, DEFAULT_FUEL_LIMIT);
    let Command::Deploy(d) = ok(&["deploy", "--from", "dev0", "c.wasm", "--wait"]).command else { panic!() };
    assert!(d.init.0.is_empty() && d.send.wait);
    fails(&["deploy", "--from", "dev0"]);
    fails(&["deploy", "--from", "dev0", "c.wat", "--init", "xyz"]);

    let Command::Call(c) =
        ok(&["call", "--from", "dev0", ADDR, "transfer", "--args", "0x0a00", "--wait"]).command
    else {
        panic!()
    };
    assert_eq!(c.contract.to_hex(), ADDR);
    assert_eq!((c.method.as_str(), c.args.0.as_slice(), c.send.wait), ("transfer", &[0x0a, 0][..], true));
    fails(&["call", "--from", "dev0", "not-an-address", "get"]);
    fails(&["call", "--from", "dev0", ADDR]);
}

#[test]
fn queries() {
    let Command::View(v) = ok(&["view", ADDR, "get"]).command else { panic!() };
    assert_eq!((v.method.as_str(), v.args.0.len()), ("get", 0));
    let Command::View(v) = ok(&["view", &format!("0x{ADDR}"), "balance_of", "--args", ADDR]).command else {
        panic!()
    };
    assert_eq!(v.args.0.len(), 32);
    fails(&["view", ADDR]);

    let Command::Tx(t) = ok(&["tx", ADDR, "--wait", "--timeout", "5"]).command else { panic!() };
    assert_eq!((t.hash.to_hex().as_str(), t.wait, t.timeout), (ADDR, true, 5));
    fails(&["tx", "abc"]);

    let Command::Block(b) = ok(&["block"]).command else { panic!() };
    assert_eq!(b.id, BlockId::Latest);
    let Command::Block(b) = ok(&["block", "42"]).command else { panic!() };
    assert_eq!(b.id, BlockId::Height(42));
    let Command::Block(b) = ok(&["block", "latest"]).command else { panic!() };
    assert_eq!(b.id, BlockId::Latest);
    fails(&["block", "newest"]);

    let Command::Watch(w) = ok(&["watch", "--from", "10"]).command else { panic!() };
    assert_eq!(w.from, Some(10));
    let Command::Watch(w) = ok(&["watch"]).command else { panic!() };
    assert_eq!(w.from, None);
}

#[test]
fn bench() {
    let Command::Bench(b) = ok(&[
        "bench",
        "--rate",
        "500",
        "--duration",
        "10",
        "--accounts",
        "4",
        "--opaque",
        "--tx-size",
        "256",
    ])
    .command
    else {
        panic!()
    };
    assert_eq!((b.rate, b.duration, b.accounts, b.opaque, b.tx_size), (500, 10, 4, true, 256));
    let Command::Bench(b) = ok(&["bench"]).command else { panic!() };
    assert!(!b.opaque);
    fails(&["bench", "--tx-size", "100"]);
}

#[test]
fn help_lists_exit_codes() {
    let err = parse(&["--help"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    assert!(err.to_string().contains("Exit codes:"));
    <Cli as clap::CommandFactory>::command().debug_assert();
}

#[test]
fn byzantine_assignments() {
    use bastion_testnet::byzantine::{ByzantineAssignment, ByzantineMode};
    let cli = ok(&["testnet", "up", "--byzantine", "0=equivocate", "--byzantine", "3=stale"]);
    let Command::Testnet(t) = cli.command else { panic!() };
    let TestnetCommand::Up(up) = t.command else { panic!() };
    assert_eq!(
        up.byzantine,
        [
            ByzantineAssignment { index: 0, mode: ByzantineMode::Equivocate },
            ByzantineAssignment { index: 3, mode: ByzantineMode::Stale },
        ]
    );
    let Command::Testnet(t) = ok(&["testnet", "up"]).command else { panic!() };
    let TestnetCommand::Up(up) = t.command else { panic!() };
    assert!(up.byzantine.is_empty());
    for bad in ["0=lie", "equivocate", "x=silent", "-1=silent"] {
        fails(&["testnet", "up", "--byzantine", bad]);
    }
    let error = parse(&["testnet", "up", "--byzantine", "1=lie"]).unwrap_err().to_string();
    assert!(error.contains("equivocate, double-vote, bad-signatures, silent, stale"), "{error}");
}
