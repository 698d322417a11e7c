//! Generators of stories that reach the billing boundaries: any start day from the 1st to the
//! 31st of months of 28 to 31 days (leap February 2028 weighted in), steps on the same day as the
//! one before (usage on change and cancel days, a second change the same Seoul day), on the first
//! and last day of a month, at 00:00, 12:00 or 23:59 in Seoul; steps over two months and a
//! final date through the next close, charge day and retries. Catalogs are either
//! `scenarios/catalog.toml` or generated: KRW or USD (now and then business in the other one),
//! tax 0 or 0.1, quotas from 0 to 100,000, metrics with and without an overage price, blocks of 1
//! and above, sub-unit prices. Orgs hold any test card or none, and may register another.

use std::collections::BTreeMap;

use billing_harness::model::{Catalog, Currency, Month, Overage, Plan, Terms};
use billing_harness::payments::TestCard;
use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::model::{Action, Step, Story, TenantSpec, TimeOfDay};

/// How far a step is from the one before.
#[derive(Debug, Clone)]
enum Gap {
    SameDay,
    NextDay,
    Days(u32),
    LastOfMonth,
    FirstOfNextMonth,
    DayOfNextMonth(u32),
}

/// A plan for a tenant: one of its product's (by index), or now and then another product's.
#[derive(Debug, Clone)]
struct PlanPick {
    other_product: bool,
    index: u8,
}

/// A step before its tenant, org and plan are resolved against the story.
#[derive(Debug, Clone)]
enum RawAction {
    Subscribe(u8, PlanPick),
    Change(u8, PlanPick),
    /// Two changes the same Seoul day, the second at 23:59: the once-a-day rule.
    ChangeTwice(u8, PlanPick, PlanPick),
    Cancel(u8),
    Usage(u8, u8, Quantity),
    Late(u8, u8, Quantity),
    Card(u8, TestCard),
}

fn time() -> impl Strategy<Value = TimeOfDay> {
    prop_oneof![
        3 => Just(TimeOfDay::Midnight),
        1 => Just(TimeOfDay::Noon),
        3 => Just(TimeOfDay::LastMinute),
    ]
}

fn gap() -> impl Strategy<Value = Gap> {
    prop_oneof![
        3 => Just(Gap::SameDay),
        1 => Just(Gap::NextDay),
        3 => (1u32..=20).prop_map(Gap::Days),
        2 => Just(Gap::LastOfMonth),
        2 => Just(Gap::FirstOfNextMonth),
        1 => (1u32..=31).prop_map(Gap::DayOfNextMonth),
    ]
}

fn plan_pick() -> impl Strategy<Value = PlanPick> {
    (prop::bool::weighted(0.08), any::<u8>()).prop_map(|(other_product, index)| PlanPick {
        other_product,
        index,
    })
}

fn card() -> impl Strategy<Value = TestCard> {
    prop_oneof![
        8 => Just(TestCard::Ok),
        1 => Just(TestCard::Declined),
        1 => Just(TestCard::InsufficientFunds),
        1 => Just(TestCard::Expired),
        2 => (0u32..=4).prop_map(TestCard::FailTimes),
        1 => Just(TestCard::Timeout),
    ]
}

/// A usage quantity: absolute, or a share of the included quota of the plan the tenant last asked
/// for (so that usage lands around the prorated quota, not only far from it).
#[derive(Debug, Clone)]
enum Quantity {
    Units(i64),
    OfQuota { percent: u64, delta: i64 },
}

/// Quantities around small quotas and block edges, shares of the quota, large ones, and now and
/// then an invalid one (0 or negative).
fn quantity() -> impl Strategy<Value = Quantity> {
    prop_oneof![
        3 => (1i64..=3).prop_map(Quantity::Units),
        2 => (1i64..=60).prop_map(Quantity::Units),
        2 => (1i64..=300, -1i64..=1).prop_map(|(k, e)| Quantity::Units(k * 1000 + e)),
        1 => (1i64..=3_000_000).prop_map(Quantity::Units),
        1 => (-1i64..=0).prop_map(Quantity::Units),
        6 => (0u64..=250, -2i64..=2).prop_map(|(percent, delta)| Quantity::OfQuota { percent, delta }),
    ]
}

