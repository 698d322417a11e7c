//! `env.build().org()`: organizations with their owner, billing account, card and invitations.

use serde::Serialize;

use super::BuildError;
use super::lookup::next_sequence;
use crate::TestEnv;
use crate::payments::TestCard;
use crate::platform::NewUser;
use crate::world::Org;

/// An organization as plain values: what [`OrgBuilder::build`] returns and `create` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgSpec {
    /// The company name.
    pub name: String,
    /// The owner's name.
    pub owner_name: String,
    /// The owner's e-mail, also the billing e-mail.
    pub owner_email: String,
    /// The owner's phone.
    pub owner_phone: String,
    /// The registered card, if any.
    pub card: Option<String>,
    /// E-mail addresses invited to join.
    pub invitations: Vec<String>,
}

/// Builds an organization; every setter documents its default.
#[derive(Debug)]
#[must_use]
pub struct OrgBuilder<'e> {
    env: &'e TestEnv,
    name: Option<String>,
    card: Option<TestCard>,
    invitations: u32,
    owner_email: Option<String>,
}

impl<'e> OrgBuilder<'e> {
    pub(crate) fn new(env: &'e TestEnv) -> OrgBuilder<'e> {
        OrgBuilder {
            env,
            name: None,
            card: Some(TestCard::Ok),
            invitations: 0,
            owner_email: None,
        }
    }

    /// The owner's e-mail address (default: a fake one, unique through the sequence).
    pub fn owner_email(mut self, email: impl Into<String>) -> Self {
        self.owner_email = Some(email.into());
        self
    }

    /// The company name (default: a fake one in the test's locale).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Registers this test card (default: `ok`).
    pub fn card(mut self, card: TestCard) -> Self {
        self.card = Some(card);
        self
    }

    /// Registers no card: paid plans are then refused with `card_required`.
    pub fn without_card(mut self) -> Self {
        self.card = None;
        self
    }

    /// Invites `n` people to join (default: none).
    pub fn invitations(mut self, n: u32) -> Self {
        self.invitations = n;
        self
    }

    /// The organization as plain values, without touching the database. Sequence numbers are
    /// not drawn, so e-mail addresses carry `0`.
    pub fn build(self) -> OrgSpec {
        self.spec(0)
    }

    fn spec(&self, n: i64) -> OrgSpec {
        let fakes = &self.env.world().fakes;
        let name = self.name.clone().unwrap_or_else(|| fakes.company());
        let owner = fakes.person(n);
        let invitations = (0..self.invitations)
            .map(|i| fakes.person(n * 100 + i64::from(i) + 1).email)
            .collect();
        OrgSpec {
            name,
            owner_name: owner.name,
            owner_email: self.owner_email.clone().unwrap_or(owner.email),
            owner_phone: owner.phone,
            card: self.card.map(|c| c.to_string()),
            invitations,
        }
    }

    /// Signs the organization up through the platform: the organization, its owner, its
    /// billing account, its card and its invitations, at the clock's now.
    ///
    /// # Errors
    /// The database refused a row.
    pub async fn create(self) -> Result<Org, BuildError> {
        let n = next_sequence(self.env).await?;
        let spec = self.spec(n);
        let p = self.env.platform();
        let at = self.env.clock().now();
        let id = p.create_org(&spec.name, at).await?;
        let owner = p
            .create_user(
                id,
                &NewUser {
                    name: spec.owner_name.clone(),
                    email: spec.owner_email.clone(),
                    phone: Some(spec.owner_phone.clone()),
                    role: "owner".into(),
                    locale: person_locale(self.env),
                },
                at,
            )
            .await?;
        p.open_billing_account(id, &spec.owner_email, at).await?;
        if let Some(card) = self.card {
            p.register_card(id, card, at).await?;
        }
        for email in &spec.invitations {
            p.invite(id, owner, email, &self.env.world().fakes.token(), at)
                .await?;
        }
        Ok(Org { id, owner })
    }
}

fn person_locale(env: &TestEnv) -> String {
    env.world().fakes.locale().tag().to_owned()
}
