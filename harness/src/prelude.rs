//! Everything a test usually needs: `use billing_harness::prelude::*;` (each part with the
//! feature that brings it).

pub use crate::TestEnv;
#[cfg(feature = "builders")]
pub use crate::builders::{BuildError, Day, Locale, MonthOf, Org, Tenant};
#[cfg(feature = "domain")]
pub use crate::model::{Currency, Month, TenantId};
#[cfg(feature = "domain")]
pub use crate::payments::TestCard;
#[cfg(feature = "domain")]
pub use crate::platform::DomainError;
