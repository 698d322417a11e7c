//! Why an operation of the service was refused or failed.

use chrono::NaiveDate;

use crate::billing::Currency;
use crate::calendar::Month;
use crate::ids::{CustomerId, SubscriptionId};

/// An operation's failure. Refusals name the rule by a stable [`Error::code`] and write nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No customer has this id.
    #[error("no customer {0}")]
    NoCustomer(CustomerId),
    /// No subscription has this id.
    #[error("no subscription {0}")]
    NoSubscription(SubscriptionId),
    /// No plan has this key.
    #[error("no plan {0:?}")]
    NoPlan(String),
    /// Another customer has this e-mail address.
    #[error("the e-mail address {0:?} is taken")]
    EmailTaken(String),
    /// The customer has a live subscription already.
    #[error("customer {0} has a live subscription already")]
    AlreadySubscribed(CustomerId),
    /// The customer has no live subscription, and the contract names no plan to start one on.
    #[error("customer {0} has no live subscription, and the contract names no base plan")]
    NotSubscribed(CustomerId),
    /// The subscription is cancelled.
    #[error("subscription {0} is cancelled")]
    Cancelled(SubscriptionId),
    /// The plan is priced in another currency than the subscription's: a subscription keeps
    /// the currency it started in (cancel and subscribe again to change it).
    #[error("subscription {subscription} is in {has}, plan {plan} in {asked}")]
    CurrencyMismatch {
        /// The subscription.
        subscription: SubscriptionId,
        /// Its currency.
        has: Currency,
        /// The plan asked for.
        plan: String,
        /// The plan's currency.
        asked: Currency,
    },
    /// The plan is for another product than the customer's account.
    #[error("plan {plan} is for {plan_product}, customer {customer} for {customer_product}")]
    PlanProductMismatch {
        /// The customer.
        customer: CustomerId,
        /// The customer's product.
        customer_product: String,
        /// The plan asked for.
        plan: String,
        /// The plan's product.
        plan_product: String,
    },
    /// A plan with a monthly fee needs a card on file.
    #[error("customer {0} has no card for the paid plan {1}")]
    CardRequired(CustomerId, String),
    /// The subscription is on that plan already.
    #[error("subscription {0} is on plan {1} already")]
    SamePlan(SubscriptionId, String),
    /// The subscription started or changed plan today: one change a day.
    #[error("subscription {0} changed plan on {1} already: one change a day")]
    PlanChangeLimit(SubscriptionId, NaiveDate),
    /// The usage names a metric the plan does not meter.
    #[error("plan {plan} meters {meters}, not {metric}")]
    UnknownMetric {
        /// The subscription's plan on the usage's day.
        plan: String,
        /// The metric it meters.
        meters: String,
        /// The metric reported.
        metric: String,
    },
    /// The subscription was not in service on the usage's day.
    #[error("subscription {0} was not in service on {1}")]
    NotInService(SubscriptionId, NaiveDate),
    /// The usage's month is closed: its invoices are written.
    #[error("usage for {day} is refused: {month} is closed")]
    PeriodClosed {
        /// The usage's day.
        day: NaiveDate,
        /// Its month.
        month: Month,
    },
    /// A month is closed only once it has ended in Seoul.
    #[error("{0} cannot be closed before it ends")]
    MonthNotOver(Month),
    /// A contract's terms cannot apply over its base plan (a metric it does not meter, a
    /// negative amount, a term that ends by its first day).
    #[error("invalid contract terms: {0}")]
    InvalidTerms(String),
    /// A value in the request is out of range.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No organization has this id.
    #[error("no organization {0}")]
    NoOrganization(i64),
    /// A product's copy could not be read back for the reconciler.
    #[error("product {product} could not be read back: {reason}")]
    ProductUnreadable {
        /// The product.
        product: String,
        /// What went wrong: no answer, a status, a body that does not parse.
        reason: String,
    },
    /// The database failed.
    #[error("the database failed")]
    Database(#[from] sqlx::Error),
}

impl Error {
    /// The rule's stable name, as the API returns it (`plan_change_limit`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Error::NoCustomer(_) => "no_customer",
            Error::NoSubscription(_) => "no_subscription",
            Error::NoPlan(_) => "no_plan",
            Error::EmailTaken(_) => "email_taken",
            Error::AlreadySubscribed(_) => "already_subscribed",
            Error::NotSubscribed(_) => "not_subscribed",
            Error::Cancelled(_) => "cancelled",
            Error::CurrencyMismatch { .. } => "currency_mismatch",
            Error::PlanProductMismatch { .. } => "plan_product_mismatch",
            Error::CardRequired(..) => "card_required",
            Error::SamePlan(..) => "same_plan",
            Error::PlanChangeLimit(..) => "plan_change_limit",
            Error::UnknownMetric { .. } => "unknown_metric",
            Error::NotInService(..) => "not_in_service",
            Error::PeriodClosed { .. } => "period_closed",
            Error::MonthNotOver(_) => "month_not_over",
            Error::InvalidTerms(_) => "invalid_terms",
            Error::Invalid(_) => "invalid",
            Error::NoOrganization(_) => "no_organization",
            Error::ProductUnreadable { .. } | Error::Database(_) => "internal",
        }
    }
}
