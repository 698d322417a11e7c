//! Every payment rule at its edges, through the clock's charge and retry jobs and the scripted
//! mock gateway: one test per rule, named after it, each checking the instant before a job as
//! well as the job itself. A failure names the rule it broke.

use billing_harness::platform::Timeline;
use billing_harness::prelude::*;
use chrono::{DateTime, NaiveDate, Utc};

use crate::rules::{env_at, env_with_catalog, kst, midnight};
use crate::support::{day, dec};

/// Each attempt as `period on day #n amount outcome failure_code card`.
pub(crate) fn attempts(t: &Timeline) -> Vec<String> {
    t.attempts
        .iter()
        .map(|a| {
            format!(
                "{} on {} #{} {} {} {} {}",
                a.period,
                a.on,
                a.attempt,
                a.amount,
                a.outcome,
                a.failure_code.as_deref().unwrap_or("-"),
                a.card.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

/// Each invoice as `period total status`.
fn invoices(t: &Timeline) -> Vec<String> {
    t.invoices
        .iter()
        .map(|i| format!("{} {} {}", i.period, i.total, i.status))
        .collect()
}

/// The subscription's status, first day not served and reason.
fn subscription(t: &Timeline) -> (String, Option<NaiveDate>, Option<String>) {
    let s = t.subscription.as_ref().expect("a subscription");
    (
        s.status.to_string(),
        s.cancelled_on,
        s.cancel_reason.map(|r| r.to_string()),
    )
}

fn active() -> (String, Option<NaiveDate>, Option<String>) {
    ("active".into(), None, None)
}

/// Moves the clock to `at`, running the jobs on the way; a job that fails names `rule`.
async fn advance(env: &TestEnv, at: DateTime<Utc>, rule: &str) {
    env.clock()
        .advance_to(at)
        .await
        .unwrap_or_else(|e| panic!("{rule}: a job failed on the way to {at}: {e}"));
}

/// A tenant of its own organization holding `card`, on pro from the clock's now.
async fn pro_with<'e>(env: &'e TestEnv, card: TestCard) -> Tenant<'e> {
    env.build()
        .tenant()
        .plan("pro")
        .card(card)
        .create()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_invoice_is_charged_on_its_due_charge_day_and_not_before() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = pro_with(&env, TestCard::Ok).await;
    let rule = "rule: an invoice is charged at 00:00 on its due day, the charge day (the 5th) \
                after its month";
    // October closed early, on the 4th: its invoice is due on November 5th all the same, and
    // the charge job of October 5th leaves it.
    advance(&env, midnight(2026, 10, 4), rule).await;
    env.platform()
        .close_month(Month::new(2026, 10).unwrap(), env.clock().now())
        .await
        .unwrap();
    advance(&env, midnight(2026, 10, 5), rule).await;
    let early = t.timeline().await.unwrap();
    assert_eq!(
        (attempts(&early), invoices(&early)),
        (vec![], vec!["2026-10 99000 finalized".to_owned()]),
        "{rule}: nothing is charged on October 5th, a charge day before the invoice is due"
    );
    advance(&env, kst(2026, 11, 4, 23, 59, 59), rule).await;
    let before = t.timeline().await.unwrap();
    assert_eq!(
        (attempts(&before), invoices(&before)),
        (vec![], vec!["2026-10 99000 finalized".to_owned()]),
        "{rule}: nothing is charged on the 4th"
    );
    advance(&env, midnight(2026, 11, 5), rule).await;
    let on = t.timeline().await.unwrap();
    assert_eq!(
        (attempts(&on), invoices(&on)),
        (
            vec!["2026-10 on 2026-11-05 #1 99000 succeeded - 4242".to_owned()],
            vec!["2026-10 99000 paid".to_owned()]
        ),
        "{rule}: charged on the 5th"
    );
}

#[tokio::test]
async fn the_charge_captures_the_total_with_tax() {
    let env = env_with_catalog(midnight(2026, 10, 10), "0.1").await;
    let won = env.build().tenant().plan("pro").create().await.unwrap();
    let cents = env
        .build()
        .tenant()
        .plan("team-usd")
        .create()
        .await
        .unwrap();
    advance(&env, midnight(2026, 11, 5), "rule: the charge").await;
    // pro from October 10th: subtotal floor(99,000 × 22 / 31) = 70,258, tax floor(7,025.8) =
    // 7,025, total 77,283. team-usd: floor(19.99 × 22 / 31) = 14.18, tax floor(1.418) = 1.41,
    // total 15.59.
    let captured: Vec<_> = env
        .gateway()
        .ledger()
        .iter()
        .map(|c| (c.amount, c.currency))
        .collect();
    assert_eq!(
        captured,
        [(dec("77283"), Currency::Krw), (dec("15.59"), Currency::Usd)],
        "rule: the charge captures the invoice's total, tax included"
    );
    let stored: Vec<(Option<String>, String, Option<String>)> = sqlx::query_as(
        "select gateway_request_id, idempotency_key, approval_number from payments order by id",
    )
    .fetch_all(env.pool())
    .await
    .unwrap();
    let captures: Vec<_> = env
        .gateway()
        .ledger()
        .into_iter()
        .map(|c| {
            (
                Some(c.request_id),
                c.idempotency_key,
                Some(c.approval_number),
            )
        })
        .collect();
    assert_eq!(
        stored, captures,
        "rule: an attempt records its capture's request id, idempotency key and approval number"
    );
    for (t, total) in [(won, "77283"), (cents, "15.59")] {
        let paid = t.timeline().await.unwrap();
        assert_eq!(
            paid.attempts.iter().map(|a| a.amount).collect::<Vec<_>>(),
            [dec(total)],
            "rule: the attempt records the total, tax included"
        );
    }
}

#[tokio::test]
async fn a_failed_charge_makes_the_invoice_and_the_subscription_past_due() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = pro_with(&env, TestCard::Declined).await;
    let rule = "rule: a failed charge makes the invoice and the subscription past_due";
    advance(&env, kst(2026, 11, 4, 23, 59, 59), rule).await;
    let before = t.timeline().await.unwrap();
    assert_eq!(
        (invoices(&before), subscription(&before)),
        (vec!["2026-10 99000 finalized".to_owned()], active()),
        "{rule}: before the charge, nothing is past due"
    );
    advance(&env, midnight(2026, 11, 5), rule).await;
    let failed = t.timeline().await.unwrap();
    assert_eq!(
        (attempts(&failed), invoices(&failed), subscription(&failed)),
        (
            vec!["2026-10 on 2026-11-05 #1 99000 failed declined 0002".to_owned()],
            vec!["2026-10 99000 past_due".to_owned()],
            ("past_due".to_owned(), None, None)
        ),
        "{rule}"
    );
}

#[tokio::test]
async fn a_failed_charge_is_retried_daily_three_times_then_the_subscription_is_cancelled_from_that_day()
 {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = pro_with(&env, TestCard::Declined).await;
    let rule = "rule: a failed charge is retried at 00:00 on each of the next 3 days, then the invoice is uncollectible and the subscription cancelled from that day";
    let failed = |n: u32| {
        format!(
            "2026-10 on 2026-11-0{} #{} 99000 failed declined 0002",
            n + 4,
            n
        )
    };
    advance(&env, kst(2026, 11, 7, 23, 59, 59), rule).await;
    let third = t.timeline().await.unwrap();
    assert_eq!(
        (attempts(&third), invoices(&third), subscription(&third)),
        (
            vec![failed(1), failed(2), failed(3)],
            vec!["2026-10 99000 past_due".to_owned()],
            ("past_due".to_owned(), None, None)
        ),
        "{rule}: after the second retry the subscription still runs"
    );
    advance(&env, midnight(2026, 11, 8), rule).await;
    let fourth = t.timeline().await.unwrap();
    assert_eq!(
        (attempts(&fourth), invoices(&fourth), subscription(&fourth)),
        (
            vec![failed(1), failed(2), failed(3), failed(4)],
            vec!["2026-10 99000 uncollectible".to_owned()],
            (
                "cancelled".to_owned(),
                Some(day(2026, 11, 8)),
                Some("payment_failed".to_owned())
            )
        ),
        "{rule}: the third retry fails on the 8th"
    );
    advance(&env, midnight(2026, 12, 1), rule).await;
    let after = t.timeline().await.unwrap();
    assert_eq!(
        attempts(&after).len(),
        4,
        "{rule}: exactly 4 attempts, no fifth"
    );
    // November: the 1st to the 7th; the cancel day, the 8th, is not billed:
    // floor(99,000 × 7 / 30) = 23,100.
    assert_eq!(
        crate::rules::show(&crate::rules::invoice_of(&t, 2026, 11).await)[0],
        "base pro 2026-11-01..2026-11-08 7d 23100",
        "{rule}: November is billed up to the day before the cancellation"
    );
}

#[tokio::test]
async fn a_charge_that_succeeds_on_a_retry_renews_the_subscription() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let first_retry = pro_with(&env, TestCard::FailTimes(1)).await;
    let last_retry = pro_with(&env, TestCard::FailTimes(3)).await;
    let rule =
        "rule: a charge that succeeds on a retry pays the invoice and renews the subscription";
    advance(&env, kst(2026, 11, 5, 12, 0, 0), rule).await;
    assert_eq!(
        subscription(&first_retry.timeline().await.unwrap()).0,
        "past_due",
        "{rule}: past due until the retry"
    );
    advance(&env, midnight(2026, 11, 8), rule).await;
    let first = first_retry.timeline().await.unwrap();
    assert_eq!(
        (attempts(&first), invoices(&first), subscription(&first)),
        (
            vec![
                "2026-10 on 2026-11-05 #1 99000 failed declined 1001".to_owned(),
                "2026-10 on 2026-11-06 #2 99000 succeeded - 1001".to_owned()
            ],
            vec!["2026-10 99000 paid".to_owned()],
            active()
        ),
        "{rule} (the first retry)"
    );
    let last = last_retry.timeline().await.unwrap();
    assert_eq!(
        (attempts(&last), invoices(&last), subscription(&last)),
        (
            vec![
                "2026-10 on 2026-11-05 #1 99000 failed declined 1003".to_owned(),
                "2026-10 on 2026-11-06 #2 99000 failed declined 1003".to_owned(),
                "2026-10 on 2026-11-07 #3 99000 failed declined 1003".to_owned(),
                "2026-10 on 2026-11-08 #4 99000 succeeded - 1003".to_owned()
            ],
            vec!["2026-10 99000 paid".to_owned()],
            active()
        ),
        "{rule} (the last retry, not cancelled)"
    );
    let period: (NaiveDate, NaiveDate) = sqlx::query_as(
        "select current_period_start, current_period_end from subscriptions where tenant_id = $1",
    )
    .bind(first_retry.id())
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert_eq!(
        period,
        (day(2026, 11, 1), day(2026, 12, 1)),
        "{rule}: the current period moves on to November"
    );
}

