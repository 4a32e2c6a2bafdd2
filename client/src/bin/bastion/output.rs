//! Printing: one JSON document on stdout with `--json`, readable text otherwise; progress
//! (spinners, bars) on stderr only when it is a terminal.

use std::time::Duration;

use bastion_client::api::{BlockResponse, EventView, ReceiptView};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// Prints `value` as one pretty JSON document.
    pub fn json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: cannot print JSON: {e}"),
        }
    }

    /// Prints a line of text, in text mode only.
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            println!("{}", text.as_ref());
        }
    }

    /// A spinner on stderr (hidden when stderr is not a terminal, and with --json).
    pub fn spinner(&self, message: impl Into<String>) -> ProgressBar {
        if self.json {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}

/// Hex with a readable decoding where one is likely: 8 bytes as a u64 (LE), printable
/// ASCII as text.
pub fn describe_bytes(hex_text: &str) -> String {
    let Ok(bytes) = hex::decode(hex_text) else { return hex_text.to_string() };
    if bytes.is_empty() {
        return "(empty)".into();
    }
    // Text first: an 8-byte topic like "transfer" is a word, not a number.
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return format!("0x{hex_text} ({:?})", String::from_utf8_lossy(&bytes));
    }
    if let Ok(array) = <[u8; 8]>::try_from(bytes.as_slice()) {
        return format!("0x{hex_text} (u64 LE: {})", u64::from_le_bytes(array));
    }
    format!("0x{hex_text}")
}

pub fn event_line(event: &EventView) -> String {
    format!(
        "event {} from {} data {}",
        describe_bytes(&event.topic_hex),
        event.contract,
        describe_bytes(&event.data_hex)
    )
}

/// The receipt, a few lines.
pub fn receipt_lines(receipt: &ReceiptView) -> Vec<String> {
    let status = serde_json::to_value(receipt.status).ok().and_then(|v| v.as_str().map(str::to_string));
    let mut lines = vec![format!(
        "{} at height {} (index {}), fuel used {}",
        status.unwrap_or_default(),
        receipt.height,
        receipt.index,
        receipt.fuel_used
    )];
    if let Some(reason) = &receipt.reason {
        lines.push(format!("reason: {reason}"));
    }
    if let Some(contract) = &receipt.contract {
        lines.push(format!("contract: {contract}"));
    }
    if !receipt.return_hex.is_empty() {
        lines.push(format!("return: {}", describe_bytes(&receipt.return_hex)));
    }
    lines.extend(receipt.events.iter().map(event_line));
    lines
}

/// A block as text: a header line, then its transactions and events, indented.
pub fn block_lines(block: &BlockResponse) -> Vec<String> {
    let mut lines = vec![format!(
        "block {}  hash {}  round {}  proposer {}  {} tx{}",
        block.height,
        block.hash,
        block.round,
        block.proposer,
        block.txs.len(),
        if block.txs.len() == 1 { "" } else { "s" }
    )];
    for tx in &block.txs {
        let status = serde_json::to_value(tx.status).ok().and_then(|v| v.as_str().map(str::to_string));
        lines.push(format!("  tx {} {}", tx.hash, status.unwrap_or_default()));
    }
    for event in &block.events {
        lines.push(format!("  {} (tx {})", event_line(&event.event), event.tx_hash));
    }
    lines
}

pub fn status_name<T: Serialize>(status: &T) -> String {
    serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// A table with a header row, in the CLI's one style.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_described() {
        assert_eq!(describe_bytes("0100000000000000"), "0x0100000000000000 (u64 LE: 1)");
        assert_eq!(
            describe_bytes(&hex::encode("transfer")),
            format!("0x{} (\"transfer\")", hex::encode("transfer"))
        );
        assert_eq!(describe_bytes(""), "(empty)");
        assert_eq!(describe_bytes("00ff"), "0x00ff");
    }
}