fn raw_action() -> impl Strategy<Value = RawAction> {
    prop_oneof![
        1 => (any::<u8>(), plan_pick()).prop_map(|(t, p)| RawAction::Subscribe(t, p)),
        4 => (any::<u8>(), plan_pick()).prop_map(|(t, p)| RawAction::Change(t, p)),
        1 => (any::<u8>(), plan_pick(), plan_pick()).prop_map(|(t, a, b)| RawAction::ChangeTwice(t, a, b)),
        1 => any::<u8>().prop_map(RawAction::Cancel),
        10 => (any::<u8>(), any::<u8>(), quantity()).prop_map(|(t, m, q)| RawAction::Usage(t, m, q)),
        1 => (any::<u8>(), any::<u8>(), quantity()).prop_map(|(t, m, q)| RawAction::Late(t, m, q)),
        1 => (any::<u8>(), card()).prop_map(|(o, c)| RawAction::Card(o, c)),
    ]
}

fn quota() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(10),
        Just(31),
        1u64..=100,
        Just(1000),
        Just(100_000),
    ]
}

fn price(usd: bool) -> BoxedStrategy<Decimal> {
    if usd {
        prop_oneof![
            4 => (1i64..=999).prop_map(|cents| Decimal::new(cents, 2)),
            1 => Just(Decimal::new(5, 3)),
        ]
        .boxed()
    } else {
        prop_oneof![
            4 => (1i64..=1000).prop_map(Decimal::from),
            1 => Just(Decimal::new(5, 1)),
        ]
        .boxed()
    }
}

fn fee(usd: bool) -> BoxedStrategy<Decimal> {
    if usd {
        prop_oneof![
            Just(Decimal::new(1999, 2)),
            (100i64..=99_999).prop_map(|cents| Decimal::new(cents, 2)),
        ]
        .boxed()
    } else {
        prop_oneof![
            Just(Decimal::from(99_000)),
            Just(Decimal::from(290_000)),
            (1i64..=500).prop_map(|k| Decimal::from(k * 1000)),
            (1_000i64..=500_000).prop_map(Decimal::from),
        ]
        .boxed()
    }
}

fn overage(usd: bool) -> impl Strategy<Value = Overage> {
    let block = prop_oneof![2 => Just(1u64), 1 => Just(2), 1 => Just(10), 1 => Just(1000), 1 => 1u64..=1000];
    (block, price(usd)).prop_map(|(block, price)| Overage { block, price })
}

/// One metric of a plan: its included quota and, maybe, an overage price.
type MetricTerms = (u64, Option<Overage>);

/// `priced` is the chance of an overage price: 0 never, 1 always.
fn metric(usd: bool, priced: f64) -> BoxedStrategy<MetricTerms> {
    if priced <= 0.0 {
        (quota(), Just(None)).boxed()
    } else if priced >= 1.0 {
        (quota(), overage(usd).prop_map(Some)).boxed()
    } else {
        (quota(), prop::option::weighted(priced, overage(usd))).boxed()
    }
}

fn plan(
    key: &str,
    product: &str,
    currency: Currency,
    fee: Decimal,
    metrics: &[(&str, MetricTerms)],
) -> Plan {
    let mut included = BTreeMap::new();
    let mut overages = BTreeMap::new();
    for (name, (quota, overage)) in metrics {
        included.insert((*name).to_owned(), *quota);
        if let Some(o) = overage {
            overages.insert((*name).to_owned(), o.clone());
        }
    }
    Plan {
        key: key.to_owned(),
        product: product.to_owned(),
        currency,
        terms: Terms {
            base_fee: fee,
            included,
            overage: overages,
        },
        limits: BTreeMap::new(),
    }
}

/// A catalog of the same four plans as `scenarios/catalog.toml` (free, pro and business on
/// analytics, crm-basic on crm) with generated prices, quotas and settings; now and then business
/// is in the other currency, so that a change between it and free or pro is refused.
fn generated_catalog() -> impl Strategy<Value = Catalog> {
    (any::<bool>(), prop::bool::weighted(0.5))
        .prop_flat_map(|(usd, foreign)| {
            let business_usd = usd != foreign;
            (
                Just((usd, business_usd)),
                any::<bool>(),
                (fee(usd), fee(business_usd), fee(usd)),
                (metric(usd, 0.3), metric(usd, 1.0), metric(usd, 0.0)),
                (
                    metric(business_usd, 0.5),
                    metric(business_usd, 1.0),
                    metric(usd, 1.0),
                ),
            )
        })
        .prop_map(
            |(
                (usd, business_usd),
                taxed,
                (pro_fee, business_fee, crm_fee),
                (free_api, pro_api, pro_storage),
                (business_api, business_storage, contacts),
            )| {
                let of = |usd| if usd { Currency::Usd } else { Currency::Krw };
                let currency = of(usd);
                let mut catalog = Catalog::new(vec![
                    plan(
                        "free",
                        "analytics",
                        currency,
                        Decimal::ZERO,
                        &[("api_calls", free_api)],
                    ),
                    plan(
                        "pro",
                        "analytics",
                        currency,
                        pro_fee,
                        &[("api_calls", pro_api), ("storage", pro_storage)],
                    ),
                    plan(
                        "business",
                        "analytics",
                        of(business_usd),
                        business_fee,
                        &[("api_calls", business_api), ("storage", business_storage)],
                    ),
                    plan(
                        "crm-basic",
                        "crm",
                        currency,
                        crm_fee,
                        &[("contacts", contacts)],
                    ),
                ]);
                catalog.currency = currency;
                catalog.tax_rate = if taxed {
                    Decimal::new(1, 1)
                } else {
                    Decimal::ZERO
                };
                catalog
            },
        )
}

