//! Everything a test usually needs: `use billing_harness::prelude::*;`.

pub use crate::TestEnv;
pub use crate::builders::{BuildError, Day, Locale, MonthOf, Org, Tenant};
pub use crate::model::{Currency, Month, TenantId};
pub use crate::payments::TestCard;
pub use crate::platform::DomainError;
