//! The platform's calendar: its time zone, charge day and retry days, and the one definition of
//! "which local day is this instant", "when does a local day start" and "which jobs fall due".
//!
//! Pure: no clock, no database. The platform reads it from its settings, the builders and
//! scenarios turn dates into instants with it, and the test clock asks it where to stop.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use std::str::FromStr;

use serde::Serialize;

/// The platform's time zone when a catalog names none: billing days are calendar days in Seoul.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Seoul;

/// The calendar day (in `time_zone`) that `at` falls on.
///
/// ```
/// use billing_platform::calendar::local_day;
/// use chrono::{NaiveDate, TimeZone, Utc};
///
/// // 16:00 UTC on October 31 is already 01:00 on November 1 in Seoul.
/// let at = Utc.with_ymd_and_hms(2025, 10, 31, 16, 0, 0).unwrap();
/// assert_eq!(local_day(chrono_tz::Asia::Seoul, at), NaiveDate::from_ymd_opt(2025, 11, 1).unwrap());
/// ```
pub fn local_day(time_zone: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&time_zone).date_naive()
}

/// The instant `day` starts in `time_zone`: its first existing instant. That is its 00:00, the
/// first of the two 00:00s when a change back repeats midnight, or the instant of the change
/// when a daylight-saving change skips midnight (in Santiago on 2025-09-07 the clocks go from
/// 00:00 to 01:00, so the day starts at 01:00 local, 04:00 UTC).
///
/// ```
/// use billing_platform::calendar::start_of_day;
/// use chrono::{NaiveDate, TimeZone, Utc};
///
/// let day = NaiveDate::from_ymd_opt(2025, 11, 1).unwrap();
/// assert_eq!(
///     start_of_day(chrono_tz::Asia::Seoul, day),
///     Utc.with_ymd_and_hms(2025, 10, 31, 15, 0, 0).unwrap(),
/// );
/// ```
pub fn start_of_day(time_zone: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    match time_zone.from_local_datetime(&midnight).earliest() {
        Some(start) => start.with_timezone(&Utc),
        None => start_after_gap(time_zone, midnight),
    }
}

/// The instant the local wall time `at` names in `time_zone`: the earlier of the two when a
/// change back repeats it, `None` when a change forward skips it.
///
/// ```
/// use billing_platform::calendar::local_instant;
/// use chrono::{NaiveDate, TimeZone, Utc};
///
/// let at = NaiveDate::from_ymd_opt(2026, 10, 10).unwrap().and_hms_opt(9, 30, 0).unwrap();
/// assert_eq!(
///     local_instant(chrono_tz::Asia::Seoul, at),
///     Some(Utc.with_ymd_and_hms(2026, 10, 10, 0, 30, 0).unwrap())
/// );
/// let skipped = NaiveDate::from_ymd_opt(2025, 9, 7).unwrap().and_hms_opt(0, 30, 0).unwrap();
/// assert_eq!(local_instant(chrono_tz::America::Santiago, skipped), None);
/// ```
pub fn local_instant(time_zone: Tz, at: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    time_zone
        .from_local_datetime(&at)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The first instant of a day whose midnight falls in a gap: the instant of the change, which
/// is midnight read in the offset in force just before it (the offset of the previous evening).
fn start_after_gap(time_zone: Tz, midnight: chrono::NaiveDateTime) -> DateTime<Utc> {
    // A gap is at most a few hours long, so the evening before has an offset of its own; the
    // dates a calendar can hold have a day before.
    let evening = midnight - chrono::TimeDelta::hours(12);
    let before = time_zone
        .from_local_datetime(&evening)
        .earliest()
        .map_or(0, |t| i64::from(t.offset().fix().local_minus_utc()));
    Utc.from_utc_datetime(&(midnight - chrono::TimeDelta::seconds(before)))
}

/// A scheduled job of the platform, as the calendar names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "job", content = "month", rename_all = "snake_case")]
pub enum Job {
    /// Finalise a month: due at the start of the 1st of the next one.
    Close(Month),
    /// Charge every finalised invoice: due at the start of the charge day.
    Charge,
    /// Retry every past-due invoice with attempts left: due at the start of every day.
    Retry,
    /// Reconcile every product with the platform: re-queue what waits for a product that answers
    /// and repair what differs. Due at the start of every day, after the retries.
    Reconcile,
    /// Deliver the product sync rows that are due: not on the calendar, but whenever a row's
    /// time comes (see [`crate::clock::Jobs::next_due`]).
    Sync,
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Job::Close(month) => write!(f, "close of {month}"),
            Job::Charge => f.write_str("charge"),
            Job::Retry => f.write_str("retries"),
            Job::Reconcile => f.write_str("reconcile"),
            Job::Sync => f.write_str("product sync"),
        }
    }
}

