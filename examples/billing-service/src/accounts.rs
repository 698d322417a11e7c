//! Organizations and their users: whom a customer belongs to, and whom the products of an
//! organization's tenants must know (see [`crate::sync`]).

use serde::Deserialize;

use crate::Error;
use crate::outbox;
use crate::service::{BillingService, OrganizationId, UserId};

/// A person to sign up in an organization.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewUser {
    /// E-mail address, unique (the login).
    pub email: String,
    /// Full name.
    pub name: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Locale, e.g. `ko-KR`.
    pub locale: String,
}

/// The roles a user can have in an organization.
const ROLES: [&str; 3] = ["owner", "admin", "member"];

impl BillingService {
    /// Creates an organization, without users yet.
    ///
    /// # Errors
    /// `invalid` for an empty name.
    pub async fn create_organization(&self, name: &str) -> Result<OrganizationId, Error> {
        if name.trim().is_empty() {
            return Err(Error::Invalid("an organization needs a name".into()));
        }
        Ok(sqlx::query_scalar(
            "insert into organizations (name, created_at) values ($1, $2) returning id",
        )
        .bind(name.trim())
        .bind(self.now())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Signs up a user in `org`, and queues it for the product of each of the organization's
    /// tenants.
    ///
    /// # Errors
    /// `invalid` for an address without `@` or an unknown role, `no_organization`,
    /// `email_taken`.
    pub async fn add_user(&self, org: OrganizationId, user: &NewUser) -> Result<UserId, Error> {
        if !user.email.contains('@') || !ROLES.contains(&user.role.as_str()) {
            return Err(Error::Invalid(format!(
                "a user needs an e-mail address and one of the roles {ROLES:?}"
            )));
        }
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        sqlx::query_scalar::<_, i64>("select id from organizations where id = $1 for update")
            .bind(org)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NoOrganization(org.0))?;
        let id: UserId = sqlx::query_scalar(
            "insert into users (organization_id, email, name, role, locale, created_at) \
             values ($1, $2, $3, $4, $5, $6) on conflict (email) do nothing returning id",
        )
        .bind(org)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.role)
        .bind(&user.locale)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::EmailTaken(user.email.clone()))?;
        outbox::queue_user(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(id)
    }
}
