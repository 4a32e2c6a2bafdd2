//! Shared fixtures for the ledger tests: keys, a funded chain over a `MemoryStore`, and the
//! example contracts.
#![allow(dead_code)]

use std::sync::Arc;

use bastion_crypto::KeyPair;
use bastion_ledger::{
    admit_signed, compile_wat, Account, Address, BlockOutcome, Executor, ExecutorConfig, Genesis,
    MemoryStore, Receipt, SignedTransaction, TransactionBuilder, VerifiedTransaction,
};

pub const CHAIN: &str = "bastion-test";
pub const FUNDS: u64 = 1_000_000_000_000;

pub const COUNTER_WAT: &str = include_str!("../../../examples/contracts/counter.wat");
pub const TOKEN_WAT: &str = include_str!("../../../examples/contracts/token.wat");

pub fn key(seed: u8) -> KeyPair {
    KeyPair::from_seed([seed; 32])
}

pub fn address(key: &KeyPair) -> Address {
    Address::from_public_key(&key.public())
}

pub fn builder(key: &KeyPair, nonce: u64) -> TransactionBuilder {
    TransactionBuilder::new(CHAIN, key.clone()).nonce(nonce)
}

pub fn verified(signed: SignedTransaction) -> VerifiedTransaction {
    admit_signed(signed, CHAIN).expect("test transactions are well formed")
}

pub fn genesis(funded: &[(Address, u64)]) -> Genesis {
    Genesis { chain_id: CHAIN.into(), accounts: funded.to_vec(), validators: vec![key(200).public()] }
}

pub fn wasm(wat: &str) -> Vec<u8> {
    compile_wat(wat).expect("test WAT compiles")
}

/// A chain over a fresh in-memory store.
pub struct Chain {
    pub exec: Executor<MemoryStore>,
}

impl Chain {
    pub fn new(funded: &[(Address, u64)]) -> Self {
        Self::with_config(funded, ExecutorConfig::default())
    }

    pub fn with_config(funded: &[(Address, u64)], config: ExecutorConfig) -> Self {
        let store = Arc::new(MemoryStore::new());
        let exec = Executor::genesis(store, &genesis(funded), config).expect("genesis");
        Chain { exec }
    }

    /// A chain where each of `keys` holds `FUNDS`.
    pub fn funded(keys: &[&KeyPair]) -> Self {
        let accounts: Vec<(Address, u64)> = keys.iter().map(|k| (address(k), FUNDS)).collect();
        Self::new(&accounts)
    }

    /// Applies the next block.
    pub fn block(&mut self, txs: Vec<SignedTransaction>) -> BlockOutcome {
        let txs: Vec<VerifiedTransaction> = txs.into_iter().map(verified).collect();
        let height = self.exec.height() + 1;
        self.exec.apply_block(height, &txs).expect("block applies")
    }

    /// Applies a block of one transaction and returns its receipt.
    pub fn run(&mut self, tx: SignedTransaction) -> Receipt {
        let mut outcome = self.block(vec![tx]);
        outcome.receipts.pop().expect("one receipt per transaction")
    }

    pub fn account(&self, address: &Address) -> Account {
        self.exec.query().account(address, self.exec.height()).expect("account")
    }

    pub fn view(&self, contract: &Address, method: &str, args: &[u8]) -> Vec<u8> {
        self.exec.query().view(contract, method, args, self.exec.height()).expect("view").return_data
    }
}
