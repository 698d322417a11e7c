//! The catalog and dates the benchmarks share.

use std::collections::BTreeMap;

use billing_harness::calendar::Calendar;
use billing_harness::model::{Catalog, Currency, Overage, Plan, Terms};
use chrono::{DateTime, NaiveDate, Utc};

/// The start of a day in the platform's calendar (Asia/Seoul).
pub(crate) fn seoul(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(y, m, d).expect("the benchmarks name valid days");
    Calendar::platform().start_of_day(day)
}

/// Two plans of the analytics product, as in the scenario format's example.
pub(crate) fn catalog() -> Catalog {
    let plan = |key: &str, base_fee: i64, included: u64, price: i64| Plan {
        key: key.into(),
        product: "analytics".into(),
        currency: Currency::Krw,
        terms: Terms {
            base_fee: base_fee.into(),
            included: BTreeMap::from([("api_calls".to_owned(), included)]),
            overage: BTreeMap::from([(
                "api_calls".to_owned(),
                Overage {
                    block: 1000,
                    price: price.into(),
                },
            )]),
        },
        limits: BTreeMap::from([("seats".to_owned(), 10)]),
    };
    Catalog::new(vec![
        plan("pro", 99_000, 100_000, 500),
        plan("business", 290_000, 1_000_000, 300),
    ])
}
