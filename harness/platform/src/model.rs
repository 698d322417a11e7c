//! Plain data of the platform's billing domain: currencies, months, the catalog of plans.
//!
//! No I/O here: these values are what the pure billing rules take and what the platform
//! operations store.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use crate::calendar::Month;

/// Maps a type with `as_str` and `FromStr` to a text column (sqlx, PostgreSQL).
macro_rules! text_column {
    ($name:ident) => {
        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?;
                Ok(text.trim_end().parse::<$name>()?)
            }
        }
    };
}

/// Maps an enum to the text the database stores for it, in one place: `as_str`, `Display`,
/// `FromStr`, serde (as that text) and the sqlx column mapping.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The text stored in the database and shown to people.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {other:?} (expected one of: {})",
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        text_column!($name);
    };
}

/// A currency of the platform, with its number of minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    /// Korean won: no minor unit.
    #[serde(rename = "KRW")]
    Krw,
    /// US dollar: cents.
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    /// The ISO 4217 code, as stored in the database.
    pub fn code(self) -> &'static str {
        self.as_str()
    }

    /// The ISO 4217 code (the text column mapping's name for [`Currency::code`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Currency::Krw => "KRW",
            Currency::Usd => "USD",
        }
    }

    /// Digits after the decimal point that an amount may carry.
    pub fn minor_units(self) -> u32 {
        match self {
            Currency::Krw => 0,
            Currency::Usd => 2,
        }
    }

    /// Rounds `amount` down to this currency's minor unit, written with exactly that many
    /// decimals (`70258`, `12.50`).
    pub fn floor(self, amount: Decimal) -> Decimal {
        self.exact(amount.round_dp_with_strategy(
            self.minor_units(),
            rust_decimal::RoundingStrategy::ToNegativeInfinity,
        ))
    }

    /// `amount` written with exactly this currency's decimals; it must not carry more.
    pub fn exact(self, mut amount: Decimal) -> Decimal {
        amount.rescale(self.minor_units());
        amount
    }
}

text_column!(Currency);

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "KRW" => Ok(Currency::Krw),
            "USD" => Ok(Currency::Usd),
            other => Err(format!("unknown currency {other:?} (expected KRW or USD)")),
        }
    }
}

text_enum!(
    /// A subscription's state (`subscriptions.status`).
    SubscriptionStatus {
        /// In service and paid up.
        Active = "active",
        /// In service, with an unpaid invoice being retried.
        PastDue = "past_due",
        /// Ended: by request, by failed payment or by a contract's end.
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// Why a subscription was cancelled (`subscriptions.cancel_reason`).
    CancelReason {
        /// The customer cancelled.
        Requested = "requested",
        /// The last charge attempt failed.
        PaymentFailed = "payment_failed",
        /// A sales contract's term ended.
        ContractEnded = "contract_ended",
    }
);

text_enum!(
    /// An invoice's state (`invoices.status`).
    InvoiceStatus {
        /// Closed and waiting for the charge day.
        Finalized = "finalized",
        /// Paid (a zero total is paid at the close).
        Paid = "paid",
        /// A charge failed; retries are due.
        PastDue = "past_due",
        /// Every attempt failed.
        Uncollectible = "uncollectible",
    }
);

text_enum!(
    /// A charge attempt's outcome (`payments.outcome`).
    PaymentOutcome {
        /// The gateway captured the amount.
        Succeeded = "succeeded",
        /// The gateway declined, timed out, or there was no card.
        Failed = "failed",
    }
);

/// Overage pricing of one metric: `price` for every started `block` of units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overage {
    /// Units per block; a partial block is charged as a whole one.
    pub block: u64,
    /// Price of one block.
    pub price: Decimal,
}

/// The price terms of a plan: what a subscription agrees to for each plan period (stored as the
/// period's billing and billing details, so a later price change does not rewrite history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Monthly base fee, prorated by days.
    pub base_fee: Decimal,
    /// Units per metric included each month, prorated by days.
    pub included: BTreeMap<String, u64>,
    /// Overage pricing per metric; a metric without one is not charged.
    pub overage: BTreeMap<String, Overage>,
}

/// A plan of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Unique key across the catalog, e.g. `pro`.
    pub key: String,
    /// Key of the product it belongs to.
    pub product: String,
    /// Its currency.
    pub currency: Currency,
    /// Its prices.
    pub terms: Terms,
    /// Limits per option (the contract details), e.g. `seats = 10`.
    pub limits: BTreeMap<String, i64>,
}

/// The terms of a sales-led contract, over a catalog plan (its base): every term left out comes
/// from the base plan, never from an earlier contract.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractTerms {
    /// The catalog plan it is made from (default: the plan the tenant is on, or the base of its
    /// contract).
    pub plan: Option<String>,
    /// Monthly base fee (default: the base plan's).
    pub base_fee: Option<Decimal>,
    /// Included units per metric, replacing the base plan's for the metrics named.
    pub included: BTreeMap<String, u64>,
    /// Overage pricing per metric, replacing the base plan's for the metrics named.
    pub overage: BTreeMap<String, Overage>,
    /// Limits (the contract details), replacing or adding to the base plan's.
    pub limits: BTreeMap<String, i64>,
    /// The tenant's new spec (deployment sizing), a JSON object; `None` leaves it.
    pub spec: Option<serde_json::Map<String, serde_json::Value>>,
    /// The first day the contract no longer covers (its subscription is cancelled then).
    pub term_ends_on: Option<chrono::NaiveDate>,
}

