//! The HTML pages: one per scenario (timeline, invoices with each line's rule in words, payment
//! attempts, states, expected errors) and an index for a run of many. Every page is one file
//! with its style inline: no scripts, fonts, images or links to fetch.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::facts::{Facts, PlanPeriod};
use super::lang::{Lang, Words, fill};
use super::markup::{escape, page_link};
use super::money::{count, money_in};
use super::palette as p;
use super::timeline::{self, invoice_status, plan_name, state_name};
use crate::validate::Scenario;
use crate::{Outcome, OutcomeLine};
use billing_harness::billing::LineKind;
use billing_harness::calendar::Month;

/// How a page is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageOptions {
    /// The language of every label and sentence (default English).
    pub lang: Lang,
    /// The present day, marked on the timeline; for a run that stopped at it (seeding). Default
    /// none.
    pub today: Option<NaiveDate>,
}

/// A row of the index page: a scenario file and its outcome (`None`: the file is invalid).
#[derive(Debug, Clone, Copy)]
pub struct IndexRow<'a> {
    /// The file's name without `.toml`; its page is `STEM.html` beside the index.
    pub stem: &'a str,
    /// What the run produced.
    pub outcome: Option<&'a Outcome>,
}

/// The page of one scenario run.
pub fn html(
    scenario: &Scenario,
    outcome: &Outcome,
    facts: &Facts,
    options: &PageOptions,
) -> String {
    let lang = options.lang;
    let w = lang.words();
    let main = [
        failures(w, outcome),
        timeline_section(w, lang, scenario, outcome, facts, options.today),
        section(w, w.invoices, invoices(w, outcome, facts)),
        section(w, w.payments, payments(w, scenario, outcome)),
        section(w, w.states, states(w, outcome)),
        section(w, w.errors, errors(w, scenario, outcome)),
    ]
    .concat();
    document(
        lang,
        &fill(w.page_title, &[("name", &scenario.name)]),
        &format!("{}<main>{main}</main>", header(w, scenario, outcome.holds)),
    )
}

/// A section of a page: its heading, then `body`, or a paragraph saying there is nothing to
/// show.
fn section(w: &Words, heading: &str, body: Option<String>) -> String {
    let body = body.unwrap_or_else(|| format!("<p>{}</p>", escape(w.none)));
    format!("<section><h2>{}</h2>{body}</section>", escape(heading))
}

/// The page's header: the scenario's name and description, the days it covers and its verdict.
fn header(w: &Words, scenario: &Scenario, holds: bool) -> String {
    let description = scenario
        .description
        .as_deref()
        .map_or_else(String::new, |d| format!("<p>{}</p>", escape(d)));
    let covers = escape(&fill(
        w.covers,
        &[
            ("start", &scenario.start.to_string()),
            ("until", &scenario.until.to_string()),
        ],
    ));
    format!(
        "<header><h1>{}</h1>{description}<p>{covers} {}</p></header>",
        escape(&scenario.name),
        verdict(w, holds)
    )
}

/// Why the scenario does not hold, first on the page; nothing when it holds.
fn failures(w: &Words, outcome: &Outcome) -> String {
    if outcome.failures.is_empty() {
        return String::new();
    }
    let mut list = String::from("<ul>");
    for f in &outcome.failures {
        let _ = write!(list, "<li>{}</li>", escape(f));
    }
    list.push_str("</ul>");
    section(w, w.why_not, Some(list))
}

/// The timeline: its legend, then the picture (scrolled sideways when it is wider than the
/// page).
fn timeline_section(
    w: &Words,
    lang: Lang,
    scenario: &Scenario,
    outcome: &Outcome,
    facts: &Facts,
    today: Option<NaiveDate>,
) -> String {
    let timeline = timeline::build(scenario, outcome, facts, today);
    let picture = timeline::svg(&timeline, lang, &scenario.name);
    section(
        w,
        w.timeline,
        Some(format!(
            r#"<h3>{}</h3>{}<div class="scroll">{picture}</div>"#,
            escape(w.legend),
            legend(w, &timeline)
        )),
    )
}

