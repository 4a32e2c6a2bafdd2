//! [`TransactionBuilder`]: how the SDK, the CLI and tests make signed transactions.
//!
//! The builder holds the fields every transaction needs (chain id, sender key, nonce,
//! expiry, fuel limit); each payload method signs one transaction with them. It does not
//! track nonces: set [`TransactionBuilder::nonce`] from the account's next nonce.

use bastion_crypto::KeyPair;

use crate::contract::compile_wat;
use crate::error::{CodecError, ContractError};
use crate::fuel::DEFAULT_FUEL_LIMIT;
use crate::transaction::{Payload, SignedTransaction, Transaction};
use crate::Address;

#[derive(Clone, Debug)]
pub struct TransactionBuilder {
    chain_id: String,
    key: KeyPair,
    nonce: u64,
    expiry_height: u64,
    fuel_limit: u64,
}

impl TransactionBuilder {
    /// Nonce 0, no expiry (`u64::MAX`), fuel limit `DEFAULT_FUEL_LIMIT`.
    pub fn new(chain_id: impl Into<String>, key: KeyPair) -> Self {
        TransactionBuilder {
            chain_id: chain_id.into(),
            key,
            nonce: 0,
            expiry_height: u64::MAX,
            fuel_limit: DEFAULT_FUEL_LIMIT,
        }
    }

    pub fn nonce(mut self, nonce: u64) -> Self {
        self.nonce = nonce;
        self
    }

    pub fn expiry_height(mut self, height: u64) -> Self {
        self.expiry_height = height;
        self
    }

    pub fn fuel_limit(mut self, fuel: u64) -> Self {
        self.fuel_limit = fuel;
        self
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        Address::from_public_key(&self.key.public())
    }

    /// Signs a transaction with `payload`.
    pub fn build(&self, payload: Payload) -> Result<SignedTransaction, CodecError> {
        Transaction {
            chain_id: self.chain_id.clone(),
            sender: self.key.public(),
            nonce: self.nonce,
            expiry_height: self.expiry_height,
            fuel_limit: self.fuel_limit,
            payload,
        }
        .sign(&self.key)
    }

    pub fn transfer(&self, to: Address, amount: u64) -> Result<SignedTransaction, CodecError> {
        self.build(Payload::Transfer { to, amount })
    }

    /// Deploys a binary module; the contract's address is [`TransactionBuilder::contract_address`].
    pub fn deploy(&self, code: Vec<u8>, init: Vec<u8>) -> Result<SignedTransaction, CodecError> {
        self.build(Payload::Deploy { code, init })
    }

    /// Compiles WAT (or passes binary through) and deploys it.
    pub fn deploy_wat(&self, source: &str, init: Vec<u8>) -> Result<SignedTransaction, ContractError> {
        let code = compile_wat(source)?;
        self.deploy(code, init).map_err(|e| ContractError::Invalid(e.to_string()))
    }

    pub fn call(
        &self,
        contract: Address,
        method: impl Into<String>,
        args: Vec<u8>,
    ) -> Result<SignedTransaction, CodecError> {
        self.build(Payload::Call { contract, method: method.into(), args })
    }

    /// The address a deploy signed by this builder (at its current nonce) creates.
    pub fn contract_address(&self) -> Address {
        Address::contract(&self.key.public(), self.nonce)
    }
}