/// Why a calendar could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The charge day must exist in every month and fall after the close on the 1st.
    #[error("charge day {0} is outside 2 to 28")]
    ChargeDay(u32),
    /// Not an IANA time zone name.
    #[error("unknown time zone {0:?} (expected an IANA name such as \"Asia/Seoul\")")]
    TimeZone(String),
}

/// The platform's calendar: where days begin, and which jobs fall due on which day.
///
/// ```
/// use billing_platform::calendar::{Calendar, Job};
/// use billing_platform::model::Month;
///
/// let cal = Calendar::platform();
/// let first = cal.start_of_day("2026-11-01".parse().unwrap());
/// assert_eq!(
///     cal.jobs_due(first),
///     [Job::Close(Month::new(2026, 10).unwrap()), Job::Retry, Job::Reconcile]
/// );
/// let fifth = cal.start_of_day("2026-11-05".parse().unwrap());
/// assert_eq!(cal.jobs_due(fifth), [Job::Charge, Job::Retry, Job::Reconcile]);
/// // Only the start of a day has jobs.
/// assert!(cal.jobs_due(fifth + chrono::TimeDelta::hours(1)).is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    time_zone: Tz,
    charge_day: u32,
    retries: u32,
}

impl Calendar {
    /// Daily retries after a failed charge before the subscription is cancelled.
    pub const RETRIES: u32 = 3;

    /// A calendar in `time_zone` that charges on `charge_day` of the month (2 to 28) and retries
    /// a failed charge on each of the [`Calendar::RETRIES`] days after.
    ///
    /// # Errors
    /// [`CalendarError::ChargeDay`] for a day outside 2 to 28.
    pub fn new(time_zone: Tz, charge_day: u32) -> Result<Calendar, CalendarError> {
        if !(2..=28).contains(&charge_day) {
            return Err(CalendarError::ChargeDay(charge_day));
        }
        Ok(Calendar {
            time_zone,
            charge_day,
            retries: Self::RETRIES,
        })
    }

    /// [`Calendar::new`] from a time zone's name, as stored in the settings.
    ///
    /// # Errors
    /// An unknown time zone or a charge day outside 2 to 28.
    pub fn parse(time_zone: &str, charge_day: u32) -> Result<Calendar, CalendarError> {
        let tz = time_zone
            .parse()
            .map_err(|_| CalendarError::TimeZone(time_zone.to_owned()))?;
        Calendar::new(tz, charge_day)
    }

    /// The platform's documented calendar: Asia/Seoul, charged on the 5th, three daily retries.
    pub fn platform() -> Calendar {
        Calendar {
            time_zone: DEFAULT_TIME_ZONE,
            charge_day: 5,
            retries: Self::RETRIES,
        }
    }

    /// The time zone whose calendar days are billed.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The day of the month finalised invoices are charged.
    pub fn charge_day(&self) -> u32 {
        self.charge_day
    }

    /// Daily retries after a failed charge.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Charge attempts per invoice: the charge and its retries.
    pub fn attempts(&self) -> u32 {
        self.retries + 1
    }

    /// The local day of `at` (see [`local_day`]).
    pub fn local_day(&self, at: DateTime<Utc>) -> NaiveDate {
        local_day(self.time_zone, at)
    }

    /// The instant `day` starts (see [`start_of_day`]).
    pub fn start_of_day(&self, day: NaiveDate) -> DateTime<Utc> {
        start_of_day(self.time_zone, day)
    }