/// A table per invoice: each line with its rule in words, then subtotal, tax and total.
fn invoices(w: &Words, outcome: &Outcome, facts: &Facts) -> Option<String> {
    if outcome.invoices.is_empty() {
        return None;
    }
    let mut out = String::new();
    for i in &outcome.invoices {
        let _ = write!(
            out,
            r#"<h3>{}</h3><table><thead><tr><th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th></tr></thead><tbody>"#,
            escape(&fill(
                w.invoice_heading,
                &[
                    ("tenant", &i.tenant),
                    ("period", &i.period),
                    ("status", &invoice_status(w, i.status.as_str())),
                ]
            )),
            escape(w.col_line),
            escape(w.col_rule),
            escape(w.col_amount)
        );
        for l in &i.lines {
            let kind = if l.kind == LineKind::Overage {
                w.overage
            } else {
                w.base
            };
            let _ = write!(
                out,
                r#"<tr><th scope="row">{}</th><td>{}</td><td class="n">{}</td></tr>"#,
                escape(kind),
                escape(&rule(w, period(facts, &i.tenant, l), l, &i.currency)),
                escape(&money_in(l.amount, &i.currency))
            );
        }
        let _ = write!(
            out,
            r#"</tbody><tfoot><tr><th scope="row" colspan="2">{}</th><td class="n">{}</td></tr><tr><th scope="row" colspan="2">{}</th><td class="n">{}</td></tr><tr class="total"><th scope="row" colspan="2">{}</th><td class="n">{}</td></tr></tfoot></table>"#,
            escape(w.subtotal),
            escape(&money_in(i.subtotal, &i.currency)),
            escape(w.tax),
            escape(&money_in(i.tax, &i.currency)),
            escape(w.total),
            escape(&money_in(i.total, &i.currency)),
        );
    }
    Some(out)
}

/// The payment attempts: day, invoice, attempt, amount, outcome and reason.
fn payments(w: &Words, scenario: &Scenario, outcome: &Outcome) -> Option<String> {
    if outcome.payments.is_empty() {
        return None;
    }
    let mut out = header_row(&[
        w.col_tenant,
        w.col_day,
        w.col_invoice,
        w.col_attempt,
        w.col_amount,
        w.col_outcome,
        w.col_reason,
    ]);
    for pay in &outcome.payments {
        let currency = outcome
            .invoices
            .iter()
            .find(|i| i.tenant == pay.tenant && i.period == pay.period)
            .map_or_else(
                || scenario.catalog.currency.code().to_owned(),
                |i| i.currency.clone(),
            );
        let succeeded = pay.outcome == billing_harness::model::PaymentOutcome::Succeeded;
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td>{} {}</td><td>{}</td></tr>"#,
            escape(&pay.tenant),
            pay.on,
            escape(&pay.period),
            pay.attempt,
            escape(&money_in(pay.amount, &currency)),
            if succeeded { "✓" } else { "✗" },
            escape(if succeeded { w.succeeded } else { w.failed }),
            escape(pay.failure_code.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>");
    Some(out)
}

/// Each subscription's states, with the day each began.
fn states(w: &Words, outcome: &Outcome) -> Option<String> {
    if outcome.subscriptions.is_empty() {
        return None;
    }
    let mut out = header_row(&[w.col_tenant, w.col_day, w.col_state]);
    for s in &outcome.subscriptions {
        for c in &s.changes {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.tenant),
                c.on,
                escape(&state_name(w, &c.status))
            );
        }
    }
    out.push_str("</tbody></table>");
    Some(out)
}

/// The steps refused with the error they expected, on their day.
fn errors(w: &Words, scenario: &Scenario, outcome: &Outcome) -> Option<String> {
    if outcome.errors.is_empty() {
        return None;
    }
    let mut out = header_row(&[w.col_step, w.col_day, w.col_code]);
    for e in &outcome.errors {
        let day = scenario
            .steps
            .iter()
            .find(|s| s.number == e.step)
            .map(|s| s.on.to_string())
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<tr><td class="n">{}</td><td>{day}</td><td>{}</td></tr>"#,
            e.step,
            escape(&e.code)
        );
    }
    out.push_str("</tbody></table>");
    Some(out)
}

