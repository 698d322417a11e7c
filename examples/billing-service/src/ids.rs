//! The ids of the service's rows, as newtypes over the database's `bigint`, below every module
//! that names them; [`crate::service`] re-exports them, where the API has them.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A customer's id.
    CustomerId
);
id!(
    /// A subscription's id.
    SubscriptionId
);
id!(
    /// An invoice's id.
    InvoiceId
);
id!(
    /// An organization's id.
    OrganizationId
);
id!(
    /// A user's id.
    UserId
);
