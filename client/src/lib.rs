//! Bastion's Rust SDK and the `bastion` CLI.
//!
//! Always available (the node uses these with `default-features = false`):
//! * [`api`]: the JSON shapes of the validator HTTP API (DESIGN §4), shared with the node so
//!   server and client can never disagree on a field.
//! * [`certificate`]: state-root certificates (`2f+1` validator signatures over a height's
//!   state root) and their verification against the committee's keys alone.
//! * [`verify`]: checking proof-carrying account, storage and view answers against the
//!   committee ([`verify_account`], [`verify_storage`], [`verify_view`]).
//!
//! With the `http` feature (default):
//! * [`Client`]: an async typed client for every endpoint, with [`ClientError`] carrying
//!   the server's error code and HTTP status; [`events::BlockStream`] for the resumable
//!   event stream ([`sse`] is its parser).
//! * [`keyring`]: named keys in `$BASTION_HOME/keys`, and the built-in dev keys.
//! * [`discovery`]: which node to talk to (`--node`, `$BASTION_NODE`, the local testnet).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bastion_client::{keyring::Keyring, Client};
//! let client = Client::new("http://127.0.0.1:8080")?;
//! let sender = Keyring::from_env()?.get("dev0")?;
//! let to = Keyring::from_env()?.resolve_address("dev1")?;
//! let tx = client.transaction_builder(&sender.key, 10_000_000).await?.transfer(to, 5)?;
//! let accepted = client.submit(&tx).await?;
//! let outcome = client.wait_for_final(&accepted.hash, std::time::Duration::from_secs(30)).await?;
//! println!("{:?}", outcome.status);
//! # Ok(()) }
//! ```

pub mod api;
pub mod certificate;
pub mod verify;

#[cfg(feature = "http")]
mod client;
#[cfg(feature = "http")]
pub mod discovery;
#[cfg(feature = "http")]
mod error;
#[cfg(feature = "http")]
pub mod events;
#[cfg(feature = "http")]
pub mod keyring;
#[cfg(feature = "http")]
pub mod sse;

#[cfg(feature = "http")]
pub use client::{BlockId, Client, DEFAULT_EXPIRY_BLOCKS, DEFAULT_TIMEOUT, WAIT_REQUEST_TIMEOUT};
#[cfg(feature = "http")]
pub use error::ClientError;
pub use verify::{
    verify_account, verify_storage, verify_view, VerifiedAccount, VerifiedStorage, VerifiedView, VerifyError,
};
