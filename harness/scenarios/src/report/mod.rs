//! `scenario report`, `scenario run --report` and `scenario seed --report`: self-contained HTML
//! pages a person reads at a glance, in English or Korean.
//!
//! [`facts`] reads what the [`Outcome`](crate::Outcome) does not carry (plan periods
//! with the terms billed for each, usage per day, each product's requests by day) from the run's
//! database and mocks; [`html`] writes a scenario's page (a day-by-day timeline drawn in SVG,
//! then the invoices with each line's rule in words, the payment attempts, the subscription
//! states and the expected errors); [`index`] writes the page of a whole run. Everything after
//! [`facts`] is pure: same run, same bytes.

mod facts;
mod lang;
mod markup;
mod money;
mod page;
pub mod palette;
mod timeline;

pub use facts::{
    DailyUsage, Facts, PlanPeriod, ProductDelivery, ProductFacts, TenantFacts, facts, facts_with,
};
pub use lang::{Lang, Words};
pub use money::{count, money, money_in};
pub use page::{IndexRow, PageOptions, html, index};