/// A month from 2026 to 2028 and any day 1 to 31 (clamped to the month's last), with the
/// months around leap February 2028 and the turn of the year weighted in.
fn start() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        4 => (2026i32..=2028, 1u32..=12, 1u32..=31),
        1 => (Just(2028), 1u32..=2, 1u32..=31),
        1 => (Just(2027), 11u32..=12, 1u32..=31),
    ]
    .prop_map(|(y, m, d)| clamp_day(Month::new(y, m).expect("a month"), d))
}

fn clamp_day(month: Month, day: u32) -> NaiveDate {
    month
        .first_day()
        .with_day(day.min(month.days()))
        .expect("a day of the month")
}

fn apply(gap: &Gap, day: NaiveDate) -> NaiveDate {
    let month = Month::of(day);
    let last = month.end().pred_opt().expect("a last day");
    match gap {
        Gap::SameDay => day,
        Gap::NextDay => day.succ_opt().expect("a next day"),
        Gap::Days(n) => day + chrono::Days::new(u64::from(*n)),
        Gap::LastOfMonth if day == last => month.next().end().pred_opt().expect("a last day"),
        Gap::LastOfMonth => last,
        Gap::FirstOfNextMonth => month.end(),
        Gap::DayOfNextMonth(d) => clamp_day(month.next(), *d),
    }
}

const ANALYTICS: [&str; 3] = ["free", "pro", "business"];

fn pick_plan(product: &str, pick: &PlanPick) -> String {
    let own: &[&str] = if product == "crm" {
        &["crm-basic"]
    } else {
        &ANALYTICS
    };
    let other: &[&str] = if product == "crm" {
        &ANALYTICS
    } else {
        &["crm-basic"]
    };
    let plans = if pick.other_product { other } else { own };
    // pro and business twice as often as free on analytics.
    let weighted: Vec<&str> = plans
        .iter()
        .flat_map(|p| if *p == "free" { vec![*p] } else { vec![*p, *p] })
        .collect();
    weighted[pick.index as usize % weighted.len()].to_owned()
}

fn pick_metric(product: &str, index: u8) -> String {
    match (product, index % 16) {
        ("crm", 15) => "api_calls",
        ("crm", _) => "contacts",
        (_, 0..=10) => "api_calls",
        (_, 11..=14) => "storage",
        _ => "contacts",
    }
    .to_owned()
}

/// Raw parts of a story before they are resolved into one.
type Parts = (
    Catalog,
    NaiveDate,
    Vec<Option<TestCard>>,
    Vec<(u8, bool)>,
    Vec<(TimeOfDay, PlanPick)>,
    Vec<(Gap, TimeOfDay, RawAction)>,
    (u32, u32),
);

/// Stories: every tenant subscribes on the start day, then up to eight steps within that month and
/// the next, then the clock runs to a final day in the month after the last step or the one after
/// that (at most two months after the start month: three closes, each month's charge and
/// retries).
pub(crate) fn story(default_catalog: Catalog) -> impl Strategy<Value = Story> {
    let catalog = prop_oneof![1 => Just(default_catalog), 3 => generated_catalog()];
    let orgs = prop::collection::vec(prop::option::weighted(0.85, card()), 1..=2);
    let tenants = prop::collection::vec((any::<u8>(), prop::bool::weighted(0.15)), 1..=2);
    let firsts = prop::collection::vec((time(), plan_pick()), 2);
    let steps = prop::collection::vec((gap(), time(), raw_action()), 0..=8);
    let until = (
        prop_oneof![4 => Just(1u32), 1 => Just(2)],
        prop_oneof![4 => 1u32..=9, 1 => 1u32..=28],
    );
    (catalog, start(), orgs, tenants, firsts, steps, until).prop_map(assemble)
}

