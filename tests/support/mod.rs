//! Shared test helpers: fresh Postgres databases.
//!
//! Database names are generated here from random hex digits, so the dynamic DDL below is safe.

use rand::Rng;
use sqlx::Connection;

/// Admin URL of the local Postgres server (`TEST_PG_URL`, default the local trust-auth root).
pub(crate) fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1/postgres".to_string())
}

/// A database created for one test and dropped when this value is dropped.
#[derive(Debug)]
pub(crate) struct FreshDb {
    /// URL of the new database.
    pub(crate) url: String,
    name: String,
}

impl FreshDb {
    /// Creates `e2e_<random>` on the local server.
    pub(crate) async fn create() -> FreshDb {
        let admin = pg_admin_url();
        let name = format!("e2e_{:016x}", rand::rng().random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("Postgres must be running at {admin} (start it with pg_ctlcluster): {e}")
            });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        conn.close().await.ok();
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(b, _)| b)
            .to_string();
        FreshDb {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let admin = pg_admin_url();
        let name = self.name.clone();
        // Drop on a separate thread with its own runtime: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()?;
                Some(())
            })
        })
        .join();
    }
}

/// A loopback TCP proxy in front of a server, whose link can be cut and restored to simulate a
/// database outage. Cutting drops every open connection and refuses new ones.
#[derive(Debug)]
pub(crate) struct TcpProxy {
    /// The proxy's own address.
    pub(crate) addr: std::net::SocketAddr,
    accepting: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding `127.0.0.1:<free port>` to `upstream`.
    pub(crate) async fn start(upstream: std::net::SocketAddr) -> TcpProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (acc, cs) = (accepting.clone(), conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !acc.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let handle = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                cs.lock().unwrap().push(handle);
            }
        });
        TcpProxy {
            addr,
            accepting,
            conns,
            task,
        }
    }

    /// Drops every connection and refuses new ones.
    pub(crate) fn cut(&self) {
        self.accepting
            .store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Accepts connections again.
    pub(crate) fn restore(&self) {
        self.accepting
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// `url` with its `host:port` replaced by `addr`.
pub(crate) fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userhost, path) = rest.split_once('/').unwrap();
    let user = userhost
        .rsplit_once('@')
        .map_or(String::new(), |(u, _)| format!("{u}@"));
    format!("{scheme}://{user}{addr}/{path}")
}
