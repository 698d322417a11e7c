//! Charging, retries, cancellation and renewal through the scripted mock gateway, in process and
//! over HTTP.

use billing_harness::TestEnv;
use billing_harness::model::{
    CancelReason, InvoiceStatus, Month, PaymentOutcome, SubscriptionStatus, TenantId,
};
use billing_harness::payments::TestCard;
use billing_harness::platform::{
    Timeline, TimelineAttempt, TimelineInvoice, TimelineSubscription, timeline,
};
use chrono::TimeDelta;

use crate::support::{day, dec, seoul, world_with};

/// A pro subscription from October 1st with `card`, played up to `until`.
async fn october(
    card: TestCard,
    until: chrono::DateTime<chrono::Utc>,
) -> (TestEnv, TenantId, Timeline) {
    october_in(TestEnv::builder().start_at(seoul(2026, 10, 1)), card, until).await
}

async fn october_in(
    builder: billing_harness::TestEnvBuilder,
    card: TestCard,
    until: chrono::DateTime<chrono::Utc>,
) -> (TestEnv, TenantId, Timeline) {
    let (env, tenant) = world_with(builder.build().await.unwrap(), Some(card)).await;
    env.platform()
        .subscribe(tenant, "pro", env.clock().now())
        .await
        .unwrap();
    env.clock().advance_to(until).await.unwrap();
    let timeline = timeline(env.pool(), tenant).await.unwrap();
    (env, tenant, timeline)
}

/// A world on October 1st whose org holds `card`.
async fn from_october_1st(card: TestCard) -> (TestEnv, TenantId) {
    world_with(
        TestEnv::builder()
            .start_at(seoul(2026, 10, 1))
            .build()
            .await
            .unwrap(),
        Some(card),
    )
    .await
}

fn attempts(t: &Timeline) -> Vec<(String, u32, i16, &str)> {
    t.attempts
        .iter()
        .map(|a| {
            (
                a.period.to_string(),
                chrono::Datelike::day(&a.on),
                a.attempt,
                a.outcome.as_str(),
            )
        })
        .collect()
}

fn status(t: &Timeline) -> (&str, Option<chrono::NaiveDate>) {
    let s = t.subscription.as_ref().unwrap();
    (s.status.as_str(), s.cancelled_on)
}

#[tokio::test]
async fn an_ok_card_is_charged_on_the_5th_and_the_subscription_renews() {
    let (env, _, t) = october(TestCard::Ok, seoul(2026, 11, 10)).await;
    assert_eq!(attempts(&t), vec![("2026-10".into(), 5, 1, "succeeded")]);
    assert_eq!(t.invoices[0].status.as_str(), "paid");
    assert_eq!(status(&t), ("active", None));
    let ledger = env.gateway().ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].amount, dec("99000"));
    let (start, end): (chrono::NaiveDate, chrono::NaiveDate) =
        sqlx::query_as("select current_period_start, current_period_end from subscriptions")
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!(
        (start, end),
        (day(2026, 11, 1), day(2026, 12, 1)),
        "the period moved on"
    );
}

#[tokio::test]
async fn fail_times_2_renews_on_the_7th_after_attempts_on_the_5th_6th_and_7th() {
    let (_env, _, t) = october(TestCard::FailTimes(2), seoul(2026, 11, 10)).await;
    assert_eq!(
        attempts(&t),
        vec![
            ("2026-10".into(), 5, 1, "failed"),
            ("2026-10".into(), 6, 2, "failed"),
            ("2026-10".into(), 7, 3, "succeeded"),
        ]
    );
    assert_eq!(
        (t.invoices[0].status.as_str(), status(&t)),
        ("paid", ("active", None))
    );
    crate::support::assert_timeline("fail_times_2", &t);
}

#[tokio::test]
async fn a_past_due_subscription_is_past_due_between_attempts() {
    let (_env, _, t) = october(
        TestCard::FailTimes(2),
        seoul(2026, 11, 6) + TimeDelta::hours(12),
    )
    .await;
    assert_eq!(
        (t.invoices[0].status.as_str(), status(&t)),
        ("past_due", ("past_due", None))
    );
}

