//! The report pages: what a person sees without hovering (acceptance of issue 18), the rule of
//! each invoice line in words, self-containment, and an accessibility check written here over
//! the produced HTML (heading order, labelled pictures, table headers, contrast of every text
//! colour the pages use).

use billing_scenarios::report::{self, IndexRow, Lang, PageOptions, palette};
use billing_scenarios::{self as scenario, Outcome, Scenario};

/// Plays a bundled scenario and writes its page in `lang`.
fn page(name: &str, lang: Lang) -> (Scenario, Outcome, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(format!("{name}.toml"));
    let scenario = scenario::load(&path, None).unwrap_or_else(|e| panic!("{}", e.render()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (outcome, facts) = runtime.block_on(async {
        let env = crate::scenarios::scenario_env(&scenario).await;
        let outcome = scenario::run(&scenario, &env).await.unwrap();
        let facts = report::facts(&scenario, &env).await.unwrap();
        (outcome, facts)
    });
    let html = report::html(
        &scenario,
        &outcome,
        &facts,
        &PageOptions {
            lang,
            ..PageOptions::default()
        },
    );
    (scenario, outcome, html)
}

/// `s` without the elements named `tag` and what they hold.
fn without(s: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(&open) {
        out.push_str(&rest[..at]);
        match rest[at..].find(&close) {
            Some(end) => rest = &rest[at + end + close.len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The text of every `<text>` of the timeline: what is drawn, not what a tooltip holds.
fn drawn_labels(html: &str) -> Vec<String> {
    let start = html.find("<svg xmlns").expect("a timeline");
    let end = start + html[start..].find("</svg>").unwrap();
    let svg = without(&without(&html[start..end], "title"), "desc");
    svg.split("<text")
        .skip(1)
        .filter_map(|part| {
            let body = &part[part.find('>')? + 1..];
            Some(unescape(&body[..body.find("</text>")?]))
        })
        .collect()
}

fn assert_drawn(labels: &[String], wanted: &str) {
    assert!(
        labels.iter().any(|l| l == wanted),
        "the timeline draws no label {wanted:?}; it draws {labels:?}"
    );
}

#[test]
fn declined_dunning_shows_each_attempt_invoice_and_state_change_without_hovering() {
    let (_, outcome, html) = page("declined-dunning", Lang::En);
    let labels = drawn_labels(&html);
    for day in [
        "11-05", "11-06", "11-07", "11-08", "12-05", "12-06", "12-07", "12-08",
    ] {
        assert_drawn(&labels, &format!("{day} ✗ failed"));
    }
    assert_eq!(outcome.payments.len(), 8);
    assert_drawn(&labels, "2026-10 ₩99,000");
    assert_drawn(&labels, "2026-11 ₩23,100");
    assert_drawn(&labels, "active 10-01");
    assert_drawn(&labels, "past due 11-05");
    assert_drawn(&labels, "cancelled 11-08");
    assert_drawn(&labels, "pro · ₩99,000/month");
    // Every day is ticked and each month's start is labelled.
    assert_drawn(&labels, "Oct 2026");
    assert_drawn(&labels, "Nov 2026");
    assert_drawn(&labels, "Dec 2026");
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    while day <= chrono::NaiveDate::from_ymd_opt(2026, 12, 10).unwrap() {
        assert!(
            html.contains(&format!("<g><title>{day}</title><line")),
            "no tick for {day}"
        );
        day = day.succ_opt().unwrap();
    }
}

#[test]
fn pro_upgraded_mid_month_shows_totals_refusal_cancellation_and_the_day_usage_crossed_the_quota() {
    let (_, _, html) = page("pro-upgraded-mid-month", Lang::En);
    let labels = drawn_labels(&html);
    for day in ["11-05", "11-06", "11-07", "11-08"] {
        assert_drawn(&labels, &format!("{day} ✗ failed"));
    }
    assert_drawn(&labels, "2026-10 ₩126,083");
    assert_drawn(&labels, "cancelled 10-30");
    assert_drawn(&labels, "over quota 10-25");
    assert_drawn(&labels, "quota 322,580");
    assert_drawn(&labels, "quota 32,258");
    assert_drawn(&labels, "10-20 plan_change_limit");
    assert_drawn(&labels, "business · ₩290,000/month");
    // The invoice table gives each line's rule in words.
    assert!(html.contains("pro, 10 of 31 days of ₩99,000"), "{html}");
    assert!(
        html.contains("2 blocks of 1,000 over the prorated quota of 322,580"),
        "{html}"
    );
    // Tooltips carry the exact values.
    assert!(
        html.contains(
            "invoice 2026-10, closed on 2026-11-01 (uncollectible): subtotal ₩126,083, tax ₩0, total ₩126,083"
        ),
        "{html}"
    );
    assert!(
        html.contains("2026-11-05: attempt 1 for invoice 2026-10, ₩126,083, failed (declined)")
    );
}

#[test]
fn overage_shows_the_day_usage_crossed_the_quota_in_each_plan_period() {
    let (_, _, html) = page("overage-in-each-period", Lang::En);
    let labels = drawn_labels(&html);
    assert_drawn(&labels, "over quota 10-08");
    assert_drawn(&labels, "over quota 10-20");
    assert_drawn(&labels, "quota 48,387");
    assert_drawn(&labels, "quota 516,129");
    assert_drawn(&labels, "2026-10 ₩238,780");
    assert!(html.contains("32 blocks of 1,000 over the prorated quota of 48,387"));
    assert!(html.contains("84 blocks of 1,000 over the prorated quota of 516,129"));
}

#[test]
fn a_sync_scenario_shows_each_products_requests_faults_drift_and_convergence_without_hovering() {
    let (_, outcome, html) = page("sync-drift-repaired", Lang::En);
    let labels = drawn_labels(&html);
    assert_drawn(&labels, "products");
    assert_drawn(&labels, "analytics");
    assert_drawn(&labels, "10-20 drift");
    assert_drawn(&labels, "converged · 1 repaired");
    assert_eq!(outcome.products[0].repaired.len(), 1);
    // The daily reconcile after the drift (00:00 on the 21st) finds and repairs it.
    assert_drawn(&labels, "10-21 ✓ 1");
    // The writes of the subscribe step arrive on its day.
    assert!(
        labels.iter().any(|l| l.starts_with("10-10 ✓ ")),
        "no delivery on 10-10: {labels:?}"
    );
    assert!(
        html.contains("PUT /v1/tenants/{tenant}/subscription 200"),
        "{html}"
    );

    let (_, outcome, html) = page("sync-retried-up-to-the-last-attempt", Lang::En);
    let labels = drawn_labels(&html);
    assert_eq!(outcome.products[0].faults_applied, 16);
    // Down from 00:00 to 05:58 on the 10th: the subscription made at 00:00 fails (and the
    // daily reconcile's read-back at 00:00 with it), then is applied by its last attempt at the
    // horizon, 06:00.
    assert_drawn(&labels, "down 10-10 00:00 → 10-10 05:58");
    assert_drawn(&labels, "10-10 ✗ status_503 ×16");
    assert_drawn(&labels, "10-10 ✓ 1");
    assert_drawn(&labels, "10-10 caught up 06:00");
    assert_drawn(&labels, "converged · 0 repaired");
    assert!(
        html.contains("PUT /v1/tenants/{tenant}/subscription 503 (status_503)"),
        "each faulted request in the tooltip: {html}"
    );
    assert!(
        html.contains(
            "analytics held the platform's data again from 2026-10-10 06:00:00 KST; the rows \
             that waited longest (1) waited 6h"
        ),
        "{html}"
    );

    let (_, _, html) = page("sync-outage-4-days", Lang::En);
    let labels = drawn_labels(&html);
    // Each attempt on its own day, across the outage; caught up at the reconcile of the 15th.
    assert_drawn(&labels, "down 10-10 00:00 → 10-14 09:30");
    for day in ["10-10", "10-11", "10-12", "10-13", "10-14"] {
        assert!(
            labels
                .iter()
                .any(|l| l.starts_with(&format!("{day} ✗ reset"))),
            "no failed attempt on {day}: {labels:?}"
        );
    }
    assert_drawn(&labels, "10-15 ✓ 2");
    assert_drawn(&labels, "10-15 caught up 00:00");

    let (_, _, html) = page("sync-drift-repaired", Lang::Ko);
    let labels = drawn_labels(&html);
    assert_drawn(&labels, "제품");
    assert_drawn(&labels, "10-20 불일치");
    assert_drawn(&labels, "수렴 · 복구 1건");
}

#[test]
fn a_contract_period_shows_its_own_fee_quota_and_rules() {
    let (_, _, html) = page("contract-from-the-15th", Lang::En);
    let labels = drawn_labels(&html);
    assert_drawn(&labels, "contract over pro · ₩1,500,000/month");
    assert_drawn(&labels, "10-15 contract over pro");
    // floor(5,000,000 × 17 / 31), the contract's quota, not pro's.
    assert_drawn(&labels, "quota 2,741,935");
    assert!(
        html.contains("contract over pro, 17 of 31 days of ₩1,500,000"),
        "{html}"
    );
    assert!(
        html.contains(
            "2,459 blocks of 1,000 over the prorated quota of 2,741,935, at ₩200 a block"
        ),
        "{html}"
    );
    assert!(
        html.contains("base fee ₩1,500,000 a month, 5,000,000 api_calls included, ₩200 per 1,000 api_calls over, seats 200"),
        "the contract's terms in its tooltip: {html}"
    );

    // A contract over the current plan keeps pro's quota and price where it names none.
    let (_, _, html) = page("contract-after-a-catalog-plan", Lang::En);
    let labels = drawn_labels(&html);
    assert_drawn(&labels, "pro · ₩99,000/month");
    assert_drawn(&labels, "contract over pro · ₩600,000/month");
    assert_drawn(&labels, "quota 38,709");
    assert!(
        html.contains("contract over pro, 12 of 31 days of ₩600,000"),
        "{html}"
    );

    let (_, _, html) = page("contract-from-the-15th", Lang::Ko);
    let labels = drawn_labels(&html);
    assert_drawn(&labels, "pro 기반 계약 · 월 ₩1,500,000");
    assert_drawn(&labels, "10-15 pro 기반 계약");
}

#[test]
fn a_purge_is_marked_on_its_day_with_what_it_deleted() {
    let (_, outcome, html) = page("purge-org-after-a-paid-month", Lang::En);
    let labels = drawn_labels(&html);
    let rows: u64 = outcome.purges[0].rows.values().sum();
    assert!(rows > 0, "the purge deleted rows");
    assert_drawn(&labels, &format!("11-10 purged · {rows} rows"));
    assert!(
        html.contains("purge organization acme"),
        "the step in its tooltip"
    );
    let (_, _, html) = page("purge-org-after-a-paid-month", Lang::Ko);
    assert_drawn(&drawn_labels(&html), &format!("11-10 삭제 · {rows}행"));
}

#[test]
fn korean_pages_say_every_label_in_korean() {
    let (scenario, _, html) = page("declined-dunning", Lang::Ko);
    assert!(html.contains(r#"<html lang="ko">"#));
    let labels = drawn_labels(&html);
    assert_drawn(&labels, "11-05 ✗ 실패");
    assert_drawn(&labels, "연체 11-05");
    assert_drawn(&labels, "해지 11-08");
    assert_drawn(&labels, "2026년 11월");
    assert_drawn(&labels, "pro · 월 ₩99,000");
    assert!(html.contains("pro, 31일 중 31일, 월 ₩99,000"));
    for english in ["Invoices", "Timeline", "failed", "past due", "subtotal"] {
        assert!(
            !without(&html, "style")
                .replace(&scenario.name, "")
                .contains(english),
            "English {english:?} on the Korean page"
        );
    }
}

#[test]
fn pages_are_self_contained_and_the_same_for_the_same_run() {
    for name in [
        "pro-upgraded-mid-month",
        "sync-drift-repaired",
        "contract-from-the-15th",
    ] {
        let (_, _, first) = page(name, Lang::En);
        let (_, _, second) = page(name, Lang::En);
        assert_eq!(first, second, "{name}: deterministic");
        self_contained(&first);
    }
}

/// No script, link, image, font or address to fetch, and a print style.
fn self_contained(first: &str) {
    for outside in [
        "<script",
        "<link",
        "src=",
        "@import",
        "@font-face",
        "http://",
        "https://",
        "<img",
    ] {
        let found = first.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !found.contains(outside),
            "{outside} on a self-contained page"
        );
    }
    assert!(first.contains("@media print"), "a print style");
}

#[test]
fn every_page_passes_the_accessibility_check() {
    let mut outcomes = Vec::new();
    for name in [
        "declined-dunning",
        "pro-upgraded-mid-month",
        "overage-in-each-period",
        "sync-drift-repaired",
        "contract-from-the-15th",
    ] {
        for lang in Lang::ALL {
            let (_, outcome, html) = page(name, lang);
            let problems = accessibility(&html);
            assert!(problems.is_empty(), "{name} ({lang:?}): {problems:#?}");
            if lang == Lang::En {
                outcomes.push((name, outcome));
            }
        }
    }
    let rows: Vec<IndexRow<'_>> = outcomes
        .iter()
        .map(|(stem, o)| IndexRow {
            stem,
            outcome: Some(o),
        })
        .chain([IndexRow {
            stem: "broken",
            outcome: None,
        }])
        .collect();
    for lang in Lang::ALL {
        let index = report::index(&rows, lang);
        let problems = accessibility(&index);
        assert!(problems.is_empty(), "index ({lang:?}): {problems:#?}");
        assert!(index.contains(r#"<a href="./declined-dunning.html">"#));
    }
    let index = report::index(&rows, Lang::En);
    assert!(index.contains("5 of 6 scenarios hold."), "{index}");
    assert!(index.contains("₩238,780"), "{index}");
    assert!(index.contains("invalid file"), "{index}");
}

#[test]
fn the_accessibility_check_finds_what_it_looks_for() {
    let bad = r##"<!doctype html><html><head><title>x</title><style>p { color: #999999; background: #ffffff; }</style></head>
<body><h2>skipped h1</h2><h4>skipped h3</h4><svg><rect/></svg><img src="x.png"><table><tr><td>1</td></tr></table>
<input type="text"><svg role="img"><text fill="#cccccc">faint</text></svg></body></html>"##;
    let problems = accessibility(bad);
    for wanted in [
        "no lang",
        "first heading is h2",
        "h2 then h4",
        "svg without a title",
        "img without alt",
        "table without a header row",
        "input without a label",
        "#999999 on #ffffff",
        "#cccccc on #ffffff",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(wanted)),
            "missed {wanted:?}: {problems:#?}"
        );
    }
    // The palette's own pairs all pass.
    for (fg, bg) in palette::TEXT_PAIRS {
        assert!(
            contrast(fg, bg) >= 4.5,
            "{fg} on {bg}: {}",
            contrast(fg, bg)
        );
    }
    assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 0.01);
    assert!((contrast("#777777", "#ffffff") - 4.48).abs() < 0.01);
}

/// What an accessibility reviewer would flag on `html`: the page's language, headings in order
/// (one h1 first, no level skipped), every svg titled or labelled (or hidden as decoration),
/// every img with alt text, every table with a header row of `<th scope>`, every form field
/// labelled, and every text colour against its background at a contrast of at least 4.5:1 (CSS
/// rules with `color`, against their `background` or the page's; SVG text against the paper).
fn accessibility(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !html.contains("<html lang=\"") {
        problems.push("the page has no lang".to_owned());
    }
    let mut last = 0;
    let mut at = 0;
    while let Some(found) = html[at..].find("<h") {
        let i = at + found + 2;
        at = i;
        let Some(level) = html[i..]
            .chars()
            .next()
            .and_then(|c| c.to_digit(10))
            .filter(|_| html[i + 1..].starts_with(['>', ' ']))
        else {
            continue;
        };
        if last == 0 && level != 1 {
            problems.push(format!("the first heading is h{level}, not h1"));
        } else if last != 0 && level > last + 1 {
            problems.push(format!("headings skip a level: h{last} then h{level}"));
        }
        last = level;
    }
    if last == 0 {
        problems.push("the page has no heading".to_owned());
    }
    for svg in html.split("<svg").skip(1) {
        let open = &svg[..svg.find('>').unwrap_or(svg.len())];
        let body = svg.get(open.len() + 1..).unwrap_or("").trim_start();
        let hidden = open.contains(r#"aria-hidden="true""#);
        let labelled = open.contains("aria-label=") || body.starts_with("<title");
        if !hidden && !labelled {
            problems.push(format!("an svg without a title or label: <svg{open}>"));
        }
    }
    for img in html.split("<img").skip(1) {
        let open = &img[..img.find('>').unwrap_or(img.len())];
        if !open.contains("alt=\"") {
            problems.push(format!("an img without alt: <img{open}>"));
        }
    }
    for table in html.split("<table").skip(1) {
        let table = &table[..table.find("</table>").unwrap_or(table.len())];
        let first_row = table
            .find("<tr")
            .map(|r| &table[r..table[r..].find("</tr>").map_or(table.len(), |e| r + e)]);
        let headed = first_row.is_some_and(|row| {
            row.contains("<th") && !row.contains("<td") && row.contains("scope=\"col\"")
        });
        if !headed {
            problems.push("a table without a header row of <th scope=\"col\">".to_owned());
        }
    }
    for field in ["<input", "<select", "<textarea"] {
        for part in html.split(field).skip(1) {
            let open = &part[..part.find('>').unwrap_or(part.len())];
            let id = open.split("id=\"").nth(1).and_then(|r| r.split('"').next());
            let labelled = open.contains("aria-label=")
                || id.is_some_and(|id| html.contains(&format!("for=\"{id}\"")));
            if !labelled {
                problems.push(format!("an input without a label: {field}{open}>"));
            }
        }
    }
    // Contrast: CSS rules, then SVG text.
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|s| s.split("</style>").next())
        .unwrap_or("");
    let page_bg = declaration(rule_of(style, "body").unwrap_or(""), "background")
        .unwrap_or_else(|| "#ffffff".to_owned());
    for rule in style.split('}') {
        let Some(color) = declaration(rule, "color") else {
            continue;
        };
        let background = declaration(rule, "background").unwrap_or_else(|| page_bg.clone());
        check_contrast(&mut problems, &color, &background);
    }
    for part in html.split("<text").skip(1) {
        let open = &part[..part.find('>').unwrap_or(part.len())];
        let fill = open
            .split("fill=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("#000000");
        check_contrast(&mut problems, fill, "#ffffff");
    }
    problems.sort();
    problems.dedup();
    problems
}

fn check_contrast(problems: &mut Vec<String>, fg: &str, bg: &str) {
    let ratio = contrast(fg, bg);
    if ratio < 4.5 {
        problems.push(format!(
            "text {fg} on {bg} has a contrast of {ratio:.2}, below 4.5"
        ));
    }
}

/// The body of the first CSS rule whose selector is exactly `selector`.
fn rule_of<'a>(style: &'a str, selector: &str) -> Option<&'a str> {
    style
        .split('}')
        .find(|r| r.split('{').next().is_some_and(|s| s.trim() == selector))
}

/// The value of `property` in a CSS rule (`color` does not match `background-color`).
fn declaration(rule: &str, property: &str) -> Option<String> {
    let body = rule.split('{').nth(1)?;
    body.split(';').find_map(|d| {
        let (name, value) = d.split_once(':')?;
        (name.trim() == property).then(|| value.trim().to_owned())
    })
}

/// The WCAG 2 contrast ratio of two `#rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    let luminance = |hex: &str| {
        let hex = hex.trim_start_matches('#');
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    };
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}
