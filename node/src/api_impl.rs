//! The validator's answers to the HTTP API ([`NodeApi`] for [`NodeState`]).
//!
//! Admission runs here: stateless checks (size, encoding, chain id, signature) and then
//! stateful ones against the latest executed state (nonce not below the account's next,
//! not expired, can pay the maximum fee). Proof answers are given at the latest *certified*
//! height, with the certificate, so clients need not trust this node.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bastion_client::api::{
    AccountResponse, BlockResponse, CertifiedProof, StatusResponse, StorageResponse, TxResponse, TxStage,
    TxStatus, ValidatorView, ViewResponse,
};
use bastion_client::certificate::StateCertificate;
use bastion_crypto::{sha256, Digest};
use bastion_ledger::{
    admit, admit_batch, check_stateful, Account, Address, AdmissionError, LedgerError, SignedTransaction,
    StateQuery, VerifiedTransaction,
};
use bytes::Bytes;
use tokio::sync::broadcast;

use crate::api::service::{ApiError, NodeApi};
use crate::mempool::{MempoolError, PoolTx, TxLocation};
use crate::state::NodeState;
use crate::storage::RocksStateStore;
use crate::views::{block_response, event_view, final_tx};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn ledger_error(e: LedgerError) -> ApiError {
    match e {
        LedgerError::NoContract(c) => ApiError::NotFound(format!("no contract at {c}")),
        LedgerError::UnknownHeight(h) => ApiError::NotReady(format!("state at height {h} is not available")),
        LedgerError::ViewFailed(reason) => ApiError::BadRequest(format!("view failed: {reason}")),
        other => internal(other),
    }
}

fn admission_error(e: AdmissionError) -> ApiError {
    match e {
        AdmissionError::Encoding(m) => ApiError::BadEncoding(m),
        AdmissionError::TooLarge { size, max } | AdmissionError::CodeTooLarge { size, max } => {
            ApiError::TooLarge { size, limit: max }
        }
        AdmissionError::WrongChain { expected, actual } => ApiError::WrongChain { got: actual, expected },
        AdmissionError::BadSignature => ApiError::BadSignature,
        AdmissionError::NonceTooLow { expected, actual } => {
            ApiError::NonceTooLow { nonce: actual, next: expected }
        }
        AdmissionError::Expired { expiry_height, height } => {
            ApiError::Expired { expiry_height, next_height: height }
        }
        AdmissionError::InsufficientFunds { balance, max_fee } => {
            ApiError::InsufficientFunds { balance, needed: max_fee }
        }
        other => ApiError::BadRequest(other.to_string()),
    }
}

impl NodeState {
    fn state_query(&self) -> Result<&StateQuery<RocksStateStore>, ApiError> {
        self.query
            .as_ref()
            .ok_or_else(|| ApiError::NotReady("consensus-only mode keeps no ledger state".into()))
    }

    /// The height a state query is answered at: the latest certified one (with its
    /// certificate) when a proof is asked for, else the latest executed one.
    fn answer_height(&self, proof: bool) -> Result<(u64, Option<StateCertificate>), ApiError> {
        if !proof {
            return Ok((self.executed(), None));
        }
        let certificate = self
            .latest_certificate()
            .ok_or_else(|| ApiError::NotReady("no state root is certified yet".into()))?;
        Ok((certificate.height, Some(certificate)))
    }

    /// Refuses, before any signature check, what the mempool would refuse anyway (see
    /// `Mempool::check_room_for`), unless this node already holds the transaction: a
    /// resubmission keeps its hash. One that does not decode is refused only by a full pool
    /// (else admission reports why it does not decode).
    fn screen(&self, tx: &[u8]) -> Result<(), ApiError> {
        let key = sender_and_nonce(tx);
        let room = match &key {
            Some((sender, nonce)) => self.mempool.check_room_for(sender, *nonce),
            None => self.mempool.check_room(),
        };
        self.room_verdict(tx, key.as_ref(), room)
    }

    /// A refusal by the mempool's screen stands unless this node already holds `tx`.
    fn room_verdict(
        &self,
        tx: &[u8],
        key: Option<&(Address, u64)>,
        room: Result<(), MempoolError>,
    ) -> Result<(), ApiError> {
        match room {
            Ok(()) => Ok(()),
            Err(_) if self.holds_refused(tx, key)? => Ok(()),
            Err(full) => Err(ApiError::MempoolFull(full.to_string())),
        }
    }

