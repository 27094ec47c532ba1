//! Route paths of the verifier's HTTP API.

/// Liveness: `200 ok` while the process serves requests.
pub const HEALTHZ: &str = "/healthz";
/// Batch math grading: [`crate::GradeMathRequest`] → [`crate::GradeMathResponse`].
pub const MATH_GRADE: &str = "/v1/math/grade";
