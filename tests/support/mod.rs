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
