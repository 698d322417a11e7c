//! A billing story and its model: what the platform must do, computed from the steps alone.
//!
//! The model never reads the database. It replays the story on its own clock (jobs at every
//! Seoul midnight: the close on the 1st, the charge on the charge day, the daily retry), applies
//! each operation's rules in the documented order, keeps plan periods, usage, invoices, card
//! scripts and subscription states in memory, and bills every month with its own integer
//! arithmetic: money in ten-thousandths, days counted one by one, blocks rounded up by hand. The
//! pure [`billing::invoice`] is fed the same periods and usage (from the story, not from rows) and
//! must agree, so a bug in the reference itself shows up too.

use std::collections::BTreeSet;

use billing_harness::billing::{self, Invoice, InvoiceInput, Line, LineKind, PlanPeriod, Usage};
use billing_harness::model::{Catalog, Currency, Month};
use billing_harness::payments::TestCard;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Seoul;
use rust_decimal::Decimal;

use super::record::{
    HistoryRec, InvoiceRec, PaymentRec, PeriodRec, Record, SubscriptionRec, diff_lines,
    invoice_text,
};

/// When in its (Seoul) day a step happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimeOfDay {
    /// 00:00, right after the day's jobs.
    Midnight,
    /// 12:00.
    Noon,
    /// 23:59, the last minute of the day.
    LastMinute,
}

impl TimeOfDay {
    pub(crate) fn label(self) -> &'static str {
        match self {
            TimeOfDay::Midnight => "00:00",
            TimeOfDay::Noon => "12:00",
            TimeOfDay::LastMinute => "23:59",
        }
    }

    fn hm(self) -> (u32, u32) {
        match self {
            TimeOfDay::Midnight => (0, 0),
            TimeOfDay::Noon => (12, 0),
            TimeOfDay::LastMinute => (23, 59),
        }
    }
}

/// A tenant of the story: one deployment of a product for one of its orgs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantSpec {
    pub(crate) org: usize,
    pub(crate) product: String,
}

/// What a step does. Tenants and orgs index [`Story::tenants`] and [`Story::orgs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Subscribe {
        tenant: usize,
        plan: String,
    },
    ChangePlan {
        tenant: usize,
        plan: String,
    },
    Cancel {
        tenant: usize,
    },
    /// Usage on the step's own day.
    Usage {
        tenant: usize,
        metric: String,
        quantity: i64,
    },
    /// Usage reported late, for the last day of the previous month.
    LateUsage {
        tenant: usize,
        metric: String,
        quantity: i64,
    },
    /// Register a new card for an org (it replaces the active one).
    SetCard {
        org: usize,
        card: TestCard,
    },
}

/// One operation at one Seoul instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) day: NaiveDate,
    pub(crate) time: TimeOfDay,
    pub(crate) action: Action,
}

impl Step {
    /// The instant of the step.
    pub(crate) fn at(&self) -> DateTime<Utc> {
        seoul(self.day, self.time)
    }

    /// The day a usage step records usage for.
    pub(crate) fn usage_day(&self) -> NaiveDate {
        match self.action {
            Action::LateUsage { .. } => first_of_month(self.day).pred_opt().expect("a day before"),
            _ => self.day,
        }
    }

    /// One line for people: `2026-10-10 23:59 change_plan t0 -> pro`.
    pub(crate) fn describe(&self) -> String {
        let what = match &self.action {
            Action::Subscribe { tenant, plan } => format!("subscribe t{tenant} to {plan}"),
            Action::ChangePlan { tenant, plan } => format!("change_plan t{tenant} to {plan}"),
            Action::Cancel { tenant } => format!("cancel t{tenant}"),
            Action::Usage {
                tenant,
                metric,
                quantity,
            } => format!("usage t{tenant} {quantity} {metric}"),
            Action::LateUsage {
                tenant,
                metric,
                quantity,
            } => format!(
                "late usage t{tenant} {quantity} {metric} for {}",
                self.usage_day()
            ),
            Action::SetCard { org, card } => format!("set_card org{org} {card}"),
        };
        format!("{} {} {what}", self.day, self.time.label())
    }
}

