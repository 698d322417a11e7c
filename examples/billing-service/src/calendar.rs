//! The billing calendar: days are calendar days in Asia/Seoul, and the billing period is a
//! calendar month of them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

/// The time zone whose calendar days the service bills by.
pub const TIME_ZONE: Tz = chrono_tz::Asia::Seoul;

/// The Seoul calendar day `at` falls on.
pub fn local_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&TIME_ZONE).date_naive()
}

/// The instant `day` starts in Seoul (Seoul has no daylight-saving time, so 00:00 exists).
pub fn start_of_day(day: NaiveDate) -> DateTime<Utc> {
    TIME_ZONE
        .from_local_datetime(&day.and_time(NaiveTime::MIN))
        .earliest()
        .map_or_else(
            || Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN)),
            |t| t.with_timezone(&Utc),
        )
}

/// A calendar month: the billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    first: NaiveDate,
}

impl Month {
    /// Month `month` (1 to 12) of `year`; `None` out of range.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        NaiveDate::from_ymd_opt(year, month, 1).map(|first| Month { first })
    }

    /// The month `day` is in.
    pub fn of(day: NaiveDate) -> Month {
        Month {
            first: day.with_day(1).unwrap_or(day),
        }
    }

    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        self.first
    }

    /// The first day of the next month: the end of this one, exclusive.
    pub fn end(self) -> NaiveDate {
        self.first
            .checked_add_months(Months::new(1))
            .unwrap_or(NaiveDate::MAX)
    }

    /// Its number of days, 28 to 31.
    pub fn days(self) -> u32 {
        u32::try_from((self.end() - self.first).num_days()).unwrap_or(0)
    }

    /// The month before this one.
    pub fn prev(self) -> Month {
        Month::of(self.first.pred_opt().unwrap_or(self.first))
    }

    /// The month after this one.
    pub fn next(self) -> Month {
        Month { first: self.end() }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.first.year(), self.first.month())
    }
}

impl FromStr for Month {
    type Err = String;

    /// Parses `YYYY-MM`.
    fn from_str(s: &str) -> Result<Month, String> {
        let bad = || format!("{s:?} is not a month (expected YYYY-MM)");
        let (year, month) = s.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let (year, month) = (
            year.parse().map_err(|_| bad())?,
            month.parse().map_err(|_| bad())?,
        );
        Month::new(year, month).ok_or_else(bad)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_know_their_length_and_parse_their_display() {
        for (text, days) in [
            ("2026-10", 31),
            ("2026-11", 30),
            ("2027-02", 28),
            ("2028-02", 29),
        ] {
            let month: Month = text.parse().unwrap();
            assert_eq!((month.to_string(), month.days()), (text.to_owned(), days));
        }
        assert_eq!(
            "2026-12".parse::<Month>().unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(
            "2027-01".parse::<Month>().unwrap().prev().to_string(),
            "2026-12"
        );
        assert!("2026-13".parse::<Month>().is_err());
    }

    #[test]
    fn a_day_is_a_seoul_day() {
        // 15:00 UTC on October 31 is 00:00 on November 1 in Seoul.
        let at = Utc.with_ymd_and_hms(2026, 10, 31, 15, 0, 0).unwrap();
        assert_eq!(local_day(at), NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!(start_of_day(local_day(at)), at);
    }
}
