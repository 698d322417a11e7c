//! `env.build().user()`: people, on their own (a sign-up makes their own organization) or inside one,
//! with seeded fake names, e-mail addresses and phones; their profile changes and leaving, each
//! synced to the products of their organization's tenants.

use serde::Serialize;

use super::BuildError;
use super::lookup::next_sequence;
use crate::TestEnv;
use crate::fakes::Person;
use crate::model::{OrgId, UserId};
use crate::platform::NewUser;
use crate::world::Org;

/// Builds a user; every setter documents its default.
#[derive(Debug)]
#[must_use]
pub struct UserBuilder<'e> {
    env: &'e TestEnv,
    org: Option<OrgId>,
    role: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

/// A user as plain values: what [`UserBuilder::build`] returns and `create` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSpec {
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Phone number.
    pub phone: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Locale, e.g. `ko-KR`.
    pub locale: String,
    /// Whether the user signs up with an organization of their own.
    pub own_org: bool,
}

impl<'e> UserBuilder<'e> {
    pub(crate) fn new(env: &'e TestEnv) -> UserBuilder<'e> {
        UserBuilder {
            env,
            org: None,
            role: None,
            name: None,
            email: None,
        }
    }

    /// Joins `org` (default: signs up on their own, with an organization of their own).
    pub fn org(mut self, org: &Org) -> Self {
        self.org = Some(org.id);
        self
    }

    /// The role: `owner`, `admin` or `member` (default: `owner` on their own, `member` in an
    /// organization).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Trait: an admin of the organization.
    pub fn admin(self) -> Self {
        self.role("admin")
    }

    /// The full name (default: a fake one in the test's locale).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The e-mail address (default: a fake one, unique through the sequence).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The user as plain values, without touching the database (e-mail addresses carry `0`).
    pub fn build(self) -> UserSpec {
        self.spec(0)
    }

    fn spec(&self, n: i64) -> UserSpec {
        let Person {
            name,
            email,
            phone,
            locale,
        } = self.env.world().fakes.person(n);
        let default_role = if self.org.is_some() {
            "member"
        } else {
            "owner"
        };
        UserSpec {
            name: self.name.clone().unwrap_or(name),
            email: self.email.clone().unwrap_or(email),
            phone,
            role: self.role.clone().unwrap_or_else(|| default_role.into()),
            locale: locale.to_owned(),
            own_org: self.org.is_none(),
        }
    }

    /// Signs the user up through the platform, at the clock's now; on their own, their
    /// organization is named after them. The products of the organization's live tenants get
    /// the user.
    ///
    /// # Errors
    /// The database refused a row (an e-mail address taken, say).
    pub async fn create(self) -> Result<User<'e>, BuildError> {
        let env = self.env;
        let spec = self.spec(next_sequence(env).await?);
        let p = env.platform();
        let at = env.clock().now();
        let org = match self.org {
            Some(org) => org,
            None => p.create_org(&spec.name, at).await?,
        };
        let id = p
            .create_user(
                org,
                &NewUser {
                    name: spec.name.clone(),
                    email: spec.email.clone(),
                    phone: Some(spec.phone.clone()),
                    role: spec.role.clone(),
                    locale: spec.locale.clone(),
                },
                at,
            )
            .await?;
        Ok(User {
            env,
            id,
            org,
            email: spec.email,
        })
    }
}

/// A signed-up user, and what can happen to them.
#[derive(Debug, Clone)]
pub struct User<'e> {
    env: &'e TestEnv,
    id: UserId,
    org: OrgId,
    email: String,
}

impl User<'_> {
    /// Their id.
    pub fn id(&self) -> UserId {
        self.id
    }

    /// Their organization.
    pub fn org(&self) -> OrgId {
        self.org
    }

    /// Their e-mail address.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// Changes their name, at the clock's now.
    ///
    /// # Errors
    /// The user left, or the database failed.
    pub async fn rename(&self, name: &str) -> Result<(), BuildError> {
        let locale = self.env.world().fakes.locale().tag();
        self.env
            .platform()
            .update_user(self.id, name, locale, self.env.clock().now())
            .await?;
        Ok(())
    }

    /// Leaves the organization, at the clock's now.
    ///
    /// # Errors
    /// The user already left, or the database failed.
    pub async fn leave(&self) -> Result<(), BuildError> {
        self.env
            .platform()
            .leave_org(self.id, self.env.clock().now())
            .await?;
        Ok(())
    }
}

/// A member for a tenant's product: signed up in `org`.
pub(crate) async fn member(env: &TestEnv, org: &Org) -> Result<UserId, BuildError> {
    Ok(UserBuilder::new(env).org(org).create().await?.id)
}
