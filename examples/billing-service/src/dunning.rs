//! The dunning rules, as pure functions: what one charge attempt does to its invoice and its
//! subscription, and which past-due invoices are retried on a day. No database, no clock:
//! [`crate::BillingService`] applies them.
//!
//! The rules are the reference platform's:
//! - the charge on the [`CHARGE_DAY`] of the month after the invoiced one is attempt 1;
//! - a failed attempt makes the invoice `past_due` (and an `active` subscription `past_due`);
//! - a `past_due` invoice is retried once a day, on each of the following days, up to
//!   [`ATTEMPTS`] attempts in all;
//! - when the last attempt fails the invoice is `uncollectible` and the subscription is
//!   cancelled from that day (the day itself is not billed);
//! - a successful attempt makes the invoice `paid` and a subscription not cancelled `active`.
//!
//! There is no weekend or holiday rule: the charge day is the 5th whatever weekday it is.

use chrono::{Datelike, NaiveDate};

/// The day of the month the previous month's invoices are charged.
pub const CHARGE_DAY: u32 = 5;

/// Charge attempts per invoice: the charge and three daily retries.
pub const ATTEMPTS: u8 = 4;

/// What an attempt makes of its invoice (and so of its subscription).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consequence {
    /// Captured: the invoice is paid; a subscription not cancelled is active again.
    Paid,
    /// Not captured, attempts left: invoice past due; an active subscription past due.
    PastDue,
    /// The last attempt failed: invoice uncollectible; the subscription is cancelled today.
    Uncollectible,
}

/// The consequence of attempt `number` (1 to [`ATTEMPTS`]) when it `captured` or not.
///
/// ```
/// use example_billing_service::dunning::{after_attempt, Consequence};
///
/// assert_eq!(after_attempt(1, true), Consequence::Paid);
/// assert_eq!(after_attempt(3, false), Consequence::PastDue);
/// assert_eq!(after_attempt(4, false), Consequence::Uncollectible);
/// ```
pub fn after_attempt(number: u8, captured: bool) -> Consequence {
    if captured {
        Consequence::Paid
    } else if number < ATTEMPTS {
        Consequence::PastDue
    } else {
        Consequence::Uncollectible
    }
}

/// Whether `today` is a charge day.
pub fn is_charge_day(today: NaiveDate) -> bool {
    today.day() == CHARGE_DAY
}

/// Whether a past-due invoice with `attempts` made, the last on `last_attempt`, is retried
/// `today`: once a day, on any day after its last attempt.
///
/// ```
/// use chrono::NaiveDate;
/// use example_billing_service::dunning::retry_due;
///
/// let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
/// assert!(!retry_due(1, day(5), day(5)), "attempted today already");
/// assert!(retry_due(1, day(5), day(6)));
/// assert!(retry_due(3, day(7), day(8)));
/// assert!(!retry_due(4, day(8), day(9)), "no attempts left");
/// ```
pub fn retry_due(attempts: u8, last_attempt: NaiveDate, today: NaiveDate) -> bool {
    attempts < ATTEMPTS && last_attempt < today
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).expect("a November day")
    }

    /// A card that always fails, from the charge on the 5th: the days and numbers of the
    /// attempts, and what each makes of the invoice.
    #[test]
    fn a_card_that_always_fails_is_tried_on_four_days_in_a_row() {
        let mut attempts: Vec<(u32, u8, Consequence)> = vec![(5, 1, after_attempt(1, false))];
        for today in 6..=12 {
            let (last, made, _) = *attempts.last().expect("the charge");
            if retry_due(made, day(last), day(today)) {
                attempts.push((today, made + 1, after_attempt(made + 1, false)));
            }
        }
        assert_eq!(
            attempts,
            [
                (5, 1, Consequence::PastDue),
                (6, 2, Consequence::PastDue),
                (7, 3, Consequence::PastDue),
                (8, 4, Consequence::Uncollectible),
            ]
        );
    }

    #[test]
    fn the_charge_day_is_the_fifth_whatever_the_weekday() {
        // 2026-12-05 is a Saturday.
        let saturday = NaiveDate::from_ymd_opt(2026, 12, 5).expect("a day");
        assert_eq!(saturday.weekday(), chrono::Weekday::Sat);
        assert!(is_charge_day(saturday));
        assert!(!is_charge_day(day(6)));
    }
}
