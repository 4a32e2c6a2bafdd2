//! Turning ledger and consensus records into the API's JSON shapes.

use bastion_client::api::{
    BlockEvent, BlockResponse, BlockTx, EventView, ReceiptView, TxResponse, TxStage, TxStatus,
};
use bastion_consensus::Block;
use bastion_crypto::Digest;
use bastion_ledger::{Event, Receipt, ReceiptStatus};

pub fn event_view(event: &Event) -> EventView {
    EventView {
        contract: event.contract,
        topic_hex: hex::encode(&event.topic),
        data_hex: hex::encode(&event.data),
    }
}

pub fn tx_status(receipt: &Receipt) -> TxStatus {
    match &receipt.status {
        ReceiptStatus::Ok => TxStatus::CommittedOk,
        ReceiptStatus::Failed { .. } => TxStatus::CommittedFailed,
        ReceiptStatus::Rejected { reason } if reason.contains("expired") => TxStatus::Expired,
        ReceiptStatus::Rejected { .. } => TxStatus::Rejected,
    }
}

pub fn receipt_view(receipt: &Receipt) -> ReceiptView {
    ReceiptView {
        status: tx_status(receipt),
        reason: receipt.status.reason().map(str::to_string),
        height: receipt.height,
        index: receipt.index,
        fuel_used: receipt.fuel_used,
        events: receipt.events.iter().map(event_view).collect(),
        return_hex: hex::encode(&receipt.return_data),
        contract: receipt.contract,
    }
}

/// The API's view of a final transaction.
pub fn final_tx(receipt: &Receipt) -> TxResponse {
    let status = tx_status(receipt);
    let stage = match status {
        TxStatus::CommittedOk => TxStage::Committed,
        TxStatus::CommittedFailed => TxStage::Failed,
        TxStatus::Expired => TxStage::Expired,
        _ => TxStage::Rejected,
    };
    let reason = receipt.status.reason().map(str::to_string);
    match status {
        TxStatus::CommittedOk | TxStatus::CommittedFailed => {
            TxResponse { hash: receipt.tx_hash, status, stage, receipt: Some(receipt_view(receipt)), reason }
        }
        _ => TxResponse { hash: receipt.tx_hash, status, stage, receipt: None, reason },
    }
}

/// A committed block with what executing it produced. `receipts` is empty in consensus-only
/// mode, where every transaction counts as committed.
pub fn block_response(
    block: &Block,
    state_root: Option<Digest>,
    tx_hashes: &[Digest],
    receipts: &[Receipt],
) -> BlockResponse {
    let txs = if receipts.is_empty() {
        tx_hashes.iter().map(|h| BlockTx { hash: *h, status: TxStatus::CommittedOk }).collect()
    } else {
        receipts.iter().map(|r| BlockTx { hash: r.tx_hash, status: tx_status(r) }).collect()
    };
    let events = receipts
        .iter()
        .flat_map(|r| r.events.iter().map(move |e| BlockEvent { tx_hash: r.tx_hash, event: event_view(e) }))
        .collect();
    BlockResponse {
        height: block.height,
        hash: block.digest,
        round: block.round,
        proposer: block.author,
        parent: block.parent().digest,
        state_root,
        batches: block.payload.clone(),
        txs,
        events,
    }
}
