//! Contract terms as QA writes them: the `contract` step of a scenario and the contract file
//! applied to a QA database (`cargo xtask contract apply`), read with spans and checked into
//! [`ContractTerms`], every bad term located.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use toml::Spanned;

use super::diagnostic::{Problems, ScenarioError};
use super::raw::{RawContract, from_toml};
use billing_harness::model::{ContractTerms, Overage, Plan};

/// A contract file: which tenant, from which day, on which terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractFile {
    /// The tenant's slug.
    pub tenant: String,
    /// The first day of the contract, in the platform's time zone.
    pub starts_on: NaiveDate,
    /// The terms.
    pub terms: ContractTerms,
}

/// Reads a contract file (`path` names it in diagnostics).
///
/// ```toml
/// tenant = "acme-analytics"          # the tenant's slug
/// starts_on = "2026-12-01"
/// plan = "pro"                        # the base plan; default: the tenant's
/// base_fee = "1500000"
/// included = { api_calls = 5000000 }
/// overage = { api_calls = { block = 1000, price = "200" } }
/// limits = { seats = 200 }
/// spec = { cpu = 16, memory_gb = 64 }
/// ends_on = "2027-12-01"              # optional end of term
/// ```
///
/// # Errors
/// Every problem found, located: a field unknown or missing, an amount that does not parse or
/// is negative, a block of 0, a date that does not parse or a term that ends first.
pub fn parse_contract_file(path: &str, source: &str) -> Result<ContractFile, ScenarioError> {
    let raw: RawContract = from_toml(path, source)?;
    let mut problems = Problems::new(path, source);
    let starts_on = match &raw.starts_on {
        Some(s) => date(&mut problems, s, "starts_on"),
        None => {
            problems.add(
                0..0,
                "a contract file needs `starts_on`, the contract's first day",
                "starts_on missing",
                Some("add starts_on = \"YYYY-MM-DD\"".into()),
            );
            None
        }
    };
    let terms = terms(&mut problems, &raw, None, starts_on);
    problems.finish()?;
    Ok(ContractFile {
        tenant: raw.tenant.into_inner(),
        starts_on: starts_on.unwrap_or_default(),
        terms,
    })
}

fn date(problems: &mut Problems<'_>, s: &Spanned<String>, field: &str) -> Option<NaiveDate> {
    match s.get_ref().parse() {
        Ok(d) => Some(d),
        Err(_) => {
            problems.add(
                s.span(),
                format!("{field} {:?} is not a date", s.get_ref()),
                "not YYYY-MM-DD",
                None,
            );
            None
        }
    }
}

fn amount(problems: &mut Problems<'_>, s: &Spanned<String>, what: &str) -> Option<Decimal> {
    match s.get_ref().parse::<Decimal>() {
        Ok(v) if !v.is_sign_negative() => Some(v),
        Ok(_) => {
            problems.add(
                s.span(),
                format!("{what} must not be negative"),
                "negative",
                None,
            );
            None
        }
        Err(_) => {
            problems.add(
                s.span(),
                format!("{what} {:?} is not an amount", s.get_ref()),
                "not an amount",
                Some("write it as a string of digits, e.g. \"1500000\" or \"49.99\"".into()),
            );
            None
        }
    }
}

fn units(problems: &mut Problems<'_>, n: &Spanned<i64>, what: &str) -> Option<u64> {
    let value = *n.get_ref();
    match u64::try_from(value) {
        Ok(v) => Some(v),
        Err(_) => {
            problems.add(
                n.span(),
                format!("{what} must not be negative, got {value}"),
                "negative",
                None,
            );
            None
        }
    }
}