    /// The start of the local day after the one `at` falls on: the next instant a job can be due.
    pub fn next_day_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let day = self.local_day(at);
        // Dates end in the year 262143; a clock never gets there.
        self.start_of_day(day.succ_opt().unwrap_or(day))
    }

    /// The day `month`'s invoices are charged on: the charge day of the month after.
    pub fn charge_date(&self, month: Month) -> NaiveDate {
        let next = month.next().first_day();
        next.with_day(self.charge_day).unwrap_or(next)
    }

    /// The jobs due at `at`, in the order they run: at the start of a day, the close of the
    /// previous month on the 1st, the charge on the charge day, and the retries and the product
    /// reconcile every day. Other instants have none.
    pub fn jobs_due(&self, at: DateTime<Utc>) -> Vec<Job> {
        let day = self.local_day(at);
        if self.start_of_day(day) != at {
            return Vec::new();
        }
        let mut jobs = Vec::new();
        if day.day() == 1 {
            jobs.push(Job::Close(Month::of(day).prev()));
        }
        if day.day() == self.charge_day {
            jobs.push(Job::Charge);
        }
        jobs.push(Job::Retry);
        jobs.push(Job::Reconcile);
        jobs
    }

    /// Every instant in `(after, until]` at which jobs are due, with those jobs, in time order.
    pub fn due_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, Vec<Job>)> {
        let mut due = Vec::new();
        let mut at = self.next_day_start(after);
        while at <= until {
            due.push((at, self.jobs_due(at)));
            let next = self.next_day_start(at);
            if next <= at {
                break;
            }
            at = next;
        }
        due
    }
}

