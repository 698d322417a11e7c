//! The crate's own database set-up, as a team writes it without the harness: `CREATE DATABASE`
//! per test on the server `EXAMPLE_DATABASE_URL` names, then the compiled-in migrations. Chosen
//! with `EXAMPLE_DB=own`; `cargo xtask bench adopt` times it against the harness.

use std::sync::atomic::{AtomicU64, Ordering};

use example_billing_service::MIGRATOR;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

/// One test's database on the given server: dropped when the test passes, kept when it fails.
#[derive(Debug)]
pub(crate) struct OwnDatabase {
    pool: PgPool,
    name: String,
    server: PgConnectOptions,
    url: String,
}

impl OwnDatabase {
    /// Creates and migrates a database of its own.
    pub(crate) async fn create() -> OwnDatabase {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let url = std::env::var("EXAMPLE_DATABASE_URL").unwrap_or_else(|_| {
            panic!(
                "EXAMPLE_DB=own needs EXAMPLE_DATABASE_URL, a server's URL such as \
                 postgres://postgres@127.0.0.1:5432/postgres"
            )
        });
        let server: PgConnectOptions = url
            .parse()
            .unwrap_or_else(|e| panic!("EXAMPLE_DATABASE_URL is not a URL: {e}"));
        let name = format!(
            "example_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect_with(&server)
            .await
            .unwrap_or_else(|e| panic!("could not connect to EXAMPLE_DATABASE_URL: {e}"));
        admin
            .execute(format!("create database {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("could not create {name}: {e}"));
        let _ = admin.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(server.clone().database(&name))
            .await
            .unwrap_or_else(|e| panic!("could not connect to {name}: {e}"));
        MIGRATOR
            .run(&pool)
            .await
            .unwrap_or_else(|e| panic!("could not migrate {name}: {e}"));
        OwnDatabase {
            pool,
            name,
            server,
            url,
        }
    }

    /// A pool on the database.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kept database {} of the failed test on the server of EXAMPLE_DATABASE_URL ({})",
                self.name, self.url
            );
            return;
        }
        // The test's runtime is blocked in this drop, so the drop runs on a runtime of its own;
        // `with (force)` ends the sessions the test's pool still holds.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect_with(&server)
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .execute(format!("drop database if exists {name} with (force)").as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop {}: {e}", self.name);
        }
    }
}