/// Why contract terms cannot apply over their base plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TermsError {
    /// A metric the base plan does not meter.
    #[error("metric {metric:?} is not metered by plan {plan} (it meters {known})")]
    UnknownMetric {
        /// The metric named.
        metric: String,
        /// The base plan.
        plan: String,
        /// The metrics it meters.
        known: String,
    },
    /// A negative amount.
    #[error("{what} must not be negative, got {value}")]
    Negative {
        /// Which term.
        what: String,
        /// Its value.
        value: String,
    },
    /// An overage block of 0 units.
    #[error("the overage block of {0} must be at least 1 unit")]
    ZeroBlock(String),
}

impl ContractTerms {
    /// The custom plan these terms make over `base`, keyed `key`: the base plan's terms with
    /// each given term in place of its own.
    ///
    /// # Errors
    /// A metric the base does not meter, a negative fee, price or limit, a block of 0.
    pub fn over(&self, base: &Plan, key: &str) -> Result<Plan, TermsError> {
        let known: Vec<&String> = base
            .terms
            .included
            .keys()
            .chain(base.terms.overage.keys())
            .collect();
        for metric in self.included.keys().chain(self.overage.keys()) {
            if !known.contains(&metric) {
                return Err(TermsError::UnknownMetric {
                    metric: metric.clone(),
                    plan: base.key.clone(),
                    known: known
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let negative = |what: String, value: &dyn fmt::Display| TermsError::Negative {
            what,
            value: value.to_string(),
        };
        if let Some(fee) = self.base_fee
            && fee.is_sign_negative()
        {
            return Err(negative("the base fee".into(), &fee));
        }
        for (metric, o) in &self.overage {
            if o.block == 0 {
                return Err(TermsError::ZeroBlock(metric.clone()));
            }
            if o.price.is_sign_negative() {
                return Err(negative(format!("the overage price of {metric}"), &o.price));
            }
        }
        for (name, value) in &self.limits {
            if *value < 0 {
                return Err(negative(format!("the limit {name}"), value));
            }
        }
        let mut plan = base.clone();
        plan.key = key.to_owned();
        if let Some(fee) = self.base_fee {
            plan.terms.base_fee = fee;
        }
        plan.terms.included.extend(self.included.clone());
        plan.terms.overage.extend(self.overage.clone());
        plan.limits.extend(self.limits.clone());
        Ok(plan)
    }
}

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);
    };
}

id!(
    /// An organization's id.
    OrgId
);
id!(
    /// A card's id.
    CardId
);
id!(
    /// A user's id.
    UserId
);
id!(
    /// A tenant's id: one deployment of one product.
    TenantId
);
id!(
    /// A subscription's id.
    SubscriptionId
);
id!(
    /// An invoice's id.
    InvoiceId
);

/// The catalog: billing settings and every plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// The billing time zone: a day is a calendar day here (default `Asia/Seoul`).
    pub time_zone: chrono_tz::Tz,
    /// The default currency of new plans and billing accounts (default KRW).
    pub currency: Currency,
    /// Tax on every invoice's subtotal, e.g. `0.1` (default 0).
    pub tax_rate: Decimal,
    /// The day of the month finalised invoices are charged (default 5).
    pub charge_day: u32,
    /// The plans; their products are created from the keys they name.
    pub plans: Vec<Plan>,
}

impl Catalog {
    /// A catalog with the default settings and these plans.
    pub fn new(plans: Vec<Plan>) -> Catalog {
        Catalog {
            time_zone: crate::calendar::DEFAULT_TIME_ZONE,
            currency: Currency::Krw,
            tax_rate: Decimal::ZERO,
            charge_day: crate::calendar::Calendar::platform().charge_day(),
            plans,
        }
    }

    /// The calendar its settings make.
    ///
    /// # Errors
    /// A charge day outside 2 to 28.
    pub fn calendar(&self) -> Result<crate::calendar::Calendar, crate::calendar::CalendarError> {
        crate::calendar::Calendar::new(self.time_zone, self.charge_day)
    }

    /// The plan with this key.
    pub fn plan(&self, key: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.key == key)
    }
}

/// The catalog a `TestEnv` installs when the test installed none (for a builder or a product
/// mock): the `analytics` product with `free`, `pro` (99,000 KRW, 100,000 API calls, 500 per
/// 1,000 more, 10 seats) and `business` (290,000 KRW, 1,000,000 calls, 300 per 1,000 more, 50
/// seats), and `crm` with `crm-basic`.
pub fn default_catalog() -> Catalog {
    let plan = |key: &str, product: &str, fee: i64, included: u64, price: i64, seats: i64| Plan {
        key: key.into(),
        product: product.into(),
        currency: Currency::Krw,
        terms: Terms {
            base_fee: fee.into(),
            included: BTreeMap::from([("api_calls".to_owned(), included)]),
            overage: if price > 0 {
                BTreeMap::from([(
                    "api_calls".to_owned(),
                    Overage {
                        block: 1000,
                        price: price.into(),
                    },
                )])
            } else {
                BTreeMap::new()
            },
        },
        limits: BTreeMap::from([("seats".to_owned(), seats)]),
    };
    Catalog::new(vec![
        plan("free", "analytics", 0, 1_000, 0, 1),
        plan("pro", "analytics", 99_000, 100_000, 500, 10),
        plan("business", "analytics", 290_000, 1_000_000, 300, 50),
        plan("crm-basic", "crm", 50_000, 10_000, 100, 5),
    ])
}
