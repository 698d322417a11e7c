//! Organizations, users, cards and tenants: the parents every subscription needs. Every change a
//! product must know of queues its sync rows in the same transaction.

use chrono::{DateTime, Datelike, Utc};

use super::handle::Platform;
use super::settings::settings;
use super::{DomainError, sync};
use crate::model::{CardId, OrgId, TenantId, UserId};
use crate::payments::{MockGateway, TestCard};
use crate::products::api::Entity;

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
        // One registration per organization at a time: the replaced card and the new one are
        // decided under the organization's row lock.
        sqlx::query("select id from organizations where id = $1 for update")
            .bind(org)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "update cards set status = 'replaced' where organization_id = $1 and status = 'active'",
        )
        .bind(org)
        .execute(&mut *tx)
        .await?;
        let expires = chrono::NaiveDate::from_ymd_opt(at.year() + 3, 1, 1)
            .expect("January 1st exists in every year a clock can reach");
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
    /// Creates a tenant: one deployment of `product` for `org`, and queues its sync: the users
    /// of `org`, then the tenant.
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
        let mut tx = self.pool.begin().await?;
        let id: TenantId = sqlx::query_scalar(
            "insert into tenants (organization_id, product_id, name, slug, status, created_at) \
             select $1, id, $3, $3, 'active', $4 from products where key = $2 returning id",
        )
        .bind(org)
        .bind(product)
        .bind(name)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        sync::queue_tenant(&mut tx, id.0, at).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces a tenant's spec (its deployment sizing, a JSON object) and queues the change.
    ///
    /// # Errors
    /// [`DomainError::UnknownTenant`] for a tenant that does not exist or is deleted, or a
    /// database error (a spec that is not an object, say).
    pub async fn set_tenant_spec(
        &self,
        tenant: TenantId,
        spec: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("update tenants set spec = $2 where id = $1 and status <> 'deleted'")
                .bind(tenant)
                .bind(spec)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::UnknownTenant(tenant.0));
        }
        sync::queue_change(&mut tx, Entity::Tenant, tenant.0, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a tenant: cancels its live subscription from the day of `at`, marks it deleted,
    /// and queues the deletion for its product (the tenant, then the users no other tenant keeps
    /// there).
    ///
    /// # Errors
    /// [`DomainError::UnknownTenant`] for a tenant that does not exist or is already deleted.
    pub async fn delete_tenant(
        &self,
        tenant: TenantId,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        let found: Option<String> =
            sqlx::query_scalar("select status from tenants where id = $1 for update")
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none_or(|status| status == "deleted") {
            return Err(DomainError::UnknownTenant(tenant.0));
        }
        let day = settings(&mut tx).await?.calendar.local_day(at);
        let live: Option<i64> = sqlx::query_scalar(
            "select id from subscriptions where tenant_id = $1 and status <> 'cancelled'",
        )
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(subscription) = live {
            super::subscriptions::end_subscription(
                &mut tx,
                subscription,
                day,
                crate::model::CancelReason::Requested,
                at,
            )
            .await?;
        }
        sqlx::query("update tenants set status = 'deleted', deleted_at = $2 where id = $1")
            .bind(tenant)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sync::queue_tenant_removal(&mut tx, tenant.0, at).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A person to sign up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewUser {
    /// Full name.
    pub name: String,
    /// Unique e-mail address.
    pub email: String,
    /// Phone number.
    pub phone: Option<String>,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Locale, e.g. `ko-KR`.
    pub locale: String,
}

impl Platform {
    /// Signs up a user in `org`.
    ///
    /// # Errors
    /// The database refused the row (an e-mail address taken, say).
    pub async fn create_user(
        &self,
        org: OrgId,
        user: &NewUser,
        at: DateTime<Utc>,
    ) -> Result<UserId, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let id: UserId = sqlx::query_scalar(
            "insert into users (organization_id, email, name, phone, role, locale, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7) returning id",
        )
        .bind(org)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.phone)
        .bind(&user.role)
        .bind(&user.locale)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        sync::queue_change(&mut tx, Entity::User, id.0, at).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Changes a user's profile (name, locale) and queues it for the products of its
    /// organization's tenants.
    ///
    /// # Errors
    /// [`DomainError::UnknownUser`] for a user who does not exist or left, or a database error.
    pub async fn update_user(
        &self,
        user: UserId,
        name: &str,
        locale: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "update users set name = $2, locale = $3 where id = $1 and deleted_at is null",
        )
        .bind(user)
        .bind(name)
        .bind(locale)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::UnknownUser(user.0));
        }
        sync::queue_change(&mut tx, Entity::User, user.0, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user leaves its organization (the account ends: a user belongs to one organization),
    /// and the products of the organization's tenants are told to forget it.
    ///
    /// # Errors
    /// [`DomainError::UnknownUser`] for a user who does not exist or already left.
    pub async fn leave_org(&self, user: UserId, at: DateTime<Utc>) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        let org: Option<i64> = sqlx::query_scalar(
            "update users set deleted_at = $2 where id = $1 and deleted_at is null \
             returning organization_id",
        )
        .bind(user)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let org = org.ok_or(DomainError::UnknownUser(user.0))?;
        sync::queue_user_removal(&mut tx, user.0, org, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Opens the organization's billing account (its "user pricing info") on the catalog's
    /// currency, charge day and tax rate.
    ///
    /// # Errors
    /// [`DomainError::NoCatalog`] before a catalog is installed, or the database refused the row
    /// (one already exists, say).
    pub async fn open_billing_account(
        &self,
        org: OrgId,
        email: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut conn = self.pool.acquire().await?;
        let settings = settings(&mut conn).await?;
        sqlx::query(
            "insert into billing_accounts (organization_id, billing_email, currency, billing_day, tax_rate, created_at) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(org)
        .bind(email)
        .bind(settings.currency)
        .bind(i16::try_from(settings.calendar.charge_day()).unwrap_or(i16::MAX))
        .bind(settings.tax_rate)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Invites `email` into `org` on behalf of `by`; the invitation expires after seven days.
    ///
    /// # Errors
    /// The database refused the row.
    pub async fn invite(
        &self,
        org: OrgId,
        by: UserId,
        email: &str,
        token: &str,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "insert into invitations (organization_id, email, invited_by, role, status, token, created_at, expires_at) \
             values ($1, $2, $3, 'member', 'pending', $4, $5, $5 + interval '7 days')",
        )
        .bind(org)
        .bind(email)
        .bind(by)
        .bind(token)
        .bind(at)
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// Gives `user` access to `tenant` in its product.
    ///
    /// # Errors
    /// The database refused the row.
    pub async fn add_product_user(
        &self,
        tenant: TenantId,
        user: UserId,
        role: &str,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("insert into product_users (tenant_id, user_id, role, created_at) values ($1, $2, $3, $4)")
            .bind(tenant)
            .bind(user)
            .bind(role)
            .bind(at)
            .execute(&self.pool)
            .await
            .map(drop)
    }
}
