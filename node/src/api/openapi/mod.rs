//! The API's OpenAPI 3.1 description, served at `GET /openapi.json`.
//!
//! Built with utoipa's document builders rather than derive macros: the handlers are generic
//! over [`NodeApi`](super::service::NodeApi) and the body types live in `bastion-client`,
//! which does not depend on utoipa.

mod paths;
mod schemas;

use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};

/// The whole document.
pub fn document() -> OpenApi {
    let info = InfoBuilder::new()
        .title("Bastion validator API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "HTTP API of one Bastion validator. Errors are JSON `{\"code\", \"message\"}`; 32-byte values \
             (hashes, addresses, keys) are 64 hex digits, `0x` optional.",
        ))
        .build();
    let tags = [
        ("node", "health, status and metrics"),
        ("transactions", "submitting transactions and following them"),
        ("state", "accounts, contract storage and read-only contract calls"),
        ("blocks", "committed blocks and the block stream"),
    ]
    .map(|(name, description)| TagBuilder::new().name(name).description(Some(description)).build());
    OpenApiBuilder::new()
        .info(info)
        .paths(paths::paths())
        .components(Some(schemas::components()))
        .tags(Some(tags))
        .build()
}
