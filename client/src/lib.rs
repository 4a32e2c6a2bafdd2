//! Rust SDK for Bastion (HTTP client, transaction builder, proof verification) and the `bastion` CLI.
