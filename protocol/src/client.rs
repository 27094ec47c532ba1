//! Typed async client for the verifier (feature `client`).
//!
//! Retries with exponential backoff on connection errors, 429 and 503, never on other 4xx
//! (a bad request stays bad). Plain HTTP only: the verifier is expected on loopback or a private
//! network; put a TLS-terminating proxy in front of it otherwise.

use std::time::Duration;

use crate::sandbox_fusion::{RunCodeRequest, RunCodeResponse};
use crate::{
    ApiError, GradeMathRequest, GradeMathResponse, JudgeCodeRequest, JudgeCodeResponse, route,
};

/// Errors from [`VerifierClient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The base URL could not be parsed or is not `http://`.
    #[error("invalid verifier URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The verifier answered with a non-retryable error status (or retries ran out on a
    /// retryable one).
    #[error("verifier answered HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The decoded error body, if it had the standard shape.
        body: ApiErrorOrText,
    },
    /// The connection failed on every attempt.
    #[error("verifier unreachable after {attempts} attempts: {source}")]
    Unreachable {
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The response was not the expected JSON.
    #[error("malformed verifier response: {0}")]
    Decode(String),
}

/// An error body: the standard [`ApiError`] or, if it did not parse, the raw text.
#[derive(Debug, Clone)]
pub enum ApiErrorOrText {
    /// Standard `{"error": {...}}` body.
    Api(ApiError),
    /// Anything else (truncated to 512 bytes).
    Text(String),
}

impl std::fmt::Display for ApiErrorOrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiErrorOrText::Api(e) => write!(f, "{e}"),
            ApiErrorOrText::Text(t) => write!(f, "{t}"),
        }
    }
}

/// Retry policy: attempt `n` (0-based) waits `min(base · 2ⁿ, max)` before the next try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts including the first. Default 8.
    pub max_attempts: u32,
    /// First backoff. Default 100 ms.
    pub base_delay: Duration,
    /// Backoff cap. Default 5 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The default backoff (100 ms doubling up to 5 s), with as many attempts as it takes for
    /// the waits between them to add up to at least `patience`: how long a caller is willing to
    /// wait for a verifier that is down (restarting, redeploying) or overloaded. Only
    /// idempotent requests are retried (grading is a pure function of the request), so a retry
    /// never counts anything twice.
    pub fn patient(patience: Duration) -> Self {
        let mut p = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        let mut waited = Duration::ZERO;
        while waited < patience && p.max_attempts < u32::MAX {
            waited += p.delay(p.max_attempts - 1);
            p.max_attempts += 1;
        }
        p
    }

    fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// A client for one or more verifier replicas, e.g. `http://127.0.0.1:8470`. Requests are
/// spread round-robin over the replicas; a retry goes to the next replica, so one replica that
/// is down or overloaded costs a retry, not a failure.
#[derive(Debug, Clone)]
pub struct VerifierClient {
    http: reqwest::Client,
    bases: Vec<String>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    retry: RetryPolicy,
    token: Option<String>,
}

impl VerifierClient {
    /// Creates a client with the default [`RetryPolicy`], a 120 s per-request timeout and no
    /// token.
    /// `base_urls` is one URL or several separated by commas.
    pub fn new(base_urls: &str) -> Result<Self, ClientError> {
        Self::with_retry(base_urls, RetryPolicy::default())
    }

    /// Creates a client with an explicit retry policy.
    pub fn with_retry(base_urls: &str, retry: RetryPolicy) -> Result<Self, ClientError> {
        let bases: Vec<String> = base_urls
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if bases.is_empty() {
            return Err(ClientError::InvalidUrl {
                url: base_urls.to_string(),
                reason: "no URL given".into(),
            });
        }
        if let Some(bad) = bases.iter().find(|b| !b.starts_with("http://")) {
            return Err(ClientError::InvalidUrl {
                url: bad.clone(),
                reason: "only http:// URLs are supported (no TLS in this client)".into(),
            });
        }
        Ok(VerifierClient {
            http: http_client(DEFAULT_REQUEST_TIMEOUT)?,
            bases,
            next: Default::default(),
            retry,
            token: None,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request (the verifier's
    /// `--auth-token-file`). The token travels in clear text over plain HTTP.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Replaces the per-request timeout (default 120 s): one attempt that takes longer fails
    /// as unreachable and is retried per the policy.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Result<Self, ClientError> {
        self.http = http_client(timeout)?;
        Ok(self)
    }

    /// The first base URL.
    pub fn base_url(&self) -> &str {
        &self.bases[0]
    }

    /// Every replica's base URL.
    pub fn base_urls(&self) -> &[String] {
        &self.bases
    }

    /// The replica for attempt `attempt` of a request that started at `start`.
    fn base_for(&self, start: usize, attempt: u32) -> &str {
        &self.bases[(start + attempt as usize) % self.bases.len()]
    }

    /// `GET /healthz`: `Ok(())` when the verifier answers 200.
    pub async fn healthz(&self) -> Result<(), ClientError> {
        let url = format!("{}{}", self.base_url(), route::HEALTHZ);
        let resp = self
            .authorized(self.http.get(&url))
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                attempts: 1,
                source,
            })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            let status = resp.status().as_u16();
            Err(ClientError::Status {
                status,
                body: read_error(resp).await,
            })
        }
    }

