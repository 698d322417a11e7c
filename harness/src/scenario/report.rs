//! `scenario report`: one self-contained HTML page for a person: a timeline picture (plan
//! periods, usage, invoices, payment attempts, drawn as inline SVG) and the invoices as tables.

use std::fmt::Write;

use chrono::NaiveDate;

use super::run::Outcome;
use super::validate::Scenario;
use crate::TestEnv;

/// One tenant's lane in the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    /// The tenant's key.
    pub tenant: String,
    /// Plan periods: plan, first day, first day after (None while open).
    pub periods: Vec<(String, NaiveDate, Option<NaiveDate>)>,
    /// Usage per day, all metrics together.
    pub usage: Vec<(NaiveDate, i64)>,
}

/// Reads the lanes of a run from its database (after [`super::run()`]).
///
/// # Errors
/// The database failed.
pub async fn lanes(scenario: &Scenario, env: &TestEnv) -> Result<Vec<Lane>, sqlx::Error> {
    let mut lanes = Vec::new();
    for tenant in &scenario.tenants {
        let periods: Vec<(String, NaiveDate, Option<NaiveDate>)> = sqlx::query_as(
            "select p.key, c.starts_on, c.ends_on from contracts c join plans p on p.id = c.plan_id \
             join subscriptions s on s.id = c.subscription_id join tenants t on t.id = s.tenant_id \
             where t.name = $1 and (c.ends_on is null or c.ends_on > c.starts_on) order by c.starts_on, c.id",
        )
        .bind(&tenant.key)
        .fetch_all(env.pool())
        .await?;
        let usage: Vec<(NaiveDate, i64)> = sqlx::query_as(
            "select u.occurred_on, sum(u.quantity)::bigint from usage_events u join tenants t on t.id = u.tenant_id \
             where t.name = $1 group by u.occurred_on order by u.occurred_on",
        )
        .bind(&tenant.key)
        .fetch_all(env.pool())
        .await?;
        lanes.push(Lane {
            tenant: tenant.key.clone(),
            periods,
            usage,
        });
    }
    Ok(lanes)
}

const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page: the scenario's timeline and its invoices.
pub fn html(scenario: &Scenario, outcome: &Outcome, lanes: &[Lane]) -> String {
    let days = (scenario.until - scenario.start).num_days().max(1) as f64;
    let (left, width, lane_height) = (140.0, 900.0, 110.0);
    let x = |day: NaiveDate| {
        left + width * ((day - scenario.start).num_days() as f64 / days).clamp(0.0, 1.0)
    };
    let height = 60.0 + lane_height * lanes.len() as f64;
    let mut plans: Vec<&str> = Vec::new();
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"#,
        left + width + 40.0
    );
    // Month boundaries: the close of each month happens there.
    let mut month = crate::model::Month::of(scenario.start).next();
    while month.first_day() <= scenario.until {
        let mx = x(month.first_day());
        let _ = write!(
            svg,
            r##"<line x1="{mx}" y1="20" x2="{mx}" y2="{}" stroke="#bbb" stroke-dasharray="4 3"/><text x="{}" y="14" fill="#555">{}</text>"##,
            height - 10.0,
            mx + 3.0,
            month.first_day()
        );
        month = month.next();
    }
    let max_usage = lanes
        .iter()
        .flat_map(|l| l.usage.iter().map(|u| u.1))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    for (i, lane) in lanes.iter().enumerate() {
        let top = 30.0 + lane_height * i as f64;
        let _ = write!(
            svg,
            r##"<text x="8" y="{}" font-weight="bold">{}</text>"##,
            top + 28.0,
            escape(&lane.tenant)
        );
        for (plan, from, until) in &lane.periods {
            let colour = match plans.iter().position(|p| p == plan) {
                Some(n) => PALETTE[n % PALETTE.len()],
                None => {
                    plans.push(plan);
                    PALETTE[(plans.len() - 1) % PALETTE.len()]
                }
            };
            let (x1, x2) = (x(*from), x(until.unwrap_or(scenario.until)));
            let _ = write!(
                svg,
                r##"<rect x="{x1}" y="{}" width="{}" height="22" rx="3" fill="{colour}"/><text x="{}" y="{}" fill="#fff">{}</text>"##,
                top + 12.0,
                (x2 - x1).max(2.0),
                x1 + 4.0,
                top + 27.0,
                escape(plan)
            );
        }
        for (day, quantity) in &lane.usage {
            let h = 30.0 * (*quantity as f64 / max_usage);
            let _ = write!(
                svg,
                r##"<rect x="{}" y="{}" width="3" height="{h}" fill="#9c755f"><title>{day}: {quantity}</title></rect>"##,
                x(*day),
                top + 70.0 - h
            );
        }
        for invoice in outcome.invoices.iter().filter(|v| v.tenant == lane.tenant) {
            if let Ok(month) = invoice.period.parse::<crate::model::Month>() {
                let ix = x(month.end());
                let _ = write!(
                    svg,
                    r##"<rect x="{}" y="{}" width="10" height="12" fill="#fff" stroke="#333"><title>invoice {} {} {}</title></rect>"##,
                    ix - 5.0,
                    top + 74.0,
                    invoice.period,
                    invoice.total,
                    invoice.status
                );
            }
        }
        for payment in outcome.payments.iter().filter(|p| p.tenant == lane.tenant) {
            let colour = if payment.outcome == crate::model::PaymentOutcome::Succeeded {
                "#2ca02c"
            } else {
                "#d62728"
            };
            let _ = write!(
                svg,
                r##"<circle cx="{}" cy="{}" r="5" fill="{colour}"><title>{} {} {}</title></circle>"##,
                x(payment.on),
                top + 96.0,
                payment.on,
                payment.period,
                payment.outcome
            );
        }
    }
    svg.push_str("</svg>");

    let mut tables = String::new();
    for i in &outcome.invoices {
        let _ = write!(
            tables,
            "<h3>{} — {} <small>{} · {}</small></h3><table><tr><th>kind</th><th>plan</th><th>metric</th><th>days</th><th>amount</th></tr>",
            escape(&i.tenant),
            i.period,
            i.status,
            i.currency
        );
        for l in &i.lines {
            let _ = write!(
                tables,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                l.kind,
                escape(&l.plan),
                escape(l.metric.as_deref().unwrap_or("")),
                l.days,
                l.amount
            );
        }
        let _ = write!(
            tables,
            "<tr><td colspan=4>subtotal</td><td class=n>{}</td></tr><tr><td colspan=4>tax</td><td class=n>{}</td></tr><tr class=t><td colspan=4>total</td><td class=n>{}</td></tr></table>",
            i.subtotal, i.tax, i.total
        );
    }
    let verdict = if outcome.holds {
        "holds"
    } else {
        "does not hold"
    };
    let failures: String = outcome
        .failures
        .iter()
        .map(|f| format!("<li>{}</li>", escape(f)))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{name}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 16px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.t td {{ font-weight: bold; }}
.legend span {{ margin-right: 16px; }}
</style></head>
<body>
<h1>{name}</h1>
<p>{start} to {until} · the scenario <strong>{verdict}</strong></p>
<ul>{failures}</ul>
<p class="legend"><span>bars: plan periods</span><span>brown: usage per day</span><span>boxes: invoices at each close</span><span>dots: payment attempts (green succeeded, red failed)</span></p>
{svg}
<h2>Invoices</h2>
{tables}
</body></html>
"#,
        name = escape(&scenario.name),
        start = scenario.start,
        until = scenario.until,
    )
}