/// Checks the terms of `raw` into [`ContractTerms`]. With `base` (the base plan, when known),
/// a metric it does not meter is a problem at the metric's span. `first_day` is the contract's
/// first day, for checking `ends_on`.
pub(crate) fn terms(
    problems: &mut Problems<'_>,
    raw: &RawContract,
    base: Option<&Plan>,
    first_day: Option<NaiveDate>,
) -> ContractTerms {
    let metered = |metric: &str| {
        base.is_none_or(|p| {
            p.terms.included.contains_key(metric) || p.terms.overage.contains_key(metric)
        })
    };
    let check_metric = |problems: &mut Problems<'_>, metric: &str, span: std::ops::Range<usize>| {
        if metered(metric) {
            return true;
        }
        let known = base.map_or_else(String::new, |p| {
            p.terms
                .included
                .keys()
                .chain(p.terms.overage.keys())
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        });
        problems.add(
            span,
            format!(
                "metric {metric:?} is not metered by plan {}",
                base.map_or("", |p| p.key.as_str())
            ),
            "unknown metric",
            Some(format!("the plan meters: {known}")),
        );
        false
    };
    let mut out = ContractTerms {
        plan: raw.plan.as_ref().map(|p| p.get_ref().clone()),
        base_fee: raw
            .base_fee
            .as_ref()
            .and_then(|f| amount(problems, f, "the base fee")),
        ..ContractTerms::default()
    };
    for (metric, n) in &raw.included {
        if check_metric(problems, metric, n.span())
            && let Some(v) = units(problems, n, &format!("the quota of {metric}"))
        {
            out.included.insert(metric.clone(), v);
        }
    }
    for (metric, o) in &raw.overage {
        if !check_metric(problems, metric, o.span()) {
            continue;
        }
        let o = o.get_ref();
        let block = *o.block.get_ref();
        if block < 1 {
            problems.add(
                o.block.span(),
                format!("the overage block of {metric} must be at least 1 unit, got {block}"),
                "block below 1",
                None,
            );
        }
        let price = amount(
            problems,
            &o.price,
            &format!("the overage price of {metric}"),
        );
        if let (Ok(block @ 1..), Some(price)) = (u64::try_from(block), price) {
            out.overage.insert(metric.clone(), Overage { block, price });
        }
    }
    for (name, n) in &raw.limits {
        if let Some(v) = units(problems, n, &format!("the limit {name}")) {
            out.limits
                .insert(name.clone(), i64::try_from(v).unwrap_or(i64::MAX));
        }
    }
    if let Some(spec) = &raw.spec {
        match serde_json::to_value(spec.get_ref()) {
            Ok(serde_json::Value::Object(map)) => out.spec = Some(map),
            _ => problems.add(spec.span(), "the spec is not a table", "not a table", None),
        }
    }
    if let Some(end) = &raw.ends_on
        && let Some(day) = date(problems, end, "ends_on")
    {
        if first_day.is_some_and(|first| day <= first) {
            problems.add(
                end.span(),
                format!("the term must end after its first day, not on {day}"),
                "ends too early",
                None,
            );
        }
        out.term_ends_on = Some(day);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_file_reads_into_terms() {
        let file = parse_contract_file(
            "c.toml",
            r#"tenant = "acme"
starts_on = "2026-12-01"
plan = "pro"
base_fee = "1500000"
included = { api_calls = 5000000 }
overage = { api_calls = { block = 1000, price = "200" } }
limits = { seats = 200 }
spec = { cpu = 16 }
ends_on = "2027-12-01"
"#,
        )
        .unwrap();
        assert_eq!(file.tenant, "acme");
        assert_eq!(file.terms.base_fee, Some(Decimal::from(1_500_000)));
        assert_eq!(file.terms.overage["api_calls"].block, 1000);
        assert_eq!(file.terms.spec.unwrap()["cpu"], 16);
    }

    #[test]
    fn bad_terms_are_located() {
        let e = parse_contract_file(
            "c.toml",
            "tenant = \"acme\"\nstarts_on = \"2026-12-01\"\nbase_fee = \"-1\"\n\
             overage = { api_calls = { block = 0, price = \"x\" } }\nincluded = { api_calls = -5 }\n\
             ends_on = \"2026-11-01\"\n",
        )
        .unwrap_err();
        let found: Vec<(usize, &str)> = e
            .problems()
            .iter()
            .map(|p| (p.line(), p.message()))
            .collect();
        assert_eq!(found.len(), 5, "{found:?}");
        assert_eq!(found[0], (3, "the base fee must not be negative"));
        assert!(found[1].1.contains("block of api_calls must be at least 1"));
        assert!(found[2].1.contains("\"x\" is not an amount"));
        assert_eq!(found[3].0, 5);
        assert_eq!(found[4].0, 6);
    }
}