/// A story: a catalog, orgs with their first card, tenants, and steps in time order; the clock
/// starts at 00:00 on `start` and, after the last step, runs to 00:00 on `until`.
#[derive(Debug, Clone)]
pub(crate) struct Story {
    pub(crate) catalog: Catalog,
    pub(crate) start: NaiveDate,
    pub(crate) until: NaiveDate,
    pub(crate) orgs: Vec<Option<TestCard>>,
    pub(crate) tenants: Vec<TenantSpec>,
    pub(crate) steps: Vec<Step>,
}

impl Story {
    pub(crate) fn start_at(&self) -> DateTime<Utc> {
        seoul(self.start, TimeOfDay::Midnight)
    }

    pub(crate) fn end_at(&self) -> DateTime<Utc> {
        seoul(self.until, TimeOfDay::Midnight)
    }
}

/// `time` on `day` in Seoul.
pub(crate) fn seoul(day: NaiveDate, time: TimeOfDay) -> DateTime<Utc> {
    let (h, m) = time.hm();
    Seoul
        .from_local_datetime(&day.and_hms_opt(h, m, 0).expect("a valid time"))
        .single()
        .expect("Seoul has no DST gaps")
        .with_timezone(&Utc)
}

/// The Seoul calendar day of `at`.
pub(crate) fn day_of(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Seoul).date_naive()
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("every month has a 1st")
}

