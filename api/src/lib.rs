//! The lagwatch team API: a JSON REST API over the monitor store and the
//! ClickHouse history, with per-team tokens, served on the agent's HTTP
//! listener next to `/metrics`. The contract (paths, bodies, error shape)
//! is the OpenAPI document generated from the handlers and body types
//! ([`openapi`]), served at `/openapi.json` and checked in as
//! `api/openapi.json`.
//!
//! # Layout
//! - [`router`]: the routes (each at the path and methods of its handler's
//!   `#[utoipa::path]`), the shared [`ApiState`] and the fallbacks.
//! - [`auth`]: bearer tokens (generation, hashing, constant-time checks)
//!   and the [`auth::Caller`] extractor.
//! - [`error`]: [`ApiError`], the one JSON error shape of every 4xx/5xx.
//! - [`input`]: JSON bodies, query parameters and path ids, with the
//!   offending field named in every rejection.
//! - [`limits`]: request and failed-authentication rate limits (429).
//! - [`scope`]: team ownership and quota checks on monitors and silences.
//! - [`monitors`], [`status`], [`alerts`], [`silences`], [`audit`],
//!   [`tokens`]: the endpoint handlers.
//! - [`openapi`], [`web`]: the OpenAPI document and the team web page.
//!
//! The ClickHouse queries behind status and alerts live in
//! `lagwatch_history::reader`, next to the rows the writer stores.

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod error;
pub mod input;
pub mod limits;
pub mod monitors;
pub mod openapi;
pub mod router;
pub mod scope;
pub mod silences;
pub mod status;
pub mod tokens;
pub mod web;

pub use auth::{generate_token, sha256_hex, NewToken};
pub use error::ApiError;
pub use router::{router, ApiSettings, ApiState};
