//! Deliberately broken variants of the billing rules, compiled in only with the `flaws`
//! feature: a conformance test (the harness's scenario driver, say) runs the service with one of
//! them through [`crate::BillingService::with_flaw`] and must see its invoices or payments
//! differ from the reference platform's.

/// One deliberate deviation from the platform's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flaw {
    /// Base fee and included quota are prorated by `days / 30` instead of `days /
    /// days_in_month`: wrong in every month but those of 30 days.
    ProrateBy30Days,
    /// The retry after attempt 1 happens a day late: attempts on the charge day, then two days
    /// later, then daily (the 5th, 7th, 8th and 9th instead of the 5th to the 8th).
    RetrySkipsADay,
}
