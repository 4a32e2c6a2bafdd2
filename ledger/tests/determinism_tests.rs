//! Determinism: the same blocks on two fresh states give identical roots and receipts, and
//! native tokens are conserved (balances + burned fees = genesis supply).

mod common;

use bastion_crypto::KeyPair;
use bastion_ledger::fuel::FUEL_PRICE;
use bastion_ledger::{Address, BlockOutcome, SignedTransaction};
use common::*;
use proptest::prelude::*;

const USERS: usize = 4;
const BALANCES: [u64; USERS] = [1_000_000_000, 1_000_000_000, 500_000, 0];

#[derive(Clone, Debug)]
enum Op {
    Transfer { from: usize, to: usize, amount: u64 },
    DeployCounter { from: usize },
    DeployToken { from: usize, supply: u64 },
    Increment { from: usize, contract: usize },
    TokenTransfer { from: usize, to: usize, contract: usize, amount: u64 },
    FundContract { from: usize, contract: usize, amount: u64 },
    Spin { from: usize, fuel: u64 },
    StaleNonce { from: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        4 => (user.clone(), 0..USERS + 1, 0u64..80_000).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        1 => user.clone().prop_map(|from| Op::DeployCounter { from }),
        1 => (user.clone(), 0u64..1_000).prop_map(|(from, supply)| Op::DeployToken { from, supply }),
        3 => (user.clone(), 0usize..8).prop_map(|(from, contract)| Op::Increment { from, contract }),
        3 => (user.clone(), 0..USERS, 0usize..8, 0u64..600)
            .prop_map(|(from, to, contract, amount)| Op::TokenTransfer { from, to, contract, amount }),
        1 => (user.clone(), 0usize..8, 0u64..5_000).prop_map(|(from, contract, amount)| Op::FundContract { from, contract, amount }),
        1 => (user.clone(), 30_000u64..120_000).prop_map(|(from, fuel)| Op::Spin { from, fuel }),
        1 => user.prop_map(|from| Op::StaleNonce { from }),
    ]
}

/// A deploy whose `init` never returns: always out of fuel.
const SPIN_WAT: &str = r#"(module (memory (export "memory") 1) (func (export "init") (loop $l (br $l))))"#;

/// Turns ops into signed transactions the way a client would: nonces are read from the
/// chain before each block and counted up within it (so a rejection inside a block makes
/// the sender's later transactions in that block "bad nonce", a case worth covering too).
struct Script {
    keys: Vec<KeyPair>,
    nonces: Vec<u64>,
    contracts: Vec<Address>,
}

impl Script {
    fn new() -> Self {
        Script {
            keys: (0..USERS).map(|i| key(i as u8 + 1)).collect(),
            nonces: vec![0; USERS],
            contracts: vec![],
        }
    }

    fn sync(&mut self, chain: &Chain) {
        for (i, nonce) in self.nonces.iter_mut().enumerate() {
            *nonce = chain.account(&address(&self.keys[i])).nonce;
        }
    }

    fn user(&self, i: usize) -> Address {
        self.keys.get(i).map(address).unwrap_or(Address([0xee; 32]))
    }

    fn contract(&self, i: usize) -> Address {
        if self.contracts.is_empty() {
            Address([0xcc; 32])
        } else {
            self.contracts[i % self.contracts.len()]
        }
    }

    fn next(&mut self, from: usize) -> bastion_ledger::TransactionBuilder {
        let b = builder(&self.keys[from], self.nonces[from]).fuel_limit(200_000);
        self.nonces[from] += 1;
        b
    }

    fn tx(&mut self, op: &Op) -> SignedTransaction {
        match *op {
            Op::Transfer { from, to, amount } => {
                let to = self.user(to);
                self.next(from).fuel_limit(1_000).transfer(to, amount).unwrap()
            }
            Op::DeployCounter { from } => {
                let b = self.next(from);
                self.contracts.push(b.contract_address());
                b.deploy(wasm(COUNTER_WAT), vec![]).unwrap()
            }
            Op::DeployToken { from, supply } => {
                let b = self.next(from);
                self.contracts.push(b.contract_address());
                b.deploy(wasm(TOKEN_WAT), supply.to_le_bytes().to_vec()).unwrap()
            }
            Op::Increment { from, contract } => {
                let contract = self.contract(contract);
                self.next(from).call(contract, "increment", vec![]).unwrap()
            }
            Op::TokenTransfer { from, to, contract, amount } => {
                let (contract, to) = (self.contract(contract), self.user(to));
                let mut args = to.0.to_vec();
                args.extend_from_slice(&amount.to_le_bytes());
                self.next(from).call(contract, "transfer", args).unwrap()
            }
            Op::FundContract { from, contract, amount } => {
                let contract = self.contract(contract);
                self.next(from).transfer(contract, amount).unwrap()
            }
            Op::Spin { from, fuel } => {
                let b = self.next(from).fuel_limit(fuel);
                b.deploy(wasm(SPIN_WAT), vec![]).unwrap()
            }
            Op::StaleNonce { from } => {
                let b = builder(&self.keys[from], self.nonces[from].saturating_sub(1));
                b.transfer(self.user(0), 1).unwrap()
            }
        }
    }
}

fn fresh_chain() -> Chain {
    let script = Script::new();
    let accounts: Vec<(Address, u64)> = (0..USERS).map(|i| (script.user(i), BALANCES[i])).collect();
    Chain::new(&accounts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn same_blocks_same_roots_and_receipts(blocks in prop::collection::vec(prop::collection::vec(op(), 0..8), 1..5)) {
        let mut script = Script::new();
        let (mut first, mut second) = (fresh_chain(), fresh_chain());
        prop_assert_eq!(first.exec.state_root(), second.exec.state_root());
        let mut burned = 0u64;
        for ops in &blocks {
            script.sync(&first);
            let txs: Vec<SignedTransaction> = ops.iter().map(|op| script.tx(op)).collect();
            let a: BlockOutcome = first.block(txs.clone());
            let b: BlockOutcome = second.block(txs.clone());
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.receipts.len(), txs.len());
            burned += a.receipts.iter().map(|r| r.fuel_used * FUEL_PRICE).sum::<u64>();
        }

        // Conservation: every token is in some account or was burned as a fee.
        let mut holders: Vec<Address> = (0..=USERS).map(|i| script.user(i)).collect();
        holders.extend(script.contracts.iter().copied());
        holders.push(Address([0xcc; 32]));
        holders.sort();
        holders.dedup();
        let held: u64 = holders.iter().map(|a| first.account(a).balance).sum();
        prop_assert_eq!(held + burned, BALANCES.iter().sum::<u64>());
    }
}
