//! The RLVR verifier: grades math answers (and, later, judges code) behind a hardened HTTP API.
//!
//! * [`math`]: extraction and exact comparison of answers; pure, no I/O, no async.
//! * [`http`]: the axum router ([`app`]), error mapping and request limits.
//!
//! Tests drive [`app`] in-process with `tower::ServiceExt::oneshot`; the `verifier` binary
//! serves it on a socket.

pub mod http;
pub mod math;

pub use http::{AppState, Limits, app};
