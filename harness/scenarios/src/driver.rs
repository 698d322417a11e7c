//! Drivers: the operations a scenario needs, as traits, so that the same scenario files run
//! against any billing implementation. The harness's reference platform is one
//! ([`super::Reference`]); a backend's own billing code can be another, and
//! [`super::run_with`] compares the two.
//!
//! A [`Driver`] starts one [`Session`] per scenario: a world of its own (a fresh database, a
//! clock at the scenario's start). The runner names organizations, users and tenants by their
//! keys in the scenario, creates them, plays the steps in order at 00:00 of each step's day, moves
//! time with [`Session::advance_to`] (the implementation runs whatever its jobs do by then: the
//! close on the 1st, the charge, the retries), and at `until` reads back what the implementation
//! wrote with [`Session::read_back`].

use std::fmt;
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};

use super::outcome::{OutcomeInvoice, OutcomePayment, OutcomeProduct, OutcomeSubscription};
use super::validate::{OrgDef, Scenario, ScriptedFault, TenantDef};
use billing_harness::model::ContractTerms;
use billing_harness::payments::TestCard;
use billing_harness::purge::Scope;

/// A billing implementation that scenarios run against.
pub trait Driver: Sync {
    /// One scenario's world in this implementation.
    type Session: Session;

    /// The implementation's name, shown in reports (`reference`, `example`).
    fn name(&self) -> &str;

    /// A fresh world for `scenario`: its catalog installed, its clock at
    /// [`Scenario::start_instant`], nothing else.
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] when the catalog needs what the implementation lacks (a
    /// currency, several metrics per plan), [`DriverError::Failed`] when setting up failed.
    fn start(
        &self,
        scenario: &Scenario,
    ) -> impl Future<Output = Result<Self::Session, DriverError>> + Send;
}