/// Days in a month from the calendar's own rule, not from chrono.
fn days_in(month: Month) -> u32 {
    let y = month.year();
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match month.month() {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `amount` in ten-thousandths (the database's 4 decimals), exactly.
fn ten_thousandths(amount: Decimal) -> i128 {
    assert!(amount.scale() <= 4, "{amount} has more than 4 decimals");
    amount.mantissa() * 10i128.pow(4 - amount.scale())
}

/// What the model expects, and where the pure reference disagreed with it.
#[derive(Debug)]
pub(crate) struct Expected {
    pub(crate) record: Record,
    /// Every invoice on which [`billing::invoice`] disagreed with the model's arithmetic.
    pub(crate) reference: Vec<String>,
}

/// Plays `story` on the model.
pub(crate) fn expect(story: &Story) -> Expected {
    let mut sim = Sim::new(story);
    let steps = story.steps.iter().map(|s| sim.step(s)).collect();
    sim.advance_to(story.end_at());
    sim.finish(steps)
}

struct Card {
    card: TestCard,
    /// Charges the gateway saw on this card's billing key (a `fail_times:N` card fails the first
    /// N).
    charges: u32,
}

struct Sub {
    tenant: usize,
    plan: String,
    status: &'static str,
    started_on: NaiveDate,
    cancelled_on: Option<NaiveDate>,
    cancel_reason: Option<&'static str>,
    current: (NaiveDate, NaiveDate),
    last_change: Option<DateTime<Utc>>,
}

struct Period {
    sub: usize,
    plan: String,
    from: NaiveDate,
    until: Option<NaiveDate>,
}

struct Use {
    sub: usize,
    day: NaiveDate,
    metric: String,
    quantity: u64,
}

struct Inv {
    sub: usize,
    status: &'static str,
    attempts: i16,
    last_attempt: Option<DateTime<Utc>>,
    due_on: NaiveDate,
    invoice: Invoice,
}

struct Sim<'s> {
    story: &'s Story,
    now: DateTime<Utc>,
    closed: BTreeSet<Month>,
    /// Per org, every card registered; the last one is active.
    cards: Vec<Vec<Card>>,
    subs: Vec<Sub>,
    periods: Vec<Period>,
    usage: Vec<Use>,
    invoices: Vec<Inv>,
    payments: Vec<PaymentRec>,
    captures: Vec<Decimal>,
    history: Vec<HistoryRec>,
    reference: Vec<String>,
}

type Refusal = Result<(), &'static str>;

impl<'s> Sim<'s> {
    fn new(story: &'s Story) -> Sim<'s> {
        Sim {
            story,
            now: story.start_at(),
            closed: BTreeSet::new(),
            cards: story
                .orgs
                .iter()
                .map(|card| card.iter().map(|&card| Card { card, charges: 0 }).collect())
                .collect(),
            subs: Vec::new(),
            periods: Vec::new(),
            usage: Vec::new(),
            invoices: Vec::new(),
            payments: Vec::new(),
            captures: Vec::new(),
            history: Vec::new(),
            reference: Vec::new(),
        }
    }

    // ---- the clock and its jobs ----

    /// Runs the jobs of every midnight after now up to `target` (inclusive), then stands there.
    fn advance_to(&mut self, target: DateTime<Utc>) {
        loop {
            let next = seoul(
                day_of(self.now).succ_opt().expect("a next day"),
                TimeOfDay::Midnight,
            );
            if next > target {
                break;
            }
            self.now = next;
            let day = day_of(next);
            if day.day() == 1 {
                self.close(Month::of(day).prev());
            }
            if day.day() == self.story.catalog.charge_day {
                self.charge(day, next);
            }
            self.retry(next);
        }
        self.now = self.now.max(target);
    }

    fn close(&mut self, month: Month) {
        self.closed.insert(month);
        let charge_day = self.story.catalog.charge_day;
        for sub in 0..self.subs.len() {
            if let Some(invoice) = self.bill(sub, month) {
                self.invoices.push(Inv {
                    sub,
                    status: if invoice.total.is_zero() {
                        "paid"
                    } else {
                        "finalized"
                    },
                    attempts: 0,
                    last_attempt: None,
                    due_on: month
                        .next()
                        .first_day()
                        .with_day(charge_day)
                        .expect("charge days are 2 to 28"),
                    invoice,
                });
            }
        }
    }

    fn charge(&mut self, day: NaiveDate, at: DateTime<Utc>) {
        let due: Vec<usize> = (0..self.invoices.len())
            .filter(|&i| {
                let inv = &self.invoices[i];
                inv.status == "finalized" && inv.invoice.total > Decimal::ZERO && inv.due_on <= day
            })
            .collect();
        for i in due {
            self.attempt(i, at);
        }
    }

    fn retry(&mut self, at: DateTime<Utc>) {
        let due: Vec<usize> = (0..self.invoices.len())
            .filter(|&i| {
                let inv = &self.invoices[i];
                inv.status == "past_due"
                    && inv.attempts < 4
                    && inv.last_attempt.is_none_or(|last| last < at)
            })
            .collect();
        for i in due {
            self.attempt(i, at);
        }
    }

    /// One charge attempt of invoice `i` to its org's active card, by the card's script.
    fn attempt(&mut self, i: usize, at: DateTime<Utc>) {
        let today = day_of(at);
        let sub = self.invoices[i].sub;
        let tenant = self.subs[sub].tenant;
        let org = self.story.tenants[tenant].org;
        let number = self.invoices[i].attempts + 1;
        let amount = self.invoices[i].invoice.total;
        let (failure, card) = match self.cards[org].last_mut() {
            None => (Some("no_card"), None),
            Some(card) => {
                card.charges += 1;
                let failure = match card.card {
                    TestCard::Ok | TestCard::Timeout => None,
                    TestCard::Declined => Some("declined"),
                    TestCard::InsufficientFunds => Some("insufficient_funds"),
                    TestCard::Expired => Some("expired_card"),
                    TestCard::FailTimes(n) if card.charges <= n => Some("declined"),
                    TestCard::FailTimes(_) => None,
                };
                (failure, Some(card.card.last4()))
            }
        };
        self.payments.push(PaymentRec {
            tenant,
            period: self.invoices[i].invoice.month,
            at,
            attempt: number,
            amount,
            outcome: if failure.is_none() {
                "succeeded"
            } else {
                "failed"
            }
            .to_owned(),
            failure_code: failure.map(str::to_owned),
            card,
        });
        let inv = &mut self.invoices[i];
        inv.attempts = number;
        inv.last_attempt = Some(at);
        let cancelled = self.subs[sub].status == "cancelled";
        if failure.is_none() {
            self.captures.push(amount);
            inv.status = "paid";
            if !cancelled {
                let month = Month::of(today);
                let s = &mut self.subs[sub];
                s.status = "active";
                s.current = (month.first_day(), month.end());
                self.sync(sub, at);
            }
        } else if number < 4 {
            inv.status = "past_due";
            if self.subs[sub].status == "active" {
                self.subs[sub].status = "past_due";
                self.sync(sub, at);
            }
        } else {
            inv.status = "uncollectible";
            if !cancelled {
                self.end(sub, today, "payment_failed", at);
            }
        }
    }

    // ---- the operations ----

    fn step(&mut self, step: &Step) -> Option<String> {
        self.advance_to(step.at());
        let at = self.now;
        let result = match &step.action {
            Action::Subscribe { tenant, plan } => self.subscribe(*tenant, plan, at),
            Action::ChangePlan { tenant, plan } => self.change_plan(*tenant, plan, at),
            Action::Cancel { tenant } => self.cancel(*tenant, at),
            Action::Usage {
                tenant,
                metric,
                quantity,
            }
            | Action::LateUsage {
                tenant,
                metric,
                quantity,
            } => self.record_usage(*tenant, metric, *quantity, step.usage_day()),
            Action::SetCard { org, card } => {
                self.cards[*org].push(Card {
                    card: *card,
                    charges: 0,
                });
                Ok(())
            }
        };
        result.err().map(str::to_owned)
    }

    fn live(&self, tenant: usize) -> Option<usize> {
        (0..self.subs.len())
            .find(|&s| self.subs[s].tenant == tenant && self.subs[s].status != "cancelled")
    }

    fn has_card(&self, tenant: usize) -> bool {
        !self.cards[self.story.tenants[tenant].org].is_empty()
    }

    /// The plan's product check and card check (shared by subscribe and change).
    fn product_matches(&self, tenant: usize, plan: &str) -> bool {
        self.story
            .catalog
            .plan(plan)
            .expect("a plan of the catalog")
            .product
            == self.story.tenants[tenant].product
    }

    /// A plan's currency; a subscription's is its plan's, which no change may alter.
    fn currency(&self, plan: &str) -> Currency {
        self.story.catalog.plan(plan).expect("a plan").currency
    }

    fn needs_card(&self, tenant: usize, plan: &str) -> bool {
        let fee = self
            .story
            .catalog
            .plan(plan)
            .expect("a plan")
            .terms
            .base_fee;
        fee > Decimal::ZERO && !self.has_card(tenant)
    }

    fn subscribe(&mut self, tenant: usize, plan: &str, at: DateTime<Utc>) -> Refusal {
        let day = day_of(at);
        if self.live(tenant).is_some() {
            return Err("already_subscribed");
        }
        if !self.product_matches(tenant, plan) {
            return Err("plan_product_mismatch");
        }
        if self.needs_card(tenant, plan) {
            return Err("card_required");
        }
        let month = Month::of(day);
        self.subs.push(Sub {
            tenant,
            plan: plan.to_owned(),
            status: "active",
            started_on: day,
            cancelled_on: None,
            cancel_reason: None,
            current: (month.first_day(), month.end()),
            last_change: None,
        });
        let sub = self.subs.len() - 1;
        self.open_period(sub, plan, day);
        self.sync(sub, at);
        Ok(())
    }

    fn change_plan(&mut self, tenant: usize, plan: &str, at: DateTime<Utc>) -> Refusal {
        let day = day_of(at);
        let sub = self.live(tenant).ok_or("no_active_subscription")?;
        if !self.product_matches(tenant, plan) {
            return Err("plan_product_mismatch");
        }
        if self.currency(plan) != self.currency(&self.subs[sub].plan) {
            return Err("currency_mismatch");
        }
        if self.subs[sub].plan == plan {
            return Err("same_plan");
        }
        if self.subs[sub]
            .last_change
            .is_some_and(|last| day_of(last) == day)
        {
            return Err("plan_change_limit");
        }
        if self.needs_card(tenant, plan) {
            return Err("card_required");
        }
        self.close_period(sub, day);
        self.open_period(sub, plan, day);
        self.subs[sub].plan = plan.to_owned();
        self.subs[sub].last_change = Some(at);
        self.sync(sub, at);
        Ok(())
    }

    fn cancel(&mut self, tenant: usize, at: DateTime<Utc>) -> Refusal {
        let sub = self.live(tenant).ok_or("no_active_subscription")?;
        self.end(sub, day_of(at), "requested", at);
        Ok(())
    }

    fn record_usage(
        &mut self,
        tenant: usize,
        metric: &str,
        quantity: i64,
        day: NaiveDate,
    ) -> Refusal {
        if quantity <= 0 {
            return Err("invalid_quantity");
        }
        if self.closed.contains(&Month::of(day)) {
            return Err("period_closed");
        }
        // The subscription serving that day; a tenant's newest first.
        let mut candidates: Vec<usize> = (0..self.subs.len())
            .filter(|&s| self.subs[s].tenant == tenant)
            .collect();
        candidates.sort_by_key(|&s| std::cmp::Reverse((self.subs[s].started_on, s)));
        let sub = candidates
            .into_iter()
            .find(|&s| {
                let s = &self.subs[s];
                s.started_on <= day && s.cancelled_on.is_none_or(|until| day < until)
            })
            .ok_or("no_active_subscription")?;
        self.usage.push(Use {
            sub,
            day,
            metric: metric.to_owned(),
            quantity: quantity.unsigned_abs(),
        });
        Ok(())
    }

    fn end(&mut self, sub: usize, day: NaiveDate, reason: &'static str, at: DateTime<Utc>) {
        self.close_period(sub, day);
        let s = &mut self.subs[sub];
        s.status = "cancelled";
        s.cancelled_on = Some(day.max(s.started_on));
        s.cancel_reason = Some(reason);
        self.sync(sub, at);
    }

    fn open_period(&mut self, sub: usize, plan: &str, from: NaiveDate) {
        self.periods.push(Period {
            sub,
            plan: plan.to_owned(),
            from,
            until: None,
        });
    }

    fn close_period(&mut self, sub: usize, day: NaiveDate) {
        for p in &mut self.periods {
            if p.sub == sub && p.until.is_none() {
                p.until = Some(day);
            }
        }
    }

    fn sync(&mut self, sub: usize, at: DateTime<Utc>) {
        let s = &self.subs[sub];
        self.history.push(HistoryRec {
            subscription: sub,
            at,
            plan: s.plan.clone(),
            status: s.status.to_owned(),
            started_on: s.started_on,
            cancelled_on: s.cancelled_on,
        });
    }

    // ---- the invoice ----

    /// Subscription `sub`'s invoice for `month`, by the model's own arithmetic; `None` without a
    /// service day. Also checks the pure reference against it.
    fn bill(&mut self, sub: usize, month: Month) -> Option<Invoice> {
        let catalog = &self.story.catalog;
        let currency = self.currency(&self.subs[sub].plan);
        let model = model_invoice(catalog, currency, month, &self.periods, &self.usage, sub);
        let reference = billing::invoice(&InvoiceInput {
            month,
            currency,
            tax_rate: catalog.tax_rate,
            periods: self
                .periods
                .iter()
                .filter(|p| p.sub == sub)
                .map(|p| PlanPeriod {
                    plan: p.plan.clone(),
                    from: p.from,
                    until: p.until,
                    terms: catalog.plan(&p.plan).expect("a plan").terms.clone(),
                })
                .collect(),
            usage: self
                .usage
                .iter()
                .filter(|u| u.sub == sub)
                .map(|u| Usage {
                    day: u.day,
                    metric: u.metric.clone(),
                    quantity: u.quantity,
                })
                .collect(),
        });
        let reference = reference.has_service().then_some(reference);
        let digits = currency.minor_units();
        let scales_ok = reference.as_ref().is_none_or(|r| {
            r.lines
                .iter()
                .map(|l| l.amount)
                .chain([r.subtotal, r.tax, r.total])
                .all(|a| a.scale() == digits)
        });
        if reference != model || !scales_ok {
            let tenant = self.subs[sub].tenant;
            let text = |invoice: &Option<Invoice>| {
                invoice.as_ref().map_or_else(
                    || vec![format!("t{tenant} {month}: no invoice")],
                    |i| invoice_text(tenant, "", i),
                )
            };
            let mut message = format!(
                "billing::invoice disagrees with the story's own arithmetic for sub{sub} (t{tenant}) \
                 in {month} (- model, + billing::invoice):\n"
            );
            for line in diff_lines(&text(&model), &text(&reference)) {
                message.push_str(&line);
                message.push('\n');
            }
            if !scales_ok {
                message.push_str(&format!(
                    "billing::invoice writes amounts without exactly {digits} decimals: {reference:?}\n"
                ));
            }
            self.reference.push(message);
        }
        model
    }

    fn finish(self, steps: Vec<Option<String>>) -> Expected {
        let mut order: Vec<usize> = (0..self.invoices.len()).collect();
        order.sort_by_key(|&i| {
            let inv = &self.invoices[i];
            (self.subs[inv.sub].tenant, inv.invoice.month, i)
        });
        let invoices = order
            .into_iter()
            .map(|i| {
                let inv = &self.invoices[i];
                InvoiceRec {
                    tenant: self.subs[inv.sub].tenant,
                    status: inv.status.to_owned(),
                    due_on: inv.due_on,
                    invoice: inv.invoice.clone(),
                }
            })
            .collect();
        let subscriptions = self
            .subs
            .iter()
            .enumerate()
            .map(|(index, s)| SubscriptionRec {
                index,
                tenant: s.tenant,
                plan: s.plan.clone(),
                status: s.status.to_owned(),
                started_on: s.started_on,
                cancelled_on: s.cancelled_on,
                cancel_reason: s.cancel_reason.map(str::to_owned),
                current_period: s.current,
                last_plan_change_at: s.last_change,
            })
            .collect();
        let periods = self
            .periods
            .iter()
            .map(|p| PeriodRec {
                subscription: p.sub,
                plan: p.plan.clone(),
                starts_on: p.from,
                ends_on: p.until,
            })
            .collect();
        Expected {
            record: Record {
                steps,
                invoices,
                payments: self.payments,
                captures: self.captures,
                subscriptions,
                periods,
                history: self.history,
            },
            reference: self.reference,
        }
    }
}

/// The model's invoice, in the subscription's `currency`: integers only. Amounts are
/// ten-thousandths floored to the currency's minor unit by integer division, days are counted one
/// by one, a started block is a whole one.
fn model_invoice(
    catalog: &Catalog,
    currency: Currency,
    month: Month,
    periods: &[Period],
    usage: &[Use],
    sub: usize,
) -> Option<Invoice> {
    let digits = currency.minor_units();
    // Ten-thousandths per minor unit: 10,000 for KRW, 100 for USD.
    let per_minor = 10i128.pow(4 - digits);
    let money = |minor: i128| Decimal::from_i128_with_scale(minor, digits);
    let dim = days_in(month);
    let month_days: Vec<NaiveDate> = (1..=dim)
        .map(|d| NaiveDate::from_ymd_opt(month.year(), month.month(), d).expect("a day"))
        .collect();
    // Each period's days in the month: [first served day, last served day + 1), and how many.
    let mut spans: Vec<(NaiveDate, NaiveDate, u32, &Period)> = Vec::new();
    for p in periods.iter().filter(|p| p.sub == sub) {
        let served: Vec<NaiveDate> = month_days
            .iter()
            .copied()
            .filter(|&d| p.from <= d && p.until.is_none_or(|u| d < u))
            .collect();
        if let (Some(&first), Some(&last)) = (served.first(), served.last()) {
            let until = last.succ_opt().expect("a next day");
            spans.push((first, until, served.len() as u32, p));
        }
    }
    if spans.is_empty() {
        return None;
    }
    spans.sort_by(|a, b| (a.0, &a.3.plan).cmp(&(b.0, &b.3.plan)));
    let mut lines = Vec::new();
    let mut subtotal: i128 = 0;
    for (from, until, days, period) in spans {
        let terms = &catalog.plan(&period.plan).expect("a plan").terms;
        let base =
            ten_thousandths(terms.base_fee) * i128::from(days) / (i128::from(dim) * per_minor);
        subtotal += base;
        lines.push(Line {
            kind: LineKind::Base,
            plan: period.plan.clone(),
            metric: None,
            from,
            until,
            days,
            used: None,
            included: None,
            overage: None,
            amount: money(base),
        });
        for (metric, price) in &terms.overage {
            let quota = terms.included.get(metric).copied().unwrap_or(0);
            let included = u64::try_from(u128::from(quota) * u128::from(days) / u128::from(dim))
                .expect("a quota fits");
            let used: u64 = usage
                .iter()
                .filter(|u| u.sub == sub && &u.metric == metric && from <= u.day && u.day < until)
                .map(|u| u.quantity)
                .sum();
            if used <= included {
                continue;
            }
            let over = used - included;
            let mut blocks = over / price.block;
            if blocks * price.block < over {
                blocks += 1;
            }
            let amount = i128::from(blocks) * ten_thousandths(price.price) / per_minor;
            subtotal += amount;
            lines.push(Line {
                kind: LineKind::Overage,
                plan: period.plan.clone(),
                metric: Some(metric.clone()),
                from,
                until,
                days,
                used: Some(used),
                included: Some(included),
                overage: Some(over),
                amount: money(amount),
            });
        }
    }
    // The subtotal is in minor units and the rate in ten-thousandths.
    let tax = subtotal * ten_thousandths(catalog.tax_rate) / 10_000;
    Some(Invoice {
        month,
        currency,
        lines,
        subtotal: money(subtotal),
        tax: money(tax),
        total: money(subtotal + tax),
    })
}
