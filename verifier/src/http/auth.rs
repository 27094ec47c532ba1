//! Optional bearer-token authentication for the `/v1/*` routes. Tokens are compared in
//! constant time (no early exit on the first differing byte), and every configured token is
//! tried, so timing reveals neither a token's prefix nor which token matched.
//!
//! Security caveat: tokens travel in clear over plain HTTP; terminate TLS in front of the
//! verifier when it leaves a trusted network.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::AppError;

/// The accepted tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<Vec<u8>>);

impl Tokens {
    /// Tokens from a file's contents: one per line, blank lines and `#` comments ignored.
    pub fn parse(text: &str) -> Self {
        Tokens(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| l.as_bytes().to_vec())
                .collect(),
        )
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no token is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Does `presented` equal one of the tokens? Constant time in the token contents.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let mut ok = 0u8;
        for t in &self.0 {
            ok |= u8::from(constant_time_eq(t, presented));
        }
        ok == 1
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

/// Middleware: 401 unless the request carries `Authorization: Bearer <token>` for a
/// configured token (no tokens configured: everything passes).
pub async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(tokens) = state.tokens.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(next.run(req).await);
    };
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(t) if tokens.accepts(t.as_bytes()) => Ok(next.run(req).await),
        _ => Err(AppError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_and_comparison() {
        let t = Tokens::parse("# ops\nalpha\n\n  beta  \n");
        assert_eq!(t.len(), 2);
        assert!(t.accepts(b"alpha") && t.accepts(b"beta"));
        assert!(
            !t.accepts(b"alph") && !t.accepts(b"alphaa") && !t.accepts(b"") && !t.accepts(b"# ops")
        );
    }
}
