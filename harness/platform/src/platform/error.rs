//! `DomainError`: why the platform refused an operation, with a stable code per rule.

use chrono::{DateTime, Utc};

use crate::model::Currency;

/// Why an operation was refused. Nothing was written.
///
/// When one operation breaks several rules, the error is the first that applies in this order:
/// `invalid_quantity`, `period_closed`, `no_active_subscription`, `already_subscribed`,
/// `plan_product_mismatch`, `currency_mismatch`, `same_plan`, `plan_change_limit`,
/// `card_required`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A usage quantity that is zero or negative.
    #[error("usage quantity must be positive, got {0}")]
    InvalidQuantity(i64),
    /// Usage for a day whose month was already closed.
    #[error("the month {0} is already closed")]
    PeriodClosed(String),
    /// The tenant has no subscription in service (on that day).
    #[error("the tenant has no active subscription")]
    NoActiveSubscription,
    /// The tenant already has a live subscription.
    #[error("the tenant already has a live subscription")]
    AlreadySubscribed,
    /// The plan belongs to another product than the tenant.
    #[error("plan {plan} belongs to product {plan_product}, the tenant to {tenant_product}")]
    PlanProductMismatch {
        /// The plan asked for.
        plan: String,
        /// Its product.
        plan_product: String,
        /// The tenant's product.
        tenant_product: String,
    },
    /// A plan change or contract onto a plan billed in another currency than the subscription:
    /// its invoice would add amounts of two currencies. A new subscription may take any.
    #[error(
        "plan {plan} is billed in {plan_currency}, the subscription in {subscription_currency}"
    )]
    CurrencyMismatch {
        /// The plan asked for (a contract's base plan).
        plan: String,
        /// Its currency.
        plan_currency: Currency,
        /// The currency of the subscription, of every plan period it has had.
        subscription_currency: Currency,
    },
    /// Changing to the plan already in force.
    #[error("the subscription is already on plan {0}")]
    SamePlan(String),
    /// A second plan change on one calendar day.
    #[error("the plan was already changed today; the next change is allowed from {next_allowed}")]
    PlanChangeLimit {
        /// The first instant a change is allowed again (00:00 of the next day, local time).
        next_allowed: DateTime<Utc>,
    },
    /// A paid plan for an organization without a registered card.
    #[error("a plan with a base fee needs a registered card")]
    CardRequired,
    /// No plan with this key.
    #[error("no plan {0:?} in the catalog")]
    UnknownPlan(String),
    /// No tenant with this id.
    #[error("no tenant {0}")]
    UnknownTenant(i64),
    /// No catalog is installed: no settings, nothing to bill.
    #[error("no catalog is installed (install one before billing)")]
    NoCatalog,
    /// A stored setting the platform cannot use.
    #[error("invalid platform settings: {0}")]
    Settings(String),
    /// Contract terms that cannot apply (an unknown metric, a negative price, a block of 0, a
    /// term that ends before it starts).
    #[error("invalid contract terms: {0}")]
    InvalidTerms(String),
    /// No such product in the catalog.
    #[error("no product {0:?} in the catalog")]
    UnknownProduct(String),
    /// No such user.
    #[error("no user {0}")]
    UnknownUser(i64),
    /// A product's state could not be read back for reconciliation.
    #[error("could not read the state of product {product}")]
    ProductUnreachable {
        /// The product's key.
        product: String,
        /// Why.
        #[source]
        source: crate::products::DeliveryError,
    },
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// `code()` and the list of rule codes, from one table: a rule's code is written once.
macro_rules! codes {
    (
        rules { $($rule:ident => $rcode:literal,)+ }
        other { $($(#[$cfg:meta])? $other:ident => $ocode:literal,)+ }
    ) => {
        impl DomainError {
            /// The codes of the rules an operation can refuse for, in the order they are checked:
            /// what a scenario step may expect (`expect_error`).
            pub const RULE_CODES: &[&str] = &[$($rcode),+];

            /// The stable code of the rule, as scenario files name it (`plan_change_limit`, ...).
            pub fn code(&self) -> &'static str {
                match self {
                    $(DomainError::$rule { .. } => $rcode,)+
                    $($(#[$cfg])? DomainError::$other { .. } => $ocode,)+
                }
            }

            /// Whether the error is a rule's refusal (see [`DomainError::RULE_CODES`]) rather
            /// than a bad reference, a missing catalog or a database failure.
            pub fn is_rule(&self) -> bool {
                matches!(self, $(DomainError::$rule { .. })|+)
            }
        }
    };
}

codes! {
    rules {
        InvalidQuantity => "invalid_quantity",
        PeriodClosed => "period_closed",
        NoActiveSubscription => "no_active_subscription",
        AlreadySubscribed => "already_subscribed",
        PlanProductMismatch => "plan_product_mismatch",
        CurrencyMismatch => "currency_mismatch",
        SamePlan => "same_plan",
        PlanChangeLimit => "plan_change_limit",
        CardRequired => "card_required",
    }
    other {
        UnknownPlan => "unknown_plan",
        UnknownTenant => "unknown_tenant",
        UnknownUser => "unknown_user",
        InvalidTerms => "invalid_terms",
        UnknownProduct => "unknown_product",
        ProductUnreachable => "product_unreachable",
        NoCatalog => "no_catalog",
        Settings => "settings",
        Database => "database",
    }
}
