//! Dates relative to the test's "today", in the billing time zone: `env.months_ago(1).day(10)`.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::calendar;
use crate::model::Month;

/// A calendar day in the billing time zone. Converts to its 00:00 there, the instant at which
/// the builders act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    date: NaiveDate,
    tz: Tz,
}

impl Day {
    /// `date` in `tz`.
    pub fn new(date: NaiveDate, tz: Tz) -> Day {
        Day { date, tz }
    }

    /// The calendar date.
    pub fn date(self) -> NaiveDate {
        self.date
    }

    /// 00:00 of the day in its time zone.
    pub fn midnight(self) -> DateTime<Utc> {
        calendar::start_of_day(self.tz, self.date)
    }

    /// The day `n` days later (earlier when negative).
    pub fn plus_days(self, n: i64) -> Day {
        Day {
            date: self.date + chrono::TimeDelta::days(n),
            tz: self.tz,
        }
    }

    /// Its month.
    pub fn month(self) -> MonthOf {
        MonthOf {
            month: Month::of(self.date),
            tz: self.tz,
        }
    }
}

impl From<Day> for DateTime<Utc> {
    fn from(day: Day) -> Self {
        day.midnight()
    }
}

impl From<Day> for NaiveDate {
    fn from(day: Day) -> Self {
        day.date
    }
}

/// A month in the billing time zone, from which days are picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthOf {
    month: Month,
    tz: Tz,
}

impl MonthOf {
    /// `month` in `tz`.
    pub fn new(month: Month, tz: Tz) -> MonthOf {
        MonthOf { month, tz }
    }

    /// The month.
    pub fn month(self) -> Month {
        self.month
    }

    /// Day `n` of the month.
    ///
    /// # Panics
    /// When the month has no day `n` (use [`MonthOf::last_day`] for the end of a month).
    pub fn day(self, n: u32) -> Day {
        let date = NaiveDate::from_ymd_opt(self.month.year(), self.month.month(), n)
            .unwrap_or_else(|| panic!("{} has no day {n}", self.month));
        Day { date, tz: self.tz }
    }

    /// Its first day.
    pub fn first_day(self) -> Day {
        self.day(1)
    }

    /// Its last day.
    pub fn last_day(self) -> Day {
        self.day(self.month.days())
    }

    /// The month `n` months earlier.
    pub fn minus(self, n: u32) -> MonthOf {
        let mut month = self.month;
        for _ in 0..n {
            month = month.prev();
        }
        MonthOf { month, tz: self.tz }
    }
}

impl From<MonthOf> for Month {
    fn from(m: MonthOf) -> Self {
        m.month
    }
}

/// The day of `at` in `tz`.
pub(crate) fn day_of(at: DateTime<Utc>, tz: Tz) -> Day {
    Day {
        date: calendar::local_day(tz, at),
        tz,
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.date)
    }
}