    /// Whether this node holds a transaction its full pool refuses: queued or batched
    /// here, or given a receipt. Under overload most requests end here, so the transaction
    /// index (a disk read that grows with the chain: the largest single cost of refusals in
    /// the profile) is read only for a transaction that can have executed, one below its
    /// sender's executed nonce or whose sender the pool does not remember; the others can
    /// only have been rejected (see `Storage::recorded`). One that does not decode was
    /// never executed.
    fn holds_refused(&self, tx: &[u8], key: Option<&(Address, u64)>) -> Result<bool, ApiError> {
        let hash = sha256(tx);
        if self.mempool.location(&hash).is_some() {
            return Ok(true);
        }
        let Some((sender, nonce)) = key else { return Ok(false) };
        let below_next = self.mempool.executed_nonce(sender).is_none_or(|next| *nonce < next);
        self.storage.recorded(&hash, below_next).map_err(internal)
    }

    /// `screen` of a request's transactions in order, each as if the ones before were
    /// admitted (see `Mempool::check_room_for_all`): a request resending a sender's nonce
    /// gap passes whole, as the same transactions submitted one by one would.
    fn screen_all(&self, txs: Vec<Result<Bytes, ApiError>>) -> Vec<Result<Bytes, ApiError>> {
        let keys: Vec<Option<(Address, u64)>> =
            txs.iter().map(|tx| tx.as_ref().ok().and_then(|tx| sender_and_nonce(tx))).collect();
        let rooms = self.mempool.check_room_for_all(&keys);
        txs.into_iter()
            .zip(rooms)
            .zip(&keys)
            .map(|((tx, room), key)| {
                let tx = tx?;
                self.room_verdict(&tx, key.as_ref(), room).map(|()| tx)
            })
            .collect()
    }

    fn check_size(&self, tx: &[u8]) -> Result<(), ApiError> {
        let limit = self.max_tx_bytes();
        if tx.len() > limit {
            return Err(ApiError::TooLarge { size: tx.len(), limit });
        }
        Ok(())
    }

    fn refused(&self, e: AdmissionError) -> ApiError {
        self.metrics.txs_refused.inc();
        admission_error(e)
    }

    /// The stateful checks and the mempool, for a transaction whose signature verified.
    /// A transaction already known (queued, batched, or with a receipt) keeps its hash.
    /// `accounts` caches sender accounts as of one executed height (a batch submission
    /// reads each once).
    fn enqueue(
        &self,
        tx: Bytes,
        verified: VerifiedTransaction,
        accounts: &mut HashMap<Address, Account>,
    ) -> Result<Digest, ApiError> {
        let hash = verified.hash();
        if self.mempool.location(&hash).is_some() {
            return Ok(hash);
        }
        let executed = self.executed();
        let sender = verified.tx().sender_address();
        let account = match accounts.entry(sender) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                slot.insert(self.state_query()?.account(&sender, executed).map_err(ledger_error)?)
            }
        };
        // Only a nonce below the sender's next can have executed; any other can at most have
        // been rejected, which the rejections alone answer (no read of the index). The pool
        // may know of a block executed since the account was read.
        let next = account.nonce.max(self.mempool.executed_nonce(&sender).unwrap_or(0));
        let below_next = verified.tx().nonce < next;
        if self.storage.recorded(&hash, below_next).map_err(internal)? {
            return Ok(hash);
        }
        check_stateful(verified.tx(), account, executed + 1).map_err(|e| self.refused(e))?;
        let pool_tx =
            PoolTx { hash, bytes: tx, sender, nonce: verified.tx().nonce, verified: Some(verified) };
        match self.mempool.insert(pool_tx, account.nonce) {
            Ok(_) => {
                self.metrics.txs_admitted.inc();
                Ok(hash)
            }
            // Every refusal of the pool is "not now": 429, try again later.
            Err(e) => Err(ApiError::MempoolFull(e.to_string())),
        }
    }

    fn submit_opaque(&self, tx: Bytes) -> Result<Digest, ApiError> {
        let hash = sha256(&tx);
        // Opaque payloads have no sender: give each its own so per-sender limits never bind.
        let pool_tx = PoolTx { hash, bytes: tx, sender: Address(hash.0), nonce: 0, verified: None };
        self.mempool.insert(pool_tx, 0).map_err(|e| ApiError::MempoolFull(e.to_string()))?;
        Ok(hash)
    }
}

