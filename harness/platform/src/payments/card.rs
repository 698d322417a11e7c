//! Test cards: how a card behaves at the mock gateway, chosen by name or by card number.

use std::fmt;
use std::str::FromStr;

/// A scripted test card.
///
/// | name | card number | every charge |
/// |---|---|---|
/// | `ok` | 4242 4242 4242 4242 | succeeds |
/// | `declined` | 4000 0000 0000 0002 | is declined (`declined`) |
/// | `insufficient_funds` | 4000 0000 0000 9995 | is declined (`insufficient_funds`) |
/// | `expired` | 4000 0000 0000 0069 | is declined (`expired_card`) |
/// | `fail_times:N` | 4000 0000 0000 10NN | fails for the first N charges on the card, then succeeds |
/// | `timeout` | 4000 0000 0000 0119 | is approved, but the reply is lost |
///
/// The billing key the mock issues for a card carries its script (as Stripe's test payment
/// methods do), so the gateway needs no other state to know how a card behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestCard {
    /// Charges succeed.
    Ok,
    /// Charges are declined.
    Declined,
    /// Charges are declined for insufficient funds.
    InsufficientFunds,
    /// Charges are declined: the card expired.
    Expired,
    /// The first N charges on the card fail, then they succeed.
    FailTimes(u32),
    /// The gateway approves and captures, but the reply is lost on the way back.
    Timeout,
}

impl TestCard {
    /// The card number that selects this script.
    pub fn number(self) -> String {
        match self {
            TestCard::Ok => "4242424242424242".into(),
            TestCard::Declined => "4000000000000002".into(),
            TestCard::InsufficientFunds => "4000000000009995".into(),
            TestCard::Expired => "4000000000000069".into(),
            TestCard::FailTimes(n) => format!("40000000000010{:02}", n.min(99)),
            TestCard::Timeout => "4000000000000119".into(),
        }
    }

    /// The last four digits of its number.
    pub fn last4(self) -> String {
        let number = self.number();
        number[number.len() - 4..].to_owned()
    }

    fn from_number(digits: &str) -> Option<TestCard> {
        [
            TestCard::Ok,
            TestCard::Declined,
            TestCard::InsufficientFunds,
            TestCard::Expired,
            TestCard::Timeout,
        ]
        .into_iter()
        .find(|c| c.number() == digits)
        .or_else(|| {
            let n = digits.strip_prefix("40000000000010")?;
            (n.len() == 2).then(|| n.parse().ok().map(TestCard::FailTimes))?
        })
    }
}

impl fmt::Display for TestCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestCard::Ok => f.write_str("ok"),
            TestCard::Declined => f.write_str("declined"),
            TestCard::InsufficientFunds => f.write_str("insufficient_funds"),
            TestCard::Expired => f.write_str("expired"),
            TestCard::FailTimes(n) => write!(f, "fail_times:{n}"),
            TestCard::Timeout => f.write_str("timeout"),
        }
    }
}

impl FromStr for TestCard {
    type Err = String;

    /// A name (`declined`, `fail_times:2`) or a card number (spaces and dashes allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = "ok, declined, insufficient_funds, expired, fail_times:N, timeout, or a test card number";
        match s.trim() {
            "ok" => Ok(TestCard::Ok),
            "declined" => Ok(TestCard::Declined),
            "insufficient_funds" => Ok(TestCard::InsufficientFunds),
            "expired" => Ok(TestCard::Expired),
            "timeout" => Ok(TestCard::Timeout),
            other => {
                if let Some(n) = other.strip_prefix("fail_times:") {
                    return n.parse().map(TestCard::FailTimes).map_err(|_| {
                        format!("{other:?}: N in fail_times:N must be a whole number")
                    });
                }
                let digits: String = other.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
                TestCard::from_number(&digits)
                    .ok_or_else(|| format!("unknown test card {other:?} (expected {known})"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TestCard;

    #[test]
    fn cards_parse_by_name_and_by_number_and_print_their_name() {
        for card in [
            TestCard::Ok,
            TestCard::Declined,
            TestCard::InsufficientFunds,
            TestCard::Expired,
            TestCard::FailTimes(2),
            TestCard::Timeout,
        ] {
            assert_eq!(card.to_string().parse::<TestCard>(), Ok(card));
            assert_eq!(card.number().parse::<TestCard>(), Ok(card));
        }
        assert_eq!("4000 0000 0000 1003".parse(), Ok(TestCard::FailTimes(3)));
        assert_eq!("4242-4242-4242-4242".parse(), Ok(TestCard::Ok));
        assert!(
            "visa"
                .parse::<TestCard>()
                .unwrap_err()
                .contains("unknown test card \"visa\"")
        );
        assert!("fail_times:x".parse::<TestCard>().is_err());
    }
}