#[tokio::test]
async fn no_second_attempt_is_made_on_the_same_day() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = pro_with(&env, TestCard::Declined).await;
    let rule = "rule: at most one attempt per invoice per day";
    advance(&env, midnight(2026, 11, 5), rule).await;
    // A working card arrives one second after the failed charge: the retry still waits for
    // 00:00 the next day.
    advance(&env, kst(2026, 11, 5, 0, 0, 1), rule).await;
    t.replace_card(TestCard::Ok).await.unwrap();
    advance(&env, kst(2026, 11, 5, 23, 59, 59), rule).await;
    assert_eq!(
        attempts(&t.timeline().await.unwrap()),
        ["2026-10 on 2026-11-05 #1 99000 failed declined 0002"],
        "{rule}: the retry job of the 5th does not retry the charge of the 5th"
    );
    advance(&env, midnight(2026, 11, 6), rule).await;
    assert_eq!(
        attempts(&t.timeline().await.unwrap()),
        [
            "2026-10 on 2026-11-05 #1 99000 failed declined 0002",
            "2026-10 on 2026-11-06 #2 99000 succeeded - 4242"
        ],
        "{rule}: the retry comes at 00:00 the next day"
    );
}

#[tokio::test]
async fn a_paid_invoice_is_not_charged_again() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let at_once = pro_with(&env, TestCard::Ok).await;
    let on_retry = pro_with(&env, TestCard::FailTimes(1)).await;
    let rule = "rule: a paid invoice is not charged again";
    advance(&env, midnight(2026, 12, 5), rule).await;
    // Paid on the 5th: not retried. Paid on the 6th: not retried on the 7th or 8th. Neither
    // October invoice is charged again on December 5th, when November's are.
    assert_eq!(
        attempts(&at_once.timeline().await.unwrap()),
        [
            "2026-10 on 2026-11-05 #1 99000 succeeded - 4242",
            "2026-11 on 2026-12-05 #1 99000 succeeded - 4242"
        ],
        "{rule}"
    );
    assert_eq!(
        attempts(&on_retry.timeline().await.unwrap()),
        [
            "2026-10 on 2026-11-05 #1 99000 failed declined 1001",
            "2026-10 on 2026-11-06 #2 99000 succeeded - 1001",
            "2026-11 on 2026-12-05 #1 99000 succeeded - 1001"
        ],
        "{rule}"
    );
    assert_eq!(
        env.gateway().ledger().len(),
        4,
        "{rule}: four invoices, four captures"
    );
}