/// The sender and nonce of a transaction's bytes, if they decode.
fn sender_and_nonce(tx: &[u8]) -> Option<(Address, u64)> {
    let signed = SignedTransaction::from_bytes(tx).ok()?;
    Some((signed.tx.sender_address(), signed.tx.nonce))
}

impl NodeApi for NodeState {
    fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn max_tx_bytes(&self) -> usize {
        self.config.mempool.max_tx_bytes
    }

    fn status(&self) -> StatusResponse {
        StatusResponse {
            chain_id: self.chain_id.clone(),
            validator_index: self.me,
            ready: self.readiness().is_ok(),
            consensus_only: self.consensus_only(),
            round: self.round.load(Ordering::Relaxed),
            committed_height: self.committed_height.load(Ordering::Relaxed),
            executed_height: self.executed(),
            certified_height: self.certified_height.load(Ordering::Relaxed),
            state_root: self.state_root.read().ok().and_then(|r| *r),
            mempool_size: self.mempool.queued(),
            peers_connected: self.connected_peers(),
            validators: self
                .genesis
                .validators
                .iter()
                .enumerate()
                .map(|(i, v)| ValidatorView {
                    index: i as u16,
                    public_key: v.public_key,
                    quic_addr: v.quic_addr.to_string(),
                    api_url: v.api_url.clone(),
                })
                .collect(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            halted: self.halt_reason(),
        }
    }

    fn submit(&self, tx: Bytes) -> Result<Digest, ApiError> {
        if let Err(reason) = self.readiness() {
            return Err(ApiError::NotReady(reason));
        }
        self.check_size(&tx)?;
        if self.consensus_only() {
            return self.submit_opaque(tx);
        }
        self.screen(&tx)?;
        let verified = admit(&tx, &self.chain_id).map_err(|e| self.refused(e))?;
        self.enqueue(tx, verified, &mut HashMap::new())
    }

    fn submit_many(&self, txs: Vec<Bytes>) -> Vec<Result<Digest, ApiError>> {
        if let Err(reason) = self.readiness() {
            return txs.iter().map(|_| Err(ApiError::NotReady(reason.clone()))).collect();
        }
        let sized: Vec<Result<Bytes, ApiError>> =
            txs.into_iter().map(|tx| self.check_size(&tx).map(|()| tx)).collect();
        if self.consensus_only() {
            return sized.into_iter().map(|tx| tx.and_then(|tx| self.submit_opaque(tx))).collect();
        }
        let sized = self.screen_all(sized);
        // Signatures of every well-sized transaction are checked as one batch.
        let candidates: Vec<&Bytes> = sized.iter().filter_map(|tx| tx.as_ref().ok()).collect();
        let mut verdicts = admit_batch(&candidates, &self.chain_id, Some(&self.key_cache)).into_iter();
        let mut accounts = HashMap::new();
        sized
            .into_iter()
            .map(|tx| {
                let tx = tx?;
                match verdicts.next() {
                    Some(Ok(verified)) => self.enqueue(tx, verified, &mut accounts),
                    Some(Err(e)) => Err(self.refused(e)),
                    None => Err(internal("batch admission returned fewer verdicts than transactions")),
                }
            })
            .collect()
    }

    fn transaction(&self, hash: &Digest) -> Result<Option<TxResponse>, ApiError> {
        if let Some(receipt) = self.storage.receipt(hash).map_err(internal)? {
            return Ok(Some(final_tx(&receipt)));
        }
        let stage = match self.mempool.location(hash) {
            Some(TxLocation::Queued) => TxStage::Received,
            Some(TxLocation::InBatch(_)) => TxStage::InBatch,
            None => {
                if self.consensus_only() && self.storage.tx_height(hash).map_err(internal)?.is_some() {
                    TxStage::Committed
                } else {
                    return Ok(None);
                }
            }
        };
        let status = if stage == TxStage::Committed { TxStatus::CommittedOk } else { TxStatus::Pending };
        Ok(Some(TxResponse { hash: *hash, status, stage, receipt: None, reason: None }))
    }

    async fn wait_for_final(&self, hash: Digest, timeout: Duration) -> Result<TxResponse, ApiError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut executed = self.executed_height.subscribe();
        loop {
            let current = self.transaction(&hash)?;
            match &current {
                Some(tx) if tx.status.is_final() => return Ok(tx.clone()),
                _ => {}
            }
            tokio::select! {
                changed = executed.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        self.transaction(&hash)?.ok_or_else(|| ApiError::NotFound(format!("transaction {hash}")))
    }

    fn account(&self, address: &Address, proof: bool) -> Result<AccountResponse, ApiError> {
        let query = self.state_query()?;
        let (height, certificate) = self.answer_height(proof)?;
        let account = query.account(address, height).map_err(ledger_error)?;
        let pending_nonce = self.mempool.pending_next_nonce(address).unwrap_or(0).max(account.nonce);
        let proof = match certificate {
            Some(certificate) => {
                let proof = query.account_proof(address, height).map_err(ledger_error)?;
                Some(CertifiedProof { proof, certificate })
            }
            None => None,
        };
        Ok(AccountResponse {
            address: *address,
            balance: account.balance,
            nonce: account.nonce,
            pending_nonce,
            is_contract: account.is_contract(),
            height,
            proof,
        })
    }

    fn storage(&self, contract: &Address, key: &[u8], proof: bool) -> Result<StorageResponse, ApiError> {
        let query = self.state_query()?;
        let (height, certificate) = self.answer_height(proof)?;
        if query.code(contract, height).map_err(ledger_error)?.is_none() {
            return Err(ApiError::UnknownContract(*contract));
        }
        let value = query.storage(contract, key, height).map_err(ledger_error)?;
        let proof = match certificate {
            Some(certificate) => {
                let proof = query.storage_proof(contract, key, height).map_err(ledger_error)?;
                Some(CertifiedProof { proof, certificate })
            }
            None => None,
        };
        Ok(StorageResponse {
            contract: *contract,
            key_hex: hex::encode(key),
            value_hex: value.map(hex::encode),
            height,
            proof,
        })
    }

    fn view(
        &self,
        contract: &Address,
        method: &str,
        args: &[u8],
        proof: bool,
    ) -> Result<ViewResponse, ApiError> {
        let query = self.state_query()?;
        let (height, certificate) = self.answer_height(proof)?;
        if query.code(contract, height).map_err(ledger_error)?.is_none() {
            return Err(ApiError::UnknownContract(*contract));
        }
        let (outcome, proof) = match certificate {
            Some(certificate) => {
                let (outcome, witness) =
                    query.view_with_witness(contract, method, args, height).map_err(ledger_error)?;
                (outcome, Some(CertifiedProof { proof: witness, certificate }))
            }
            None => (query.view(contract, method, args, height).map_err(ledger_error)?, None),
        };
        Ok(ViewResponse {
            return_hex: hex::encode(&outcome.return_data),
            height: outcome.height,
            fuel_used: outcome.fuel_used,
            events: outcome.events.iter().map(event_view).collect(),
            proof,
        })
    }

    fn block(&self, height: Option<u64>) -> Result<Option<BlockResponse>, ApiError> {
        let height = height.unwrap_or_else(|| self.executed());
        if height == 0 || height > self.executed() {
            return Ok(None);
        }
        let Some(block) = self.storage.committed_block(height).map_err(internal)? else { return Ok(None) };
        let Some(record) = self.storage.execution(height).map_err(internal)? else { return Ok(None) };
        let mut receipts = Vec::new();
        if !self.consensus_only() {
            for hash in &record.tx_hashes {
                if let Some(receipt) = self.storage.receipt(hash).map_err(internal)? {
                    receipts.push(receipt);
                }
            }
        }
        let root = (!self.consensus_only()).then_some(record.state_root);
        Ok(Some(block_response(&block, root, &record.tx_hashes, &receipts)))
    }

    fn blocks_from(&self, from: u64, limit: usize) -> Result<Vec<BlockResponse>, ApiError> {
        let mut out = Vec::new();
        let mut height = from.max(1);
        while out.len() < limit {
            match self.block(Some(height))? {
                Some(block) => out.push(block),
                None => break,
            }
            height += 1;
        }
        Ok(out)
    }

    fn subscribe_blocks(&self) -> broadcast::Receiver<BlockResponse> {
        self.blocks.subscribe()
    }

    fn metrics(&self) -> String {
        // Gauges of other components' state are read when scraped, so they are never stale.
        self.metrics.mempool_size.set(self.mempool.queued() as i64);
        self.metrics.peers_connected.set(self.connected_peers() as i64);
        self.metrics.transport_dropped.set(self.transport.stats().dropped_full as i64);
        self.metrics.render()
    }
}