/// The index of a run: each scenario with its result, its number of invoices and their totals
/// per currency, linked to its page.
pub fn index(rows: &[IndexRow<'_>], lang: Lang) -> String {
    let w = lang.words();
    let held = rows
        .iter()
        .filter(|r| r.outcome.is_some_and(|o| o.holds))
        .count();
    let mut table = header_row(&[w.col_scenario, w.col_result, w.col_invoices, w.col_totals]);
    for row in rows {
        match row.outcome {
            Some(o) => {
                let mut totals: BTreeMap<&str, Decimal> = BTreeMap::new();
                for i in &o.invoices {
                    *totals.entry(i.currency.as_str()).or_default() += i.total;
                }
                let totals: Vec<String> = totals
                    .into_iter()
                    .map(|(currency, total)| money_in(total, currency))
                    .collect();
                let _ = write!(
                    table,
                    r#"<tr><td><a href="{}">{}</a> <span class="muted">{}</span></td><td>{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                    page_link(row.stem),
                    escape(&o.scenario),
                    escape(row.stem),
                    verdict(w, o.holds),
                    count(o.invoices.len() as u64),
                    escape(&totals.join(", "))
                );
            }
            None => {
                let _ = write!(
                    table,
                    r#"<tr><td>{}</td><td><span class="fails">{}</span></td><td class="n"></td><td class="n"></td></tr>"#,
                    escape(row.stem),
                    escape(w.invalid)
                );
            }
        }
    }
    table.push_str("</tbody></table>");
    let summary = fill(
        w.index_summary,
        &[
            ("held", &held.to_string()),
            ("count", &rows.len().to_string()),
        ],
    );
    document(
        lang,
        w.index_title,
        &format!(
            "<header><h1>{}</h1><p>{}</p></header><main>{table}</main>",
            escape(w.index_title),
            escape(&summary)
        ),
    )
}

/// The plan period an invoice line of `tenant` bills: its plan, covering the line's first day.
fn period<'a>(facts: &'a Facts, tenant: &str, line: &OutcomeLine) -> Option<&'a PlanPeriod> {
    facts
        .tenants
        .iter()
        .find(|t| t.tenant == tenant)?
        .periods
        .iter()
        .find(|p| p.plan == line.plan && p.covers(line.from))
}

/// A line's rule in words, from the terms its period was billed with (a contract's own): "pro,
/// 22 of 31 days of ₩99,000", or "api_calls: 33,258 used, 1 block of 1,000 over the prorated
/// quota of 32,258, at ₩500 a block".
fn rule(w: &Words, period: Option<&PlanPeriod>, line: &OutcomeLine, currency: &str) -> String {
    let month_days = Month::of(line.from).days().to_string();
    if line.kind != LineKind::Overage {
        let fee = period.map_or_else(String::new, |p| money_in(p.terms.base_fee, currency));
        let plan = plan_name(
            w,
            &line.plan,
            period.and_then(|p| p.contract_over.as_deref()),
        );
        return fill(
            w.base_rule,
            &[
                ("plan", &plan),
                ("days", &line.days.to_string()),
                ("month_days", &month_days),
                ("fee", &fee),
            ],
        );
    }
    let metric = line.metric.as_deref().unwrap_or("");
    let price = period.and_then(|p| p.terms.overage.get(metric));
    let over = line.overage.unwrap_or(0);
    let (block, price) = price.map_or((1, Decimal::ZERO), |o| (o.block.max(1), o.price));
    let blocks = over.div_ceil(block);
    fill(
        if blocks == 1 {
            w.overage_rule_one
        } else {
            w.overage_rule
        },
        &[
            ("metric", metric),
            ("used", &count(line.used.unwrap_or(0))),
            ("blocks", &count(blocks)),
            ("block", &count(block)),
            ("quota", &count(line.included.unwrap_or(0))),
            ("price", &money_in(price, currency)),
        ],
    )
}

