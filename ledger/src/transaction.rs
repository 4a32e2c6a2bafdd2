//! Transactions: what a client signs, and the verified form the ledger executes.
//!
//! * [`Transaction`] is the signed content. Its signature is made by `sender` under the
//!   domain [`TX_DOMAIN`] (`"bastion/tx/v1"`) over the canonical encoding (`codec`) of the
//!   `Transaction`.
//! * [`SignedTransaction`] is a transaction and its signature; its encoding is what clients
//!   submit, and its hash ([`SignedTransaction::hash`]) is `SHA-256` of that encoding.
//! * [`VerifiedTransaction`] can only be obtained by passing the stateless admission checks
//!   (see `admission`): size, chain id, limits and signature. It carries the hash and the
//!   encoded size, computed once. The executor accepts nothing else, so no unsigned
//!   transaction can reach the state machine.

use bastion_crypto::{sha256, Digest, Domain, KeyPair, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::codec::{self, hex_bytes};
use crate::error::CodecError;
use crate::Address;

/// The signing domain of transactions.
pub const TX_DOMAIN: Domain = Domain("bastion/tx/v1");

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Moves `amount` native tokens from the sender to `to`.
    Transfer { to: Address, amount: u64 },
    /// Creates a contract from a binary WebAssembly module and runs its `init` export (if
    /// any) with `init` as input.
    Deploy {
        #[serde(with = "hex_bytes")]
        code: Vec<u8>,
        #[serde(with = "hex_bytes")]
        init: Vec<u8>,
    },
    /// Runs the exported function `method` of `contract` with `args` as input.
    Call {
        contract: Address,
        method: String,
        #[serde(with = "hex_bytes")]
        args: Vec<u8>,
    },
}

/// The signed content of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub chain_id: String,
    pub sender: PublicKey,
    /// Must equal the sender's next nonce when the transaction executes.
    pub nonce: u64,
    /// The last height at which the transaction may execute.
    pub expiry_height: u64,
    /// The most fuel the sender pays for; execution stops when it is spent.
    pub fuel_limit: u64,
    pub payload: Payload,
}

impl Transaction {
    /// The sender's account address.
    pub fn sender_address(&self) -> Address {
        Address::from_public_key(&self.sender)
    }

    /// The bytes the sender signs (before the domain prefix).
    pub fn signing_bytes(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    /// Signs the transaction with `key`, which must be the sender's.
    pub fn sign(self, key: &KeyPair) -> Result<SignedTransaction, CodecError> {
        let signature = key.sign(TX_DOMAIN, &self.signing_bytes()?);
        Ok(SignedTransaction { tx: self, signature })
    }
}

/// A transaction with its sender's signature: the unit clients submit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl SignedTransaction {
    /// The canonical encoding: the bytes that are submitted, stored and hashed.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    /// Decodes a signed transaction; checks nothing beyond the encoding (see `admission`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > codec::MAX_TX_BYTES {
            return Err(CodecError::TooLarge { size: bytes.len(), max: codec::MAX_TX_BYTES });
        }
        codec::decode(bytes)
    }

    /// `SHA-256` of the canonical encoding. Prefer [`VerifiedTransaction::hash`], which is
    /// computed once.
    pub fn hash(&self) -> Result<Digest, CodecError> {
        Ok(sha256(&self.to_bytes()?))
    }
}

/// A transaction that passed the stateless admission checks, with its hash and size.
///
/// Constructed only by `admission` (single or batch verification); serialize the inner
/// [`SignedTransaction`] to store or send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTransaction {
    signed: SignedTransaction,
    hash: Digest,
    encoded_len: usize,
}

impl VerifiedTransaction {
    /// Only for `admission`, after every check has passed on exactly these bytes.
    pub(crate) fn new(signed: SignedTransaction, hash: Digest, encoded_len: usize) -> Self {
        VerifiedTransaction { signed, hash, encoded_len }
    }

    pub fn tx(&self) -> &Transaction {
        &self.signed.tx
    }

    pub fn signed(&self) -> &SignedTransaction {
        &self.signed
    }

    pub fn into_signed(self) -> SignedTransaction {
        self.signed
    }

    /// `SHA-256` of the canonical encoding of the signed transaction.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// Size of the canonical encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    pub fn sender(&self) -> Address {
        self.signed.tx.sender_address()
    }
}