#[tokio::test]
async fn declined_fails_four_times_then_cancels_on_the_8th_and_the_last_week_is_billed_next() {
    let (env, _, t) = october(TestCard::Declined, seoul(2026, 12, 10)).await;
    assert_eq!(
        attempts(&t),
        vec![
            ("2026-10".into(), 5, 1, "failed"),
            ("2026-10".into(), 6, 2, "failed"),
            ("2026-10".into(), 7, 3, "failed"),
            ("2026-10".into(), 8, 4, "failed"),
            ("2026-11".into(), 5, 1, "failed"),
            ("2026-11".into(), 6, 2, "failed"),
            ("2026-11".into(), 7, 3, "failed"),
            ("2026-11".into(), 8, 4, "failed"),
        ]
    );
    assert_eq!(status(&t), ("cancelled", Some(day(2026, 11, 8))));
    let invoices: Vec<_> = t
        .invoices
        .iter()
        .map(|i| (i.period.to_string(), i.total, i.status.as_str()))
        .collect();
    // November: the 1st to the 7th, floor(99000 × 7 / 30) = 23100.
    assert_eq!(
        invoices,
        vec![
            ("2026-10".into(), dec("99000"), "uncollectible"),
            ("2026-11".into(), dec("23100"), "uncollectible")
        ]
    );
    assert!(env.gateway().ledger().is_empty(), "nothing was captured");
    let reason: String = sqlx::query_scalar("select cancel_reason from subscriptions")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(reason, "payment_failed");
    crate::support::assert_timeline("declined", &t);
}

#[tokio::test]
async fn decline_codes_of_every_failing_card_are_recorded() {
    for (card, code) in [
        (TestCard::Declined, "declined"),
        (TestCard::InsufficientFunds, "insufficient_funds"),
        (TestCard::Expired, "expired_card"),
    ] {
        let (_env, _, t) = october(card, seoul(2026, 11, 5) + TimeDelta::hours(1)).await;
        assert_eq!(t.attempts.len(), 1);
        assert_eq!(t.attempts[0].failure_code.as_deref(), Some(code), "{card}");
    }
}

#[tokio::test]
async fn a_declined_attempt_records_the_request_id_the_gateway_gave_it() {
    let (env, _, _) = october(TestCard::Declined, seoul(2026, 11, 5) + TimeDelta::hours(1)).await;
    let stored: (Option<String>, Option<String>, Option<String>) =
        sqlx::query_as("select gateway_request_id, approval_number, failure_code from payments")
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!(
        stored,
        (
            Some("req_000001".to_owned()),
            None,
            Some("declined".to_owned())
        ),
        "rule: a declined attempt records the gateway's request id and code, and no approval"
    );
}

#[tokio::test]
async fn a_timeout_is_captured_once_and_found_by_its_idempotency_key() {
    timeout_found_by_its_key(TestEnv::builder().start_at(seoul(2026, 10, 1))).await;
}

#[tokio::test]
async fn a_timeout_over_http_is_captured_once_and_found_by_its_idempotency_key() {
    timeout_found_by_its_key(
        TestEnv::builder()
            .start_at(seoul(2026, 10, 1))
            .gateway_over_http(),
    )
    .await;
}

/// A capture whose reply is lost: the charge finds it by its idempotency key and records the
/// payment once, as succeeded, with the capture's approval number.
async fn timeout_found_by_its_key(builder: billing_harness::TestEnvBuilder) {
    let (env, _, t) = october_in(builder, TestCard::Timeout, seoul(2026, 11, 10)).await;
    assert_eq!(attempts(&t), vec![("2026-10".into(), 5, 1, "succeeded")]);
    crate::support::assert_timeline("timeout", &t);
    let ledger = env.gateway().ledger();
    assert_eq!(ledger.len(), 1, "charged exactly once");
    let journal: Vec<_> = env
        .gateway()
        .journal()
        .into_iter()
        .map(|j| (j.call, j.idempotency_key, j.answer))
        .collect();
    let key = ledger[0].idempotency_key.clone();
    assert_eq!(
        journal,
        vec![
            ("charge", key.clone(), "timeout".to_owned()),
            ("find", key, "found".to_owned())
        ]
    );
    let approval: Option<String> = sqlx::query_scalar("select approval_number from payments")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(
        approval.as_deref(),
        Some(ledger[0].approval_number.as_str())
    );
}