#[tokio::test]
async fn a_card_replaced_between_attempts_is_used_for_the_next_attempt() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = pro_with(&env, TestCard::Declined).await;
    let rule = "rule: each attempt charges the organization's card at that moment";
    // Replaced one second before the second retry.
    advance(&env, kst(2026, 11, 6, 23, 59, 59), rule).await;
    t.replace_card(TestCard::Ok).await.unwrap();
    advance(&env, midnight(2026, 11, 7), rule).await;
    let paid = t.timeline().await.unwrap();
    assert_eq!(
        (attempts(&paid), subscription(&paid)),
        (
            vec![
                "2026-10 on 2026-11-05 #1 99000 failed declined 0002".to_owned(),
                "2026-10 on 2026-11-06 #2 99000 failed declined 0002".to_owned(),
                "2026-10 on 2026-11-07 #3 99000 succeeded - 4242".to_owned()
            ],
            active()
        ),
        "{rule}"
    );
    let keys: Vec<String> = env
        .gateway()
        .ledger()
        .into_iter()
        .map(|c| c.billing_key)
        .collect();
    assert!(
        keys.len() == 1 && keys[0].starts_with("bk.ok."),
        "{rule}: captured on the new card, got {keys:?}"
    );
}

#[tokio::test]
async fn a_retry_job_run_again_on_the_same_day_attempts_nothing() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = pro_with(&env, TestCard::Declined).await;
    // The charge on the 5th fails; the retry job of the 6th runs at 00:00 exactly.
    advance(&env, midnight(2026, 11, 6), "a retry a day").await;
    let rule = "rule: at most one attempt per invoice and day, even when the job runs twice";
    for at in [midnight(2026, 11, 6), kst(2026, 11, 6, 23, 59, 59)] {
        let again = billing_harness::platform::retry_due(env.pool(), env.gateway(), at)
            .await
            .unwrap();
        assert_eq!(again, [], "{rule} (again at {at})");
    }
    assert_eq!(
        attempts(&t.timeline().await.unwrap()).len(),
        2,
        "{rule}: the charge and one retry"
    );
}
