//! The RLVR verifier: grades math answers (and, later, judges code) behind a hardened HTTP API.
//!
//! * [`math`]: extraction and exact comparison of answers; pure, no I/O, no async.
//! * [`judge`]: code submissions and tests → verdicts and rewards.
//! * [`sandbox`]: running untrusted programs (Linux namespaces, cgroups, seccomp).
//! * [`http`]: the axum router ([`app`]), error mapping and request limits.
//!
//! Tests drive [`app`] in-process with `tower::ServiceExt::oneshot`; the `verifier` binary
//! serves it on a socket.

// The OpenAPI document is one `serde_json::json!` literal, deeper than the default macro limit.
#![recursion_limit = "256"]

pub mod http;
pub mod judge;
pub mod math;
pub mod sandbox;

pub use http::{AppState, Limits, app};