#[tokio::test]
async fn a_card_replaced_between_attempts_is_used_from_the_next_attempt_on() {
    let (env, tenant) = from_october_1st(TestCard::Declined).await;
    let p = env.platform();
    p.subscribe(tenant, "pro", env.clock().now()).await.unwrap();
    env.clock()
        .advance_to(seoul(2026, 11, 6) + TimeDelta::hours(9))
        .await
        .unwrap();
    let org: billing_harness::model::OrgId =
        sqlx::query_scalar("select organization_id from tenants")
            .fetch_one(env.pool())
            .await
            .unwrap();
    p.register_card(org, TestCard::Ok, env.clock().now())
        .await
        .unwrap();
    env.clock().advance_to(seoul(2026, 11, 10)).await.unwrap();
    let t = timeline(env.pool(), tenant).await.unwrap();
    let cards: Vec<_> = t
        .attempts
        .iter()
        .map(|a| (a.attempt, a.outcome.as_str(), a.card.as_deref()))
        .collect();
    assert_eq!(
        cards,
        vec![
            (1, "failed", Some("0002")),
            (2, "failed", Some("0002")),
            (3, "succeeded", Some("4242"))
        ]
    );
    assert_eq!(status(&t), ("active", None));
}

#[tokio::test]
async fn zero_total_invoices_are_never_charged() {
    let (env, tenant) = from_october_1st(TestCard::Declined).await;
    env.platform()
        .subscribe(tenant, "free", env.clock().now())
        .await
        .unwrap();
    env.clock().advance_to(seoul(2026, 11, 10)).await.unwrap();
    let t = timeline(env.pool(), tenant).await.unwrap();
    assert!(t.attempts.is_empty());
    assert!(env.gateway().journal().is_empty());
    assert_eq!(
        (t.invoices[0].status.as_str(), status(&t)),
        ("paid", ("active", None))
    );
}

#[tokio::test]
async fn the_gateway_over_http_gives_the_same_outcome() {
    let builder = TestEnv::builder()
        .start_at(seoul(2026, 10, 1))
        .gateway_over_http();
    let (env, _, t) = october_in(builder, TestCard::FailTimes(1), seoul(2026, 11, 10)).await;
    assert_eq!(
        attempts(&t),
        vec![
            ("2026-10".into(), 5, 1, "failed"),
            ("2026-10".into(), 6, 2, "succeeded")
        ]
    );
    assert_eq!(env.gateway().ledger().len(), 1);
}

#[tokio::test]
async fn failed_charges_leave_every_table_consistent() {
    let (env, _, _) = october(TestCard::Declined, seoul(2026, 11, 10)).await;
    // One payment row per attempt, each with its own idempotency key; an uncollectible invoice
    // has exactly four failed attempts; the cancelled subscription's plan period ends on the
    // cancel day; every status change of the subscription queued one sync event.
    let checks: (i64, i64, i64, bool, bool) = sqlx::query_as(
        "select (select count(*) from payments), \
                (select count(distinct idempotency_key) from payments), \
                (select count(*) from sync_outbox where entity = 'subscription'), \
                (select bool_and(n = 4) from (select count(*) as n from payments p \
                    join invoices i on i.id = p.invoice_id where i.status = 'uncollectible' \
                    group by i.id) x), \
                (select bool_and(c.ends_on = s.cancelled_on and b.ends_on = s.cancelled_on) \
                    from subscriptions s join contracts c on c.subscription_id = s.id \
                    join billings b on b.contract_id = c.id)",
    )
    .fetch_one(env.pool())
    .await
    .unwrap();
    // Sync events: subscribed, past_due on the 5th, cancelled on the 8th.
    assert_eq!(checks, (4, 4, 3, true, true));
}