fn verdict(w: &Words, holds: bool) -> String {
    if holds {
        format!(r#"<strong class="holds">{}</strong>"#, escape(w.holds))
    } else {
        format!(r#"<strong class="fails">{}</strong>"#, escape(w.fails))
    }
}

/// `<table>` and its header row; the caller adds the rows and `</tbody></table>`.
fn header_row(columns: &[&str]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for c in columns {
        let _ = write!(out, r#"<th scope="col">{}</th>"#, escape(c));
    }
    out.push_str("</tr></thead><tbody>");
    out
}

/// The legend: a swatch (decorative: the text says it) and a sentence per kind of mark; the
/// marks of contracts, products and outages only when the timeline has them.
fn legend(w: &Words, timeline: &timeline::Timeline) -> String {
    let contracts = timeline.tenants.iter().any(|t| {
        t.lanes
            .iter()
            .any(|l| matches!(l, timeline::Lane::Contracts(_)))
    });
    let products = !timeline.products.is_empty();
    let outages = timeline
        .products
        .iter()
        .any(|l| matches!(l, timeline::Lane::Product(p) if p.outage.is_some()));
    let mut items = every_page_swatches(w);
    if contracts {
        items.push(contract_swatch(w));
    }
    if products {
        items.extend(product_swatches(w));
    }
    if outages {
        items.extend(outage_swatches(w));
    }
    let mut out = String::from(r#"<ul class="legend">"#);
    for (swatch, text) in items {
        let _ = write!(out, "<li>{swatch}{}</li>", escape(text));
    }
    out.push_str("</ul>");
    out
}

/// A legend's swatch: a small picture of a mark, hidden from screen readers (its text says it).
fn swatch(shape: &str) -> String {
    format!(
        r#"<svg width="30" height="16" viewBox="0 0 30 16" aria-hidden="true" focusable="false">{shape}</svg>"#
    )
}

/// The marks every page has: plan periods, the states, usage, overage, invoices, payments and
/// expected errors.
fn every_page_swatches(w: &Words) -> Vec<(String, &'static str)> {
    let (plan_fill, plan_stroke) = p::PLANS[0];
    vec![
        (
            swatch(&format!(
                r#"<rect x="1" y="2" width="28" height="12" rx="3" fill="{plan_fill}" stroke="{plan_stroke}"/>"#
            )),
            w.legend_plan,
        ),
        (
            swatch(&format!(
                r#"<rect x="1" y="2" width="28" height="12" fill="{}" stroke="{}"/>"#,
                p::ACTIVE.0,
                p::GRID
            )),
            w.active,
        ),
        (
            swatch(&format!(
                r#"<rect x="1" y="2" width="28" height="12" fill="{}"/><rect x="1" y="2" width="28" height="12" fill="url(#bh-past_due)" stroke="{}"/>"#,
                p::PAST_DUE.0,
                p::GRID
            )),
            w.past_due,
        ),
        (
            swatch(&format!(
                r#"<rect x="1" y="2" width="28" height="12" fill="{}"/><rect x="1" y="2" width="28" height="12" fill="url(#bh-cancelled)" stroke="{}"/>"#,
                p::CANCELLED.0,
                p::GRID
            )),
            w.cancelled,
        ),
        (
            swatch(&format!(
                r#"<rect x="3" y="6" width="8" height="10" fill="{}"/><rect x="15" y="3" width="8" height="13" fill="{}"/><line x1="0" y1="8" x2="30" y2="8" stroke="{}" stroke-width="2" stroke-dasharray="5 3"/>"#,
                p::USAGE,
                p::USAGE,
                p::INK
            )),
            w.legend_usage,
        ),
        (
            swatch(&format!(
                r#"<rect x="10" y="1" width="10" height="15" fill="{}"/><rect x="10" y="1" width="10" height="15" fill="url(#bh-over)"/>"#,
                p::OVER
            )),
            w.legend_over,
        ),
        (
            swatch(&format!(
                r#"<path d="M10 1h8l3 3v11h-11z" fill="{}" stroke="{}" stroke-width="1.5"/>"#,
                p::PAPER,
                p::INK
            )),
            w.legend_invoice,
        ),
        (
            swatch(&format!(
                r#"<circle cx="15" cy="8" r="5.5" fill="{}"/>"#,
                p::SUCCEEDED
            )),
            w.legend_paid,
        ),
        (
            swatch(&format!(
                r#"<path d="M10 3l10 10m0 -10l-10 10" stroke="{}" stroke-width="3"/>"#,
                p::FAILED
            )),
            w.legend_failed,
        ),
        (
            swatch(&format!(
                r#"<path d="M15 1l6 7l-6 7l-6 -7z" fill="{}"/>"#,
                p::ERROR
            )),
            w.legend_error,
        ),
    ]
}

/// The mark of a contract step.
fn contract_swatch(w: &Words) -> (String, &'static str) {
    (
        swatch(&format!(
            r#"<path d="M9 1h12v14h-12z M12 6h6" fill="{}" stroke="{}" stroke-width="1.5"/>"#,
            p::CONTRACT,
            p::INK
        )),
        w.legend_contract,
    )
}

/// The marks of a product's outage: its band, and when the product caught up.
fn outage_swatches(w: &Words) -> [(String, &'static str); 2] {
    let (background, outline) = p::OUTAGE;
    [
        (
            swatch(&format!(
                r#"<rect x="3" y="3" width="24" height="10" fill="{background}" stroke="{outline}" stroke-dasharray="4 2"/>"#
            )),
            w.legend_outage,
        ),
        (
            swatch(&format!(
                r#"<circle cx="15" cy="8" r="5.5" fill="none" stroke="{}" stroke-width="2.5"/>"#,
                p::SUCCEEDED
            )),
            w.legend_caught_up,
        ),
    ]
}

/// The marks of a product's lane: delivered requests, faults, drift steps and the convergence.
fn product_swatches(w: &Words) -> [(String, &'static str); 4] {
    [
        (
            swatch(&format!(
                r#"<circle cx="15" cy="8" r="5" fill="{}"/>"#,
                p::SUCCEEDED
            )),
            w.legend_delivered,
        ),
        (
            swatch(&format!(
                r#"<path d="M11 4l8 8m0 -8l-8 8" stroke="{}" stroke-width="2.5"/>"#,
                p::FAILED
            )),
            w.legend_fault,
        ),
        (
            swatch(&format!(
                r#"<path d="M12 0v16 M12 0h7l-2 3l2 3h-7z" stroke="{}" stroke-width="1.5" fill="{}"/>"#,
                p::INK,
                p::DRIFT
            )),
            w.legend_drift,
        ),
        (
            swatch(&format!(
                r#"<rect x="9" y="2" width="12" height="12" rx="2" fill="{}"/>"#,
                p::SUCCEEDED
            )),
            w.legend_converged,
        ),
    ]
}

/// A whole page: the head with the inline style, and `body`.
fn document(lang: Lang, title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: {ink}; background: {paper}; line-height: 1.4; }}
h1 {{ font-size: 1.5em; margin: 0 0 8px; }}
h2 {{ font-size: 1.2em; margin: 28px 0 8px; border-bottom: 1px solid {grid}; }}
h3 {{ font-size: 1em; margin: 16px 0 6px; }}
a {{ color: {link}; background: {paper}; }}
.muted {{ color: {muted}; background: {paper}; font-size: 0.9em; }}
.holds {{ color: {holds_fg}; background: {holds_bg}; padding: 1px 6px; border-radius: 3px; }}
.fails {{ color: {fails_fg}; background: {fails_bg}; padding: 1px 6px; border-radius: 3px; }}
table {{ border-collapse: collapse; margin: 6px 0 18px; }}
th, td {{ border: 1px solid {grid}; padding: 4px 10px; text-align: left; vertical-align: top; }}
thead th, tbody th, tfoot th {{ color: {ink}; background: {head}; font-weight: normal; }}
thead th {{ font-weight: bold; }}
tr.total th, tr.total td {{ color: {ink}; background: {total}; font-weight: bold; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
.scroll {{ overflow-x: auto; }}
.legend {{ list-style: none; padding: 0; margin: 0 0 10px; display: flex; flex-wrap: wrap; gap: 4px 20px; }}
.legend svg {{ vertical-align: middle; margin-right: 6px; }}
@media print {{
  * {{ print-color-adjust: exact; -webkit-print-color-adjust: exact; }}
  body {{ margin: 0; font-size: 10pt; }}
  .scroll {{ overflow: visible; }}
  svg.timeline {{ max-width: 100%; height: auto; }}
  table, svg.timeline {{ break-inside: avoid; }}
  h2, h3 {{ break-after: avoid; }}
  a {{ color: {ink}; background: {paper}; text-decoration: none; }}
}}
</style></head>
<body>
{body}
</body></html>
"#,
        lang = lang.code(),
        title = escape(title),
        ink = p::INK,
        paper = p::PAPER,
        muted = p::MUTED,
        link = p::LINK,
        grid = p::GRID,
        holds_fg = p::HOLDS_FG,
        holds_bg = p::HOLDS_BG,
        fails_fg = p::FAILS_FG,
        fails_bg = p::FAILS_BG,
        head = p::HEAD_BG,
        total = p::TOTAL_BG,
    )
}