/// A calendar month, the billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// The month `month` (1 to 12) of `year`; `None` for a month out of range.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        NaiveDate::from_ymd_opt(year, month, 1).map(|_| Month { year, month })
    }

    /// The month that contains `day`.
    pub fn of(day: NaiveDate) -> Month {
        Month {
            year: day.year(),
            month: day.month(),
        }
    }

    /// Its year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// Its month number, 1 to 12.
    pub fn month(self) -> u32 {
        self.month
    }

    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .expect("a Month is only made from a valid year and month")
    }

    /// The first day of the next month: the end (exclusive) of this one.
    pub fn end(self) -> NaiveDate {
        self.next().first_day()
    }

    /// How many days it has: 28 to 31.
    pub fn days(self) -> u32 {
        self.end()
            .signed_duration_since(self.first_day())
            .num_days()
            .unsigned_abs() as u32
    }

    /// The month after.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before.
    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Whether `day` falls in it.
    pub fn contains(self, day: NaiveDate) -> bool {
        Month::of(day) == self
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = String;

    /// Parses `YYYY-MM`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a month (expected YYYY-MM)");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        Month::new(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?).ok_or_else(bad)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_at_the_change() {
        // Santiago moves from -04 to -03 at 00:00 on 2025-09-07: that day has no 00:00.
        let santiago = chrono_tz::America::Santiago;
        let start = start_of_day(santiago, day("2025-09-07"));
        assert_eq!(start, Utc.with_ymd_and_hms(2025, 9, 7, 4, 0, 0).unwrap());
        assert_eq!(local_day(santiago, start), day("2025-09-07"));
        assert_eq!(
            local_day(santiago, start - chrono::TimeDelta::seconds(1)),
            day("2025-09-06")
        );
        // The day before and after start at their own midnights.
        assert_eq!(
            start_of_day(santiago, day("2025-09-06")),
            Utc.with_ymd_and_hms(2025, 9, 6, 4, 0, 0).unwrap()
        );
        assert_eq!(
            start_of_day(santiago, day("2025-09-08")),
            Utc.with_ymd_and_hms(2025, 9, 8, 3, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_day_whose_midnight_repeats_starts_at_the_first() {
        // Santiago moves back from -03 to -04 at 00:00 on 2025-04-06: 23:00 to 00:00 comes twice
        // on the 5th, and the 6th starts at the first 00:00 after it, once.
        let santiago = chrono_tz::America::Santiago;
        let start = start_of_day(santiago, day("2025-04-06"));
        assert_eq!(local_day(santiago, start), day("2025-04-06"));
        assert_eq!(
            local_day(santiago, start - chrono::TimeDelta::seconds(1)),
            day("2025-04-05")
        );
    }

    /// Every zone chrono-tz knows, every day from 2020 to 2035: each day starts on itself, at an
    /// instant the day before does not reach, and later than the day before started.
    #[test]
    fn every_zone_starts_every_day_once_and_in_order() {
        let first = day("2020-01-01");
        let last = day("2035-12-31");
        let mut bad = Vec::new();
        for zone in chrono_tz::TZ_VARIANTS {
            let mut previous = start_of_day(zone, first.pred_opt().unwrap());
            let mut d = first;
            while d <= last {
                let start = start_of_day(zone, d);
                let ok = start > previous
                    && local_day(zone, start) == d
                    && local_day(zone, start - chrono::TimeDelta::seconds(1)) < d;
                if !ok && bad.len() < 10 {
                    bad.push(format!(
                        "{zone} {d}: starts {start}, the day before {previous}"
                    ));
                }
                previous = start;
                d = d.succ_opt().unwrap();
            }
        }
        assert!(
            bad.is_empty(),
            "days that do not start once:\n{}",
            bad.join("\n")
        );
    }

    /// In every zone, a year of `due_between` lists every local day once, the close on every
    /// 1st, the charge on every charge day and the retries every day.
    #[test]
    fn due_between_lists_every_job_of_a_year_once_in_every_zone() {
        for zone in chrono_tz::TZ_VARIANTS {
            let cal = Calendar::new(zone, 5).unwrap();
            let due = cal.due_between(
                cal.start_of_day(day("2025-01-01")),
                cal.start_of_day(day("2026-01-01")),
            );
            let days: Vec<NaiveDate> = due.iter().map(|(at, _)| cal.local_day(*at)).collect();
            let expected: Vec<NaiveDate> = day("2025-01-02")
                .iter_days()
                .take_while(|d| *d <= day("2026-01-01"))
                .collect();
            assert_eq!(days, expected, "{zone}: the days visited");
            let count = |job: Job| due.iter().filter(|(_, jobs)| jobs.contains(&job)).count();
            let closes = due
                .iter()
                .filter(|(_, jobs)| jobs.iter().any(|j| matches!(j, Job::Close(_))))
                .count();
            assert_eq!(closes, 12, "{zone}: closes");
            assert_eq!(count(Job::Charge), 12, "{zone}: charges");
            assert_eq!(count(Job::Retry), 365, "{zone}: retry days");
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a test date")
    }

    #[test]
    fn a_local_day_starts_at_midnight_in_its_zone() {
        let cal = Calendar::platform();
        let start = cal.start_of_day(day("2026-03-01"));
        assert_eq!(start.to_rfc3339(), "2026-02-28T15:00:00+00:00");
        assert_eq!(cal.local_day(start), day("2026-03-01"));
        assert_eq!(
            cal.local_day(start - chrono::TimeDelta::seconds(1)),
            day("2026-02-28")
        );
    }

    #[test]
    fn due_between_lists_every_day_start_in_the_half_open_range() {
        let cal = Calendar::platform();
        let from = cal.start_of_day(day("2026-10-31"));
        let until = cal.start_of_day(day("2026-11-05"));
        let due = cal.due_between(from, until);
        let days: Vec<NaiveDate> = due.iter().map(|(at, _)| cal.local_day(*at)).collect();
        assert_eq!(
            days,
            [
                "2026-11-01",
                "2026-11-02",
                "2026-11-03",
                "2026-11-04",
                "2026-11-05"
            ]
            .map(day)
        );
        assert_eq!(
            due[0].1[0],
            Job::Close(Month::new(2026, 10).expect("a month"))
        );
        assert_eq!(due[4].1, [Job::Charge, Job::Retry, Job::Reconcile]);
    }

    #[test]
    fn the_charge_day_is_checked() {
        assert_eq!(
            Calendar::new(DEFAULT_TIME_ZONE, 1),
            Err(CalendarError::ChargeDay(1))
        );
        assert_eq!(
            Calendar::new(DEFAULT_TIME_ZONE, 29),
            Err(CalendarError::ChargeDay(29))
        );
        assert!(Calendar::new(DEFAULT_TIME_ZONE, 28).is_ok());
        assert!(Calendar::parse("Mars/Olympus", 5).is_err());
    }

    #[test]
    fn jobs_are_named_for_people() {
        let month = Month::new(2026, 11).expect("a month");
        assert_eq!(Job::Close(month).to_string(), "close of 2026-11");
        assert_eq!(Job::Charge.to_string(), "charge");
    }
}