/// One scenario's world. Every operation happens at the session's instant, which
/// [`Session::advance_to`] moves (and [`Session::products`] may, running sync to idle at the
/// end). A refusal by a billing rule is [`DriverError::Refused`] with
/// the platform's code for it (see [`super::ERROR_CODES`]).
///
/// The operations after [`Session::read_back`] have defaults that answer
/// [`DriverError::Unsupported`] (or nothing to report): an implementation without product sync
/// or purge leaves them out, and the scenarios that need them are reported as not supported.
pub trait Session: Send {
    /// Signs up an organization with its owner (`org.owner`, or an address of the
    /// implementation's choosing) and registers `org.card` when it has one.
    fn create_org(&mut self, org: &OrgDef) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Signs up a member of organization `org` with this address.
    fn create_user(
        &mut self,
        org: &str,
        email: &str,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Creates a tenant (`tenant.key` names it) of organization `org` for `tenant.product`.
    fn create_tenant(
        &mut self,
        tenant: &TenantDef,
        org: &str,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Registers a new card for organization `org`; later charges use it.
    fn register_card(
        &mut self,
        org: &str,
        card: TestCard,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Subscribes a tenant to a plan of the catalog.
    fn subscribe(
        &mut self,
        tenant: &str,
        plan: &str,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Moves a tenant's subscription to another plan.
    fn change_plan(
        &mut self,
        tenant: &str,
        plan: &str,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Cancels a tenant's subscription.
    fn cancel(&mut self, tenant: &str) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Applies a sales contract to a tenant from today.
    fn apply_contract(
        &mut self,
        tenant: &str,
        terms: &ContractTerms,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Records `quantity` units of `metric` a tenant used on `day` (today, or earlier when
    /// reported late).
    fn record_usage(
        &mut self,
        tenant: &str,
        metric: &str,
        quantity: i64,
        day: NaiveDate,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Moves the clock forward to `at`, running every job due on the way, in order.
    fn advance_to(
        &mut self,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// What the implementation holds now: every invoice, payment attempt and subscription of
    /// the scenario's tenants, tenants and plans by their keys.
    fn read_back(&mut self) -> impl Future<Output = Result<ReadBack, DriverError>> + Send;

    /// Purges an organization (`Org`) or a user by address (`User`) with everything that only
    /// it owns.
    fn purge(
        &mut self,
        target: PurgeOf<'_>,
    ) -> impl Future<Output = Result<Purged, DriverError>> + Send {
        let _ = target;
        async { Err(DriverError::unsupported("purge")) }
    }

    /// Puts a fault on a product's next writes.
    fn product_fault(
        &mut self,
        product: &str,
        fault: &ScriptedFault,
    ) -> impl Future<Output = Result<(), DriverError>> + Send {
        let _ = (product, fault);
        async { Err(DriverError::unsupported("product sync faults")) }
    }

    /// Changes a product's copy of a tenant behind the platform's back; `false` when the product
    /// holds no such tenant yet.
    fn product_drift(
        &mut self,
        product: &str,
        tenant: &str,
    ) -> impl Future<Output = Result<bool, DriverError>> + Send {
        let _ = (product, tenant);
        async { Err(DriverError::unsupported("product drift")) }
    }

    /// At `until`: runs product sync to idle, reconciles, and reports what each product holds;
    /// `None` for an implementation that does not sync products.
    fn products(
        &mut self,
    ) -> impl Future<Output = Result<Option<Vec<OutcomeProduct>>, DriverError>> + Send {
        async { Ok(None) }
    }
}

/// What a purge step removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeOf<'a> {
    /// An organization, by its key in the scenario.
    Org(&'a str),
    /// A user, by e-mail address as written in the scenario.
    User(&'a str),
}

/// What a purge deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// What the purge covered.
    pub scope: Scope,
    /// Rows deleted, per table.
    pub rows: std::collections::BTreeMap<String, u64>,
    /// Deletions the products were told of, per `product entity`.
    pub told: std::collections::BTreeMap<String, usize>,
}

impl Purged {
    /// Deletion notices as [`Purged::told`] counts them: per `product entity`
    /// (`analytics user`), from each notice's product and entity.
    pub fn count_told<'a>(
        notices: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> std::collections::BTreeMap<String, usize> {
        let mut told = std::collections::BTreeMap::new();
        for (product, entity) in notices {
            *told.entry(format!("{product} {entity}")).or_insert(0) += 1;
        }
        told
    }
}

/// What an implementation holds at the end of a scenario, in the words of [`super::Outcome`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBack {
    /// Invoices, per tenant in the scenario's order, oldest first.
    pub invoices: Vec<OutcomeInvoice>,
    /// Payment attempts, by day and then tenant.
    pub payments: Vec<OutcomePayment>,
    /// Each tenant's last subscription, in the scenario's order.
    pub subscriptions: Vec<OutcomeSubscription>,
}

/// Why a driver's operation did not go through.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// A billing rule refused the operation: the step gives this code.
    #[error("refused with {code}: {message}")]
    Refused {
        /// The platform's code for the rule (see [`super::ERROR_CODES`]).
        code: String,
        /// Why, for people.
        message: String,
    },
    /// The implementation cannot do what the scenario asks; the scenario is reported as not
    /// supported by it, neither passed nor failed.
    #[error("the implementation has no {what}")]
    Unsupported {
        /// What it lacks, e.g. `purge` or `contracts`.
        what: String,
    },
    /// The implementation failed (its database, its set-up): the scenario cannot go on.
    #[error("the implementation failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DriverError {
    /// A refusal with a rule's code.
    pub fn refused(code: impl Into<String>, message: impl fmt::Display) -> DriverError {
        DriverError::Refused {
            code: code.into(),
            message: message.to_string(),
        }
    }

    /// What the implementation lacks.
    pub fn unsupported(what: impl Into<String>) -> DriverError {
        DriverError::Unsupported { what: what.into() }
    }

    /// A failure of the implementation itself.
    pub fn failed(error: impl std::error::Error + Send + Sync + 'static) -> DriverError {
        DriverError::Failed(Box::new(error))
    }
}
