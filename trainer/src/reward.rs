//! Rewards from the verifier over HTTP, and an embedded verifier for runs without one.
//!
//! The embedded verifier is the real service (`verifier::app`) on a loopback socket, so the
//! trainer always takes the production path: HTTP, JSON, the same client and retries.

use std::net::SocketAddr;

use protocol::client::{ClientError, VerifierClient};
use protocol::{GradeMathRequest, MathItem, MathResult};

/// Largest batch sent in one request; bigger steps are split.
pub const MAX_ITEMS_PER_REQUEST: usize = 1024;

/// A verifier serving on loopback inside this process.
#[derive(Debug)]
pub struct EmbeddedVerifier {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The serving task; aborted on drop.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedVerifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts `verifier::app` with default limits on `127.0.0.1:0` (a free port).
pub async fn spawn_embedded_verifier() -> std::io::Result<EmbeddedVerifier> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let app = verifier::app(verifier::AppState::default());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "embedded verifier stopped");
        }
    });
    Ok(EmbeddedVerifier {
        url: format!("http://{addr}"),
        task,
    })
}

/// Grades `items`, in order, in requests of at most [`MAX_ITEMS_PER_REQUEST`].
pub async fn grade(
    client: &VerifierClient,
    items: Vec<MathItem>,
) -> Result<Vec<MathResult>, ClientError> {
    let mut out = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<MathItem> = items.by_ref().take(MAX_ITEMS_PER_REQUEST).collect();
        out.extend(
            client
                .grade_math(&GradeMathRequest { items: chunk })
                .await?
                .results,
        );
    }
    Ok(out)
}
