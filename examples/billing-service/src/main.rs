//! Serves the billing service's API: `DATABASE_URL=postgres://... cargo run -p
//! example-billing-service` (listening on `BIND`, default `127.0.0.1:3000`). The database is
//! migrated on start; charges go to the provider's sandbox.

use std::sync::Arc;

use example_billing_service::clock::SystemClock;
use example_billing_service::payments::SandboxGateway;
use example_billing_service::{BillingService, MIGRATOR, http};
use sqlx::postgres::PgPoolOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(
        |_| "set DATABASE_URL to the service's database, e.g. postgres://localhost/billing",
    )?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await?;
    MIGRATOR.run(&pool).await?;
    let service = BillingService::new(
        pool,
        Arc::new(SystemClock),
        Arc::new(SandboxGateway::default()),
    );
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    eprintln!(
        "billing service: listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, http::router(service)).await?;
    Ok(())
}
