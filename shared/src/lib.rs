//! # latch-shared
//!
//! The session protocol of Latch, written once and used by the edge (Rust → WASM on Cloudflare
//! Workers), the origin (axum + Postgres) and Rust app backends.
//!
//! - [`access`]: access tokens (EdDSA JWTs) — signing and I/O-free verification.
//! - [`keys`]: Ed25519 keys, JWKs and the key set a verifier trusts.
//! - [`refresh`]: session handles, refresh tokens, their storage hashes and rotation.
//! - [`csrf`]: anti-CSRF tokens and their constant-time check.
//! - [`engine`]: the request engine — the one set of rules that admits or refuses a request.
//! - [`claims`]: claim rules, what a route requires of the access token's payload.
//! - [`settings`]: the settings the origin publishes for the edge (cookies, statuses, rules).
//! - [`protocol`]: cookies and headers of the browser protocol (supertokens-website 4.x and the
//!   current SDKs).
//! - [`sdk`]: which SDK generation a request speaks, and what differs: the front token, header
//!   mode, statuses and error bodies.
//! - [`error`]: the four session errors and their one JSON body.
//! - [`api`]: the origin's HTTP API types.
//! - [`assertion`]: the signed identity assertion the edge hands the app.
//! - [`identity`]: the other headers between the edge and the app: convenience copies, and the
//!   app's login and logout instructions.
//! - [`secret`]: configuration secrets that redact themselves.
//! - [`user_id`]: user ids, JSON strings or numbers, given back with their type.
//!
//! Nothing here does I/O or needs an async runtime; randomness and the current time are passed
//! in, so the crate builds for `wasm32-unknown-unknown` and tests are deterministic.

pub mod access;
pub mod api;
pub mod assertion;
pub mod claims;
pub mod csrf;
pub mod engine;
pub mod error;
pub mod identity;
pub mod keys;
pub mod percent;
pub mod protocol;
pub mod refresh;
pub mod sdk;
pub mod secret;
pub mod settings;
pub mod trace;
pub mod user_id;
pub mod validate;

pub use error::{ErrorKind, SessionError, TheftDetails, DEFAULT_SESSION_EXPIRED_STATUS};
