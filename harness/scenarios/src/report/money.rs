//! Amounts and counts as a person reads them: `₩99,000`, `$49.99`, `322,580`.

use rust_decimal::Decimal;

use billing_harness::model::Currency;

/// `amount` in `currency`, with its symbol, thousands separators and exactly the currency's
/// decimals: `₩99,000`, `$1,049.90`, `-$0.50`.
pub fn money(amount: Decimal, currency: Currency) -> String {
    let symbol = match currency {
        Currency::Krw => "₩",
        Currency::Usd => "$",
    };
    let mut exact = amount.abs();
    exact.rescale(currency.minor_units());
    let text = exact.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let sign = if amount.is_sign_negative() && !amount.is_zero() {
        "-"
    } else {
        ""
    };
    let mut out = format!("{sign}{symbol}{}", group_digits(whole));
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// `amount` in the currency with this ISO code; an unknown code is written after the plain
/// number (`12 XYZ`).
pub fn money_in(amount: Decimal, code: &str) -> String {
    match code.parse::<Currency>() {
        Ok(currency) => money(amount, currency),
        Err(_) => format!("{amount} {code}"),
    }
}

/// A count with thousands separators: `32,258`.
pub fn count(n: u64) -> String {
    group_digits(&n.to_string())
}

fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn amounts_follow_their_currency() {
        for (amount, currency, shown) in [
            ("99000", Currency::Krw, "₩99,000"),
            ("0", Currency::Krw, "₩0"),
            ("126083", Currency::Krw, "₩126,083"),
            ("1000000", Currency::Krw, "₩1,000,000"),
            ("49.99", Currency::Usd, "$49.99"),
            ("49.9", Currency::Usd, "$49.90"),
            ("1049.9", Currency::Usd, "$1,049.90"),
            ("-0.5", Currency::Usd, "-$0.50"),
            ("999", Currency::Krw, "₩999"),
        ] {
            assert_eq!(money(d(amount), currency), shown, "{amount} {currency}");
        }
        assert_eq!(money_in(d("12"), "XYZ"), "12 XYZ");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(32258), "32,258");
        assert_eq!(count(1_000_000), "1,000,000");
    }
}
