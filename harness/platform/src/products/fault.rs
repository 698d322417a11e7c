//! The faults a product mock can put on a write: scripted for the next requests, drawn from a
//! seeded probability, so that a failing run replays exactly, or an outage: a window of the
//! platform's clock in which every request fails.

use std::collections::VecDeque;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What goes wrong with one write to a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// `500 Internal Server Error`; nothing applied.
    Status500,
    /// `503 Service Unavailable`; nothing applied.
    Status503,
    /// Applied and answered, after a delay shorter than the client's limit.
    Delay,
    /// Held past the client's limit; nothing applied.
    Timeout,
    /// The connection is reset before anything is applied.
    Reset,
    /// Applied, then the connection is reset: the reply is lost.
    ReplyLost,
    /// Applied, and delivered a second time (the network duplicated it).
    Duplicate,
}

impl Fault {
    /// Every fault, in the order of their names in scenario files.
    pub const ALL: [Fault; 7] = [
        Fault::Status500,
        Fault::Status503,
        Fault::Delay,
        Fault::Timeout,
        Fault::Reset,
        Fault::ReplyLost,
        Fault::Duplicate,
    ];

    /// Its name in scenario files and reports: `status_500`, `reply_lost`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Status500 => "status_500",
            Fault::Status503 => "status_503",
            Fault::Delay => "delay",
            Fault::Timeout => "timeout",
            Fault::Reset => "reset",
            Fault::ReplyLost => "reply_lost",
            Fault::Duplicate => "duplicate",
        }
    }

    /// The faults that fail a request and apply nothing, as a product that is down does: the
    /// faults an [`Outage`] may use.
    pub const FAILING: [Fault; 4] = [
        Fault::Status500,
        Fault::Status503,
        Fault::Timeout,
        Fault::Reset,
    ];

    /// The fault named `name`.
    pub fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Whether it fails the request without applying anything (one of [`Fault::FAILING`]).
    pub fn fails(self) -> bool {
        Fault::FAILING.contains(&self)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fault, D::Error> {
        let name = String::deserialize(d)?;
        Fault::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("no fault is named {name:?}")))
    }
}

/// A product down for a while: every request sent within `[from, until)` of the platform's
/// clock (the request's `Sync-Sent-At`, see [`super::api::SENT_AT`]) fails with one fault, writes
/// and read-backs alike; outside the window the product answers as usual. Made by
/// [`Outage::new`], which refuses an empty window and a fault that applies the write.
///
/// ```
/// use billing_platform::products::{Fault, Outage};
/// use chrono::{TimeDelta, TimeZone, Utc};
///
/// let from = Utc.with_ymd_and_hms(2026, 10, 10, 1, 0, 0).unwrap();
/// let outage = Outage::new(from, from + TimeDelta::hours(2), Fault::Status503).unwrap();
/// assert!(outage.covers(from) && !outage.covers(from + TimeDelta::hours(2)));
/// assert!(Outage::new(from, from, Fault::Reset).is_err(), "an empty window");
/// assert!(Outage::new(from, from + TimeDelta::hours(1), Fault::Duplicate).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OutageFields")]
pub struct Outage {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    fault: Fault,
}

/// Why an outage cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutageError {
    /// It would end before it starts, or when it starts.
    #[error("an outage must end after it starts, not from {from} until {until}")]
    Empty {
        /// Its start.
        from: DateTime<Utc>,
        /// Its end.
        until: DateTime<Utc>,
    },
    /// Its fault applies the write: a product that is down applies nothing.
    #[error(
        "an outage's fault must fail the request and apply nothing (status_500, status_503, \
         timeout or reset), not {0}"
    )]
    Applies(Fault),
}

/// An outage as its JSON carries it, checked into an [`Outage`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutageFields {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    fault: Fault,
}

impl TryFrom<OutageFields> for Outage {
    type Error = OutageError;

    fn try_from(f: OutageFields) -> Result<Outage, OutageError> {
        Outage::new(f.from, f.until, f.fault)
    }
}

impl Outage {
    /// The product is down from `from` (included) until `until` (excluded), every request in
    /// that window failing with `fault`.
    ///
    /// # Errors
    /// [`OutageError::Empty`] unless `from` is before `until`; [`OutageError::Applies`] for a
    /// fault outside [`Fault::FAILING`].
    pub fn new(
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        fault: Fault,
    ) -> Result<Outage, OutageError> {
        if from >= until {
            return Err(OutageError::Empty { from, until });
        }
        if !fault.fails() {
            return Err(OutageError::Applies(fault));
        }
        Ok(Outage { from, until, fault })
    }

    /// When it starts.
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// When it ends: the first instant the product answers again.
    pub fn until(&self) -> DateTime<Utc> {
        self.until
    }

    /// How each request in it fails.
    pub fn fault(&self) -> Fault {
        self.fault
    }

    /// How long it lasts.
    pub fn length(&self) -> TimeDelta {
        self.until - self.from
    }

    /// Whether a request sent at `at` falls in it.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.until
    }
}

/// Which faults come next: an outage over everything, else a script first, then draws at a rate
/// from a seeded stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultPlan {
    script: VecDeque<Fault>,
    rate: f64,
    stream: u64,
    outages: Vec<Outage>,
}

impl FaultPlan {
    /// Adds `outage`.
    pub(crate) fn outage(&mut self, outage: Outage) {
        self.outages.push(outage);
    }

    /// Ends every fault: the script, the draws and the outages.
    pub(crate) fn clear(&mut self) {
        *self = FaultPlan::default();
    }

