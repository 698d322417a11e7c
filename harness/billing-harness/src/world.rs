//! One test's world, as `TestEnv` keeps it for the builders: seeded fake data, "today" in the
//! billing time zone, and the default organization once made.

use chrono::NaiveDate;
use chrono_tz::Tz;
use tokio::sync::Mutex;

use crate::fakes::{Fakes, Locale};
use crate::model::{OrgId, UserId};

/// A created organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Org {
    /// Its id.
    pub id: OrgId,
    /// Its owner, signed up with it.
    pub owner: UserId,
}

/// What the builders of one `TestEnv` share.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) fakes: Fakes,
    /// The day relative dates count from (`months_ago`, `last_month`).
    pub(crate) today: NaiveDate,
    pub(crate) tz: Tz,
    /// One organization reused by every tenant that does not ask for its own.
    pub(crate) default_org: Mutex<Option<Org>>,
    /// The product of each plan looked up so far.
    pub(crate) plan_products: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl World {
    pub(crate) fn new(seed: u64, locale: Locale, today: NaiveDate, tz: Tz) -> World {
        World {
            fakes: Fakes::new(seed, locale),
            today,
            tz,
            default_org: Mutex::new(None),
            plan_products: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}
