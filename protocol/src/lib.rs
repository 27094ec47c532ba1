//! The verifier's wire format: the one definition both the verifier (server) and the trainer
//! (client) use, so the two can never drift apart.
//!
//! * [`math`]: `POST /v1/math/grade` request and response types.
//! * [`code`]: `POST /v1/code/judge` request and response types.
//! * [`sandbox_fusion`]: SandboxFusion-compatible `POST /run_code`.
//! * [`error`]: the JSON error body every non-2xx answer carries.
//! * [`route`]: route paths.
//! * `client` (feature `client`): a typed async HTTP client with bounded retries.

pub mod code;
pub mod error;
pub mod math;
pub mod route;
pub mod sandbox_fusion;

#[cfg(feature = "client")]
pub mod client;

pub use code::{
    AssertTest, Backend, BackendChoice, CallTest, CodeItem, CodeOptions, CodeResult, CodeTest,
    CodeVerdict, IoTest, JudgeCodeRequest, JudgeCodeResponse, Language, MAX_TIME_LIMIT_S,
    MEMORY_LIMIT_MB_RANGE, RewardMode, RunReport, TestResult,
};
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use math::{
    ExtractionTarget, GradeMathRequest, GradeMathResponse, MathItem, MathOptions, MathResult,
    MathVerdict,
};