    /// The fault of the outage a request sent at `at` falls in, if any; a request that does not
    /// say when it was sent is in none.
    pub(crate) fn down(&self, at: Option<DateTime<Utc>>) -> Option<Fault> {
        let at = at?;
        self.outages
            .iter()
            .find(|o| o.covers(at))
            .map(Outage::fault)
    }

    /// Appends `fault` for the next `times` writes after those already scripted.
    pub(crate) fn script(&mut self, fault: Fault, times: u32) {
        self.script
            .extend(std::iter::repeat_n(fault, times as usize));
    }

    /// Draws a fault for each unscripted write with probability `rate`, from `seed`.
    pub(crate) fn draw(&mut self, rate: f64, seed: u64) {
        self.rate = rate.clamp(0.0, 1.0);
        self.stream = seed;
    }

    /// The fault for the next write, if any.
    pub(crate) fn next(&mut self) -> Option<Fault> {
        if let Some(fault) = self.script.pop_front() {
            return Some(fault);
        }
        if self.rate <= 0.0 {
            return None;
        }
        let roll = splitmix(&mut self.stream);
        // 53 random bits as a fraction in [0, 1).
        #[expect(
            clippy::cast_precision_loss,
            reason = "53 bits fit an f64's mantissa exactly"
        )]
        let unit = (roll >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= self.rate {
            return None;
        }
        let pick = splitmix(&mut self.stream) % Fault::ALL.len() as u64;
        Fault::ALL.get(usize::try_from(pick).unwrap_or(0)).copied()
    }
}

/// One step of SplitMix64: a small, fast, seeded stream, the same on every machine.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_covers_its_window_and_leaves_the_script_for_after() {
        let from = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let mut plan = FaultPlan::default();
        plan.script(Fault::Reset, 1);
        plan.outage(Outage::new(from, from + TimeDelta::hours(2), Fault::Timeout).unwrap());
        assert_eq!(plan.down(Some(from - TimeDelta::milliseconds(1))), None);
        assert_eq!(plan.down(Some(from)), Some(Fault::Timeout));
        assert_eq!(
            plan.down(Some(
                from + TimeDelta::hours(2) - TimeDelta::microseconds(1)
            )),
            Some(Fault::Timeout)
        );
        assert_eq!(
            plan.down(Some(from + TimeDelta::hours(2))),
            None,
            "until is out"
        );
        assert_eq!(
            plan.down(None),
            None,
            "a request without its time is in none"
        );
        assert_eq!(plan.next(), Some(Fault::Reset), "the script is still there");
        plan.draw(1.0, 3);
        plan.clear();
        assert_eq!((plan.down(Some(from)), plan.next()), (None, None));
        for fault in Fault::ALL {
            let outage = Outage::new(from, from + TimeDelta::hours(1), fault);
            assert_eq!(outage.is_ok(), fault.fails(), "{fault}");
        }
        let json = serde_json::json!({"from": from, "until": from, "fault": "reset"});
        assert!(
            serde_json::from_value::<Outage>(json).is_err(),
            "checked when read too"
        );
    }

    #[test]
    fn names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.as_str()), Some(f));
        }
        assert_eq!(Fault::parse("status_404"), None);
    }

    #[test]
    fn names_show_and_serialize_as_in_scenario_files() {
        assert_eq!(Fault::ReplyLost.to_string(), "reply_lost");
        assert_eq!(
            serde_json::to_string(&Fault::Status503).unwrap(),
            r#""status_503""#
        );
        assert_eq!(
            serde_json::from_str::<Fault>(r#""duplicate""#).unwrap(),
            Fault::Duplicate
        );
        assert!(serde_json::from_str::<Fault>(r#""status_404""#).is_err());
    }

    /// SplitMix64's reference outputs from a state of 0: the same stream on every machine.
    #[test]
    fn the_stream_is_splitmix64() {
        let mut state = 0;
        let first: Vec<u64> = (0..3).map(|_| splitmix(&mut state)).collect();
        assert_eq!(
            first,
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F
            ]
        );
    }

    /// A seed draws the same faults in the same order everywhere: a failing run replays.
    #[test]
    fn a_seed_draws_these_faults() {
        let mut plan = FaultPlan::default();
        plan.draw(0.5, 7);
        let drawn: Vec<Option<Fault>> = (0..8).map(|_| plan.next()).collect();
        assert_eq!(
            drawn,
            [
                Some(Fault::Timeout),
                None,
                None,
                Some(Fault::Duplicate),
                Some(Fault::Status500),
                Some(Fault::Status500),
                Some(Fault::Status503),
                None
            ]
        );
    }

    #[test]
    fn the_script_comes_first_then_draws_at_the_rate() {
        let mut plan = FaultPlan::default();
        plan.script(Fault::Reset, 2);
        plan.script(Fault::Delay, 1);
        assert_eq!(plan.next(), Some(Fault::Reset));
        assert_eq!(plan.next(), Some(Fault::Reset));
        assert_eq!(plan.next(), Some(Fault::Delay));
        assert_eq!(plan.next(), None);
        plan.draw(0.3, 7);
        let drawn = (0..10_000).filter(|_| plan.next().is_some()).count();
        assert!((2_700..3_300).contains(&drawn), "{drawn} of 10000 at 0.3");
        let mut again = FaultPlan::default();
        again.draw(0.3, 7);
        let mut other = FaultPlan::default();
        other.draw(0.3, 7);
        let a: Vec<_> = (0..50).map(|_| again.next()).collect();
        let b: Vec<_> = (0..50).map(|_| other.next()).collect();
        assert_eq!(a, b, "the same seed draws the same faults");
        plan.draw(1.0, 1);
        assert!((0..100).all(|_| plan.next().is_some()));
    }
}
