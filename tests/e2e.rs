//! Workspace integration tests: one test binary, one module per area.
//!
//! Postgres-backed tests need the server at `TEST_PG_URL` (default
//! `postgres://root@127.0.0.1/postgres`); each creates and drops its own database.

mod support;

/// The math grader against the external conformance suites (`../shared/conformance`).
mod math_conformance;

/// The verifier's HTTP API, in-process and over a real socket.
mod verifier_http;

/// The rollout store on Postgres and SQLite.
mod rollout_store;

/// The journaled, batched store writer: upserts, outages, replays; the schema mirror.
mod store_writer;

/// `trainer audit` queries over both backends.
mod audit;

/// The training loop end to end: model, verifier over HTTP, GRPO/STEER update, store.
mod train_smoke;