    /// `POST /v1/math/grade`, retried per the policy.
    pub async fn grade_math(
        &self,
        req: &GradeMathRequest,
    ) -> Result<GradeMathResponse, ClientError> {
        let out: GradeMathResponse = self.post_retrying(route::MATH_GRADE, req).await?;
        check_len(out.results.len(), req.items.len())?;
        Ok(out)
    }

    /// `POST /v1/code/judge`, retried per the policy (a failing program is a verdict in the
    /// answer, never an error here).
    pub async fn judge_code(
        &self,
        req: &JudgeCodeRequest,
    ) -> Result<JudgeCodeResponse, ClientError> {
        let out: JudgeCodeResponse = self.post_retrying(route::CODE_JUDGE, req).await?;
        check_len(out.results.len(), req.items.len())?;
        Ok(out)
    }

    /// `POST /run_code` (SandboxFusion-compatible), retried per the policy: running a program
    /// that fails is an answer with a status, never an error here.
    pub async fn run_code(&self, req: &RunCodeRequest) -> Result<RunCodeResponse, ClientError> {
        self.post_retrying(route::RUN_CODE, req).await
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// POSTs `req` as JSON to `path`, moving to the next replica and backing off after
    /// connection errors, 429 and 503; other statuses fail at once.
    async fn post_retrying<Q, R>(&self, path: &str, req: &Q) -> Result<R, ClientError>
    where
        Q: serde::Serialize + ?Sized,
        R: serde::de::DeserializeOwned,
    {
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut attempt = 0u32;
        loop {
            let last = attempt + 1 >= self.retry.max_attempts;
            let url = format!("{}{}", self.base_for(start, attempt), path);
            let reason = match self.authorized(self.http.post(&url)).json(req).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if resp.status().is_success() {
                        return resp
                            .json()
                            .await
                            .map_err(|e| ClientError::Decode(e.to_string()));
                    }
                    let retryable = status == 429 || status == 503;
                    if !retryable || last {
                        return Err(ClientError::Status {
                            status,
                            body: read_error(resp).await,
                        });
                    }
                    format!("status {status}")
                }
                Err(source) => {
                    if last {
                        return Err(ClientError::Unreachable {
                            attempts: attempt + 1,
                            source,
                        });
                    }
                    source.to_string()
                }
            };
            let wait = self.retry.delay(attempt);
            tracing::warn!(
                url = %url,
                attempt = attempt + 1,
                of = self.retry.max_attempts,
                wait_ms = wait.as_millis() as u64,
                %reason,
                "verifier unavailable; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Per-request timeout unless [`VerifierClient::with_request_timeout`] sets another.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

fn http_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| ClientError::InvalidUrl {
            url: String::new(),
            reason: e.to_string(),
        })
}

/// A batch answer must have one result per item.
fn check_len(results: usize, items: usize) -> Result<(), ClientError> {
    if results == items {
        Ok(())
    } else {
        Err(ClientError::Decode(format!(
            "{results} results for {items} items"
        )))
    }
}

async fn read_error(resp: reqwest::Response) -> ApiErrorOrText {
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ApiError>(&text) {
        Ok(e) => ApiErrorOrText::Api(e),
        Err(_) => {
            let mut t = text;
            if t.len() > 512 {
                let mut cut = 512;
                while !t.is_char_boundary(cut) {
                    cut -= 1;
                }
                t.truncate(cut);
            }
            ApiErrorOrText::Text(t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0), Duration::from_millis(100));
        assert_eq!(p.delay(1), Duration::from_millis(200));
        assert_eq!(p.delay(10), Duration::from_secs(5));
        assert_eq!(p.delay(40), Duration::from_secs(5));
    }

    #[test]
    fn patience_sets_the_attempts() {
        let total = |p: RetryPolicy| {
            (0..p.max_attempts - 1)
                .map(|a| p.delay(a))
                .sum::<Duration>()
        };
        assert_eq!(RetryPolicy::patient(Duration::ZERO).max_attempts, 1);
        // 0.1 + 0.2 + 0.4 = 0.7 s ≥ 0.5 s after 4 attempts.
        assert_eq!(
            RetryPolicy::patient(Duration::from_millis(500)).max_attempts,
            4
        );
        for secs in [1, 30, 300, 3600] {
            let p = RetryPolicy::patient(Duration::from_secs(secs));
            let t = total(p);
            assert!(t >= Duration::from_secs(secs), "{secs}: {t:?}");
            assert!(t < Duration::from_secs(secs) + p.max_delay, "{secs}: {t:?}");
        }
    }

    #[test]
    fn rejects_non_http_urls() {
        assert!(VerifierClient::new("https://x").is_err());
        assert!(VerifierClient::new("127.0.0.1:1").is_err());
        assert_eq!(
            VerifierClient::new("http://127.0.0.1:1/")
                .unwrap()
                .base_url(),
            "http://127.0.0.1:1"
        );
    }

    #[test]
    fn replicas_rotate_per_request_and_per_retry() {
        let c = VerifierClient::new("http://a:1, http://b:2,http://c:3/").unwrap();
        assert_eq!(c.base_urls(), ["http://a:1", "http://b:2", "http://c:3"]);
        assert_eq!(c.base_for(0, 0), "http://a:1");
        assert_eq!(c.base_for(0, 1), "http://b:2");
        assert_eq!(c.base_for(2, 2), "http://b:2");
        assert!(VerifierClient::new("http://a:1,https://b:2").is_err());
        assert!(VerifierClient::new(" , ").is_err());
    }
}