fn assemble(parts: Parts) -> Story {
    let (catalog, start, orgs, raw_tenants, firsts, raw_steps, (until_months, until_day)) = parts;
    let tenants: Vec<TenantSpec> = raw_tenants
        .iter()
        .map(|(org, crm)| TenantSpec {
            org: *org as usize % orgs.len(),
            product: if *crm { "crm" } else { "analytics" }.to_owned(),
        })
        .collect();
    let mut steps = Vec::new();
    let mut times: Vec<TimeOfDay> = firsts.iter().map(|f| f.0).take(tenants.len()).collect();
    times.sort();
    for (i, t) in tenants.iter().enumerate() {
        steps.push(Step {
            day: start,
            time: times[i],
            action: Action::Subscribe {
                tenant: i,
                plan: pick_plan(&t.product, &firsts[i].1),
            },
        });
    }
    // Steps stay within the start month and the next; the story ends by the month after.
    let horizon = Month::of(start).next().end();
    // The plan each tenant last asked for, to size usage against its quota.
    let mut asked: Vec<String> = steps
        .iter()
        .map(|s| match &s.action {
            Action::Subscribe { plan, .. } => plan.clone(),
            _ => unreachable!("the first steps subscribe"),
        })
        .collect();
    let units = |asked: &[String], tenant: usize, metric: &str, q: &Quantity| match q {
        Quantity::Units(n) => *n,
        Quantity::OfQuota { percent, delta } => {
            let quota = catalog
                .plan(&asked[tenant])
                .and_then(|p| p.terms.included.get(metric).copied())
                .unwrap_or(0);
            let share = i64::try_from(quota * percent / 100).unwrap_or(i64::MAX);
            (share + delta).max(1)
        }
    };
    let mut day = start;
    let mut last_time = *times.last().expect("one tenant at least");
    for (gap, time, raw) in raw_steps {
        let next = apply(&gap, day);
        if next >= horizon {
            break;
        }
        let time = if next == day {
            time.max(last_time)
        } else {
            time
        };
        let tenant = |t: u8| t as usize % tenants.len();
        let product = |t: u8| tenants[tenant(t)].product.as_str();
        let mut second = None;
        let action = match raw {
            RawAction::Subscribe(t, pick) => {
                let plan = pick_plan(product(t), &pick);
                asked[tenant(t)] = plan.clone();
                Action::Subscribe {
                    tenant: tenant(t),
                    plan,
                }
            }
            RawAction::Change(t, pick) => {
                let plan = pick_plan(product(t), &pick);
                asked[tenant(t)] = plan.clone();
                Action::ChangePlan {
                    tenant: tenant(t),
                    plan,
                }
            }
            RawAction::ChangeTwice(t, first, then) => {
                let plan = pick_plan(product(t), &then);
                asked[tenant(t)] = plan.clone();
                second = Some(Action::ChangePlan {
                    tenant: tenant(t),
                    plan,
                });
                Action::ChangePlan {
                    tenant: tenant(t),
                    plan: pick_plan(product(t), &first),
                }
            }
            RawAction::Cancel(t) => Action::Cancel { tenant: tenant(t) },
            RawAction::Usage(t, m, q) => {
                let metric = pick_metric(product(t), m);
                Action::Usage {
                    tenant: tenant(t),
                    quantity: units(&asked, tenant(t), &metric, &q),
                    metric,
                }
            }
            RawAction::Late(t, m, q) => {
                let metric = pick_metric(product(t), m);
                Action::LateUsage {
                    tenant: tenant(t),
                    quantity: units(&asked, tenant(t), &metric, &q),
                    metric,
                }
            }
            RawAction::Card(o, card) => Action::SetCard {
                org: o as usize % orgs.len(),
                card,
            },
        };
        steps.push(Step {
            day: next,
            time,
            action,
        });
        if let Some(action) = second {
            steps.push(Step {
                day: next,
                time: TimeOfDay::LastMinute,
                action,
            });
        }
        day = next;
        last_time = steps.last().expect("a step").time;
    }
    let mut until_month = Month::of(day);
    for _ in 0..until_months {
        until_month = until_month.next();
    }
    let until_month = until_month.min(Month::of(horizon));
    debug_assert!(
        until_month > Month::of(day),
        "the story ends after its last step"
    );
    Story {
        catalog,
        start,
        until: clamp_day(until_month, until_day),
        orgs,
        tenants,
        steps,
    }
}
