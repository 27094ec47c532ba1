//! Route paths of the verifier's HTTP API.

/// Liveness: `200 ok` while the process serves requests.
pub const HEALTHZ: &str = "/healthz";
/// Batch math grading: [`crate::GradeMathRequest`] → [`crate::GradeMathResponse`].
pub const MATH_GRADE: &str = "/v1/math/grade";
/// Readiness: `200 ready` once the service can grade, 503 while starting or shutting down.
pub const READYZ: &str = "/readyz";
/// Prometheus metrics (text exposition format).
pub const METRICS: &str = "/metrics";
/// The OpenAPI 3 description of this API.
pub const OPENAPI: &str = "/openapi.json";
/// Batch code judging: [`crate::JudgeCodeRequest`] → [`crate::JudgeCodeResponse`].
pub const CODE_JUDGE: &str = "/v1/code/judge";
/// SandboxFusion-compatible single run: [`crate::sandbox_fusion::RunCodeRequest`].
pub const RUN_CODE: &str = "/run_code";
/// SandboxFusion-compatible liveness: `"pong"`.
pub const PING: &str = "/v1/ping";
/// OpenRLHF's remote reward protocol (`--reward.remote_url`), math rewards.
pub const OPENRLHF_REWARD: &str = "/v1/openrlhf/reward";
