//! Plain data of the platform's billing domain: currencies, months, the catalog of plans.
//!
//! No I/O here: these values are what the pure billing rules take and what the platform
//! operations store.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

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

/// A calendar month, the billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// The month `month` (1 to 12) of `year`; `None` for a month out of range.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        NaiveDate::from_ymd_opt(year, month, 1).map(|_| Month { year, month })
    }

    /// The month that contains `day`.
    pub fn of(day: NaiveDate) -> Month {
        Month {
            year: day.year(),
            month: day.month(),
        }
    }

    /// Its year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// Its month number, 1 to 12.
    pub fn month(self) -> u32 {
        self.month
    }

    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("months are valid")
    }

    /// The first day of the next month: the end (exclusive) of this one.
    pub fn end(self) -> NaiveDate {
        self.next().first_day()
    }

    /// How many days it has: 28 to 31.
    pub fn days(self) -> u32 {
        (self.end() - self.first_day()).num_days() as u32
    }

    /// The month after.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before.
    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Whether `day` falls in it.
    pub fn contains(self, day: NaiveDate) -> bool {
        Month::of(day) == self
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = String;

    /// Parses `YYYY-MM`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a month (expected YYYY-MM)");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        Month::new(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?).ok_or_else(bad)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

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
            time_zone: chrono_tz::Asia::Seoul,
            currency: Currency::Krw,
            tax_rate: Decimal::ZERO,
            charge_day: 5,
            plans,
        }
    }

    /// The plan with this key.
    pub fn plan(&self, key: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.key == key)
    }
}