/// A random card history: the card at the start, and cards registered on later days.
fn cards() -> impl proptest::strategy::Strategy<Value = (TestCard, Vec<(u32, TestCard)>)> {
    use proptest::prelude::*;
    let card = prop_oneof![
        Just(TestCard::Ok),
        Just(TestCard::Declined),
        Just(TestCard::InsufficientFunds),
        Just(TestCard::Expired),
        Just(TestCard::Timeout),
        (0u32..6).prop_map(TestCard::FailTimes),
    ];
    (
        card.clone(),
        proptest::collection::vec((5u32..9, card), 0..3),
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    #[test]
    fn at_most_four_attempts_and_active_exactly_when_the_last_invoice_was_paid(
        (first, swaps) in cards()
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let t = runtime.block_on(async {
            let (env, tenant) = world_with(
                TestEnv::builder().start_at(seoul(2026, 10, 1)).build().await.unwrap(),
                Some(first),
            )
            .await;
            let p = env.platform();
            p.subscribe(tenant, "pro", env.clock().now()).await.unwrap();
            let org: billing_harness::model::OrgId =
                sqlx::query_scalar("select organization_id from tenants").fetch_one(env.pool()).await.unwrap();
            let mut swaps = swaps.clone();
            swaps.sort_by_key(|(d, _)| *d);
            for (d, card) in swaps {
                env.clock().advance_to(seoul(2026, 11, d) + TimeDelta::hours(12)).await.unwrap();
                p.register_card(org, card, env.clock().now()).await.unwrap();
            }
            env.clock().advance_to(seoul(2026, 11, 20)).await.unwrap();
            timeline(env.pool(), tenant).await.unwrap()
        });
        for invoice in &t.invoices {
            let n = t.attempts.iter().filter(|a| a.period == invoice.period).count();
            proptest::prop_assert!(n <= 4, "{} attempts on {}", n, invoice.period);
        }
        let last = t.invoices.last().unwrap().period;
        let paid = t.attempts.iter().any(|a| a.period == last && a.outcome.as_str() == "succeeded");
        proptest::prop_assert_eq!(status(&t).0 == "active", paid, "{:?}", t);
    }
}

#[tokio::test]
async fn a_timeline_shows_its_own_tenant_only_with_taxed_totals_every_attempt_and_its_last_subscription()
 {
    let start = seoul(2026, 10, 1);
    // 10 % tax, distinct ids per table, and every plan named "Plan": a timeline reads keys.
    let env = crate::rules::env_with_catalog(start, "0.1").await;
    crate::support::display_names(&env).await;
    let p = env.platform();
    let mut tenants = Vec::new();
    for (name, card) in [("ours", TestCard::FailTimes(1)), ("theirs", TestCard::Ok)] {
        let org = p.create_org(name, start).await.unwrap();
        p.register_card(org, card, start).await.unwrap();
        let tenant = p
            .create_tenant(org, "analytics", name, start)
            .await
            .unwrap();
        p.subscribe(tenant, "pro", start).await.unwrap();
        tenants.push(tenant);
    }
    let (ours, theirs) = (tenants[0], tenants[1]);
    env.clock().advance_to(seoul(2026, 10, 16)).await.unwrap();
    p.change_plan(ours, "business", env.clock().now())
        .await
        .unwrap();
    env.clock().advance_to(seoul(2026, 11, 20)).await.unwrap();
    p.cancel(ours, env.clock().now()).await.unwrap();
    // Theirs: subscribed again after a cancel, so the newest subscription is not ours.
    p.cancel(theirs, env.clock().now()).await.unwrap();
    p.subscribe(theirs, "business", env.clock().now())
        .await
        .unwrap();
    // pro 15 days: floor(99,000 × 15 / 31) = 47,903; business 16 days: floor(290,000 × 16 / 31)
    // = 149,677. Subtotal 197,580, tax 10 % 19,758, total 217,338: charged on November 5th
    // (failed once) and paid by the retry on the 6th.
    let total = dec("217338");
    let attempt =
        |on: u32, attempt: i16, outcome: PaymentOutcome, failure: Option<&str>| TimelineAttempt {
            period: Month::new(2026, 10).unwrap(),
            on: day(2026, 11, on),
            attempt,
            amount: total,
            outcome,
            failure_code: failure.map(str::to_owned),
            card: Some(TestCard::FailTimes(1).last4()),
        };
    assert_eq!(
        timeline(env.pool(), ours).await.unwrap(),
        Timeline {
            invoices: vec![TimelineInvoice {
                period: Month::new(2026, 10).unwrap(),
                total,
                status: InvoiceStatus::Paid,
            }],
            attempts: vec![
                attempt(5, 1, PaymentOutcome::Failed, Some("declined")),
                attempt(6, 2, PaymentOutcome::Succeeded, None),
            ],
            subscription: Some(TimelineSubscription {
                plan: "business".into(),
                status: SubscriptionStatus::Cancelled,
                cancelled_on: Some(day(2026, 11, 20)),
                cancel_reason: Some(CancelReason::Requested),
            }),
        }
    );
}
