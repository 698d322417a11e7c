//! Builders for test data: organizations, cards, tenants, subscriptions, usage, and product
//! outages, in a few typed lines that read like the QA intent.
//!
//! Every builder goes through the platform's operations, never raw inserts, so the tables agree
//! by construction. Associations are made on demand: a tenant joins the test's one default
//! organization (made on first use, with its owner, billing account and an `ok` card) unless
//! given its own. Names, e-mail addresses and phone numbers come from `fake`, in English or
//! Korean, seeded: a failing test prints its seed, and `HARNESS_SEED` replays it. Sequence
//! numbers come from the database, so they stay unique across processes sharing one.
//!
//! ```
//! use billing_harness::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let env = TestEnv::builder().today("2026-11-24".parse()?).build().await?;
//! let t = env.build().tenant().plan("pro").subscribed_on(env.months_ago(1).day(10)).create().await?;
//! t.change_plan("business").on(env.months_ago(1).day(20)).await?;
//! t.usage("api_calls", 120_000).on(env.months_ago(1).day(25)).await?;
//! env.clock().advance_to(env.this_month().day(1)).await?;
//! let october = t.invoice(env.months_ago(1)).await?.expect("October was closed");
//! // pro for the 10th to the 19th, business from the 20th: floor(99000 × 10 / 31) +
//! // floor(290000 × 12 / 31); the usage stays within business's prorated quota.
//! assert_eq!(october.invoice.total.to_string(), "144193");
//! # Ok(())
//! # }
//! ```

mod contract;
mod error;
mod lookup;
mod org;
mod outage;
mod tenant;
mod user;

pub use contract::ContractBuilder;
pub use error::BuildError;
pub use org::{OrgBuilder, OrgSpec};
pub use outage::OutageBuilder;
pub use tenant::{NoPlan, Op, Tenant, TenantBuilder, TenantSpec, UsagePattern, WithPlan};
pub use user::{User, UserBuilder, UserSpec};

pub use crate::dates::{Day, MonthOf};
pub use crate::fakes::{Fakes, KoKr, Locale, Person};
pub use crate::model::default_catalog;
pub use crate::world::Org;

use crate::Build;

impl<'e> Build<'e> {
    /// A tenant builder: add `.plan(..)` for a subscription, then `.create().await`.
    pub fn tenant(self) -> TenantBuilder<'e, NoPlan> {
        TenantBuilder::new(self.env())
    }

    /// An organization builder.
    pub fn org(self) -> OrgBuilder<'e> {
        OrgBuilder::new(self.env())
    }

    /// A user builder: on their own by default, or `.org(&org)`.
    pub fn user(self) -> UserBuilder<'e> {
        UserBuilder::new(self.env())
    }

    /// An outage of `product` (a key of the catalog): its mock fails every request in a window
    /// of the test clock; give its end with `.until(..)` or `.lasting(..)`, then `.create()`.
    pub fn outage(self, product: impl Into<String>) -> OutageBuilder<'e> {
        OutageBuilder::new(self.env(), product.into())
    }
}
