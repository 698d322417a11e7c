//! Organizations, cards and tenants: the parents every subscription needs.

use chrono::{DateTime, Datelike, Utc};

use super::Platform;
use crate::model::{CardId, OrgId, TenantId};
use crate::payments::{MockGateway, TestCard};

impl Platform {
    /// Signs up an organization.
    ///
    /// # Errors
    /// The database failed.
    pub async fn create_org(&self, name: &str, at: DateTime<Utc>) -> Result<OrgId, sqlx::Error> {
        sqlx::query_scalar(
            "insert into organizations (name, created_at) values ($1, $2) returning id",
        )
        .bind(name)
        .bind(at)
        .fetch_one(&self.pool)
        .await
    }
}

impl Platform {
    /// Registers a test card for `org` (the gateway's billing key is stored, never the number),
    /// replacing its active card from the next charge on.
    ///
    /// # Errors
    /// The database failed.
    pub async fn register_card(
        &self,
        org: OrgId,
        card: TestCard,
        at: DateTime<Utc>,
    ) -> Result<CardId, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "update cards set status = 'replaced' where organization_id = $1 and status = 'active'",
        )
        .bind(org)
        .execute(&mut *tx)
        .await?;
        let expires = chrono::NaiveDate::from_ymd_opt(at.year() + 3, 1, 1).expect("valid date");
        let id = sqlx::query_scalar(
            "insert into cards (organization_id, billing_key, brand, number_last4, expires_on, status, \
             registered_at, test_script) \
             values ($1, $2 || (select count(*) from cards where organization_id = $1), \
             'test', $5, $3, 'active', $4, $6) returning id",
        )
        .bind(org)
        .bind(MockGateway::billing_key(card, &format!("{}.", org.0)))
        .bind(expires)
        .bind(at)
        .bind(card.last4())
        .bind(card.to_string())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}

impl Platform {
    /// Creates a tenant: one deployment of `product` for `org`.
    ///
    /// # Errors
    /// The database failed (no such product, say).
    pub async fn create_tenant(
        &self,
        org: OrgId,
        product: &str,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<TenantId, sqlx::Error> {
        sqlx::query_scalar(
            "insert into tenants (organization_id, product_id, name, slug, status, created_at) \
             select $1, id, $3, $3, 'active', $4 from products where key = $2 returning id",
        )
        .bind(org)
        .bind(product)
        .bind(name)
        .bind(at)
        .fetch_one(&self.pool)
        .await
    }
}
