//! The invariant checker against data that breaks each invariant. A consistent history through
//! the platform (plan changes, one on the first day, a cancel with usage on its day, a new
//! subscription after it, a failed charge then a paid retry, usage in closed months and in the
//! open one) reports nothing; each break planted in it by hand, one at a time and at the edge of
//! its rule, is reported alone, with its row.

use billing_harness::TestEnv;
use billing_harness::model::TenantId;
use billing_harness::payments::TestCard;
use billing_harness::platform::invariant_violations;
use chrono::NaiveDate;

use crate::rules::kst;
use crate::support::{day, distinct_ids, metered_catalog, seoul};

/// The tenants and subscriptions of [`history`], by role.
struct History {
    env: TestEnv,
    /// On `small` from September 1st, `large` from the 15th; usage on the 1st, 10th and 20th,
    /// October 3rd and November 2nd.
    a: TenantId,
    a1: i64,
    /// On `small` from September 1st, `large` from the 15th (the same day as a), cancelled on
    /// October 10th after usage that day (b1); on `small` again from October 20th (b2).
    b: TenantId,
    b1: i64,
    b2: i64,
    /// Subscribed to `small` and moved to `large` on its first day.
    c: TenantId,
    c1: i64,
    /// Its September charge declined on October 5th, paid by a new card on the 6th.
    d1: i64,
}

/// Records `quantity` calls for `tenant` on `on`, at the clock's now.
async fn usage(env: &TestEnv, tenant: TenantId, quantity: i64, on: NaiveDate) {
    env.platform()
        .record_usage(tenant, "calls", quantity, on, env.clock().now())
        .await
        .unwrap();
}

/// Moves the clock to `h`:00 in Seoul on 2026-`m`-`d`, running the jobs on the way.
async fn to(env: &TestEnv, m: u32, d: u32, h: u32) {
    env.clock()
        .advance_to(kst(2026, m, d, h, 0, 0))
        .await
        .unwrap();
}

/// The subscriptions of `tenant`, oldest first.
async fn subscriptions(env: &TestEnv, tenant: TenantId) -> Vec<i64> {
    sqlx::query_scalar("select id from subscriptions where tenant_id = $1 order by id")
        .bind(tenant)
        .fetch_all(env.pool())
        .await
        .unwrap()
}

/// A consistent history from September 1st to November 2nd 2026 on the metered catalog (every
/// call billed as overage, so every month's usage shows on its invoice), then with the unique
/// indexes that would refuse some breaks dropped: the checker must find them without.
async fn history() -> History {
    let start = seoul(2026, 9, 1);
    let env = TestEnv::builder().start_at(start).build().await.unwrap();
    distinct_ids(&env).await;
    let p = env.platform();
    p.install_catalog(&metered_catalog(), start).await.unwrap();
    let org = p.create_org("acme", start).await.unwrap();
    p.register_card(org, TestCard::Ok, start).await.unwrap();
    let late = p.create_org("late payer", start).await.unwrap();
    p.register_card(late, TestCard::Declined, start)
        .await
        .unwrap();
    let mut tenants = Vec::new();
    for (org, slug) in [(org, "a"), (org, "b"), (org, "c"), (late, "d")] {
        let t = p
            .create_tenant(org, "analytics", slug, start)
            .await
            .unwrap();
        p.subscribe(t, "small", start).await.unwrap();
        tenants.push(t);
    }
    let [a, b, c, d]: [TenantId; 4] = tenants.try_into().unwrap();
    p.change_plan(c, "large", start).await.unwrap();
    usage(&env, a, 11, day(2026, 9, 1)).await;
    to(&env, 9, 10, 12).await;
    usage(&env, a, 13, day(2026, 9, 10)).await;
    usage(&env, b, 19, day(2026, 9, 5)).await;
    to(&env, 9, 15, 12).await;
    for t in [a, b] {
        p.change_plan(t, "large", env.clock().now()).await.unwrap();
    }
    to(&env, 9, 20, 12).await;
    usage(&env, a, 17, day(2026, 9, 20)).await;
    to(&env, 10, 3, 12).await;
    usage(&env, a, 23, day(2026, 10, 3)).await;
    // The charge at 00:00 on the 5th is declined; the retry at 00:00 on the 6th uses the new card.
    to(&env, 10, 5, 12).await;
    p.register_card(late, TestCard::Ok, env.clock().now())
        .await
        .unwrap();
    to(&env, 10, 10, 9).await;
    usage(&env, b, 29, day(2026, 10, 10)).await;
    to(&env, 10, 10, 12).await;
    p.cancel(b, env.clock().now()).await.unwrap();
    to(&env, 10, 20, 12).await;
    p.subscribe(b, "small", env.clock().now()).await.unwrap();
    to(&env, 11, 2, 12).await;
    usage(&env, a, 31, day(2026, 11, 2)).await;
    sqlx::raw_sql(
        "drop index subscriptions_one_live_per_tenant; \
         drop index payments_one_success_per_invoice; \
         alter table invoices drop constraint invoices_subscription_id_period_key",
    )
    .execute(env.pool())
    .await
    .unwrap();
    let (a1, b_subs, c1, d1) = (
        subscriptions(&env, a).await[0],
        subscriptions(&env, b).await,
        subscriptions(&env, c).await[0],
        subscriptions(&env, d).await[0],
    );
    History {
        a,
        a1,
        b,
        b1: b_subs[0],
        b2: b_subs[1],
        c,
        c1,
        d1,
        env,
    }
}

/// One break of one invariant: `plant` writes it and returns the id of the row it wrote or
/// changed, `undo` ($1: that id) restores the consistent history, and `reported` is everything
/// the checker must find, `{row}` standing for that id.
struct Break {
    rule: &'static str,
    plant: String,
    undo: &'static str,
    reported: Vec<String>,
}

/// Plants each break alone and checks that the checker reports exactly it; restores it after.
async fn check(env: &TestEnv, breaks: Vec<Break>) {
    for b in breaks {
        let row: i64 = sqlx::query_scalar(&b.plant)
            .fetch_one(env.pool())
            .await
            .unwrap_or_else(|e| panic!("{}: planting failed: {e}", b.rule));
        let expected: Vec<String> = b
            .reported
            .iter()
            .map(|r| r.replace("{row}", &row.to_string()))
            .collect();
        assert_eq!(
            invariant_violations(env.pool()).await.unwrap(),
            expected,
            "{}",
            b.rule
        );
        sqlx::query(b.undo)
            .bind(row)
            .execute(env.pool())
            .await
            .unwrap();
    }
    assert_eq!(
        invariant_violations(env.pool()).await.unwrap(),
        Vec::<String>::new(),
        "every break undone"
    );
}

/// An invoice's id by subscription and month.
async fn invoice(env: &TestEnv, subscription: i64, period: &str) -> i64 {
    sqlx::query_scalar("select id from invoices where subscription_id = $1 and period = $2::date")
        .bind(subscription)
        .bind(period)
        .fetch_one(env.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_consistent_history_breaks_no_invariant_and_each_planted_break_is_reported_alone() {
    let h = history().await;
    let env = &h.env;
    assert_eq!(
        invariant_violations(env.pool()).await.unwrap(),
        Vec::<String>::new(),
        "a history made by the platform's operations and jobs breaks no invariant"
    );
    let (a, a1, b, b1, b2, c1, d1) = (h.a, h.a1, h.b, h.b1, h.b2, h.c1, h.d1);
    let a_september = invoice(env, a1, "2026-09-01").await;
    let d_september = invoice(env, d1, "2026-09-01").await;
    // One more plan period of `subscription` opening and closing on `on`.
    let change_again = |subscription: i64, on: &str| {
        format!(
            "insert into contracts (subscription_id, plan_id, kind, starts_on, ends_on, created_at) \
             select subscription_id, plan_id, kind, starts_on, starts_on, created_at \
             from contracts where subscription_id = {subscription} and starts_on = '{on}' \
             order by id limit 1 returning id"
        )
    };
    let usage_outside = |subscription: i64, tenant: TenantId, on: &str| {
        format!(
            "insert into usage_events (tenant_id, subscription_id, metric, quantity, occurred_on, \
                                       occurred_at, created_at) \
             values ({tenant}, {subscription}, 'calls', 5, '{on}', now(), now()) returning id",
            tenant = tenant.0
        )
    };
    let live = "at most one live subscription per tenant";
    let change = "at most one plan change per tenant and day";
    let period = "a plan period's contract and billing cover the same days";
    let invoices = "one invoice per subscription and month";
    let billed = "every accepted usage event of a closed month billed exactly once";
    let outside = "usage outside every plan period only on its subscription's cancel day";
    let paid = "at most one successful payment per invoice";
    let attempts = "at most one attempt per invoice and day";
    check(
        env,
        vec![
            Break {
                rule: "a second live subscription of b, beside b2",
                plant: format!(
                    "insert into subscriptions (tenant_id, plan_id, status, started_on, \
                         current_period_start, current_period_end, created_at, updated_at) \
                     select tenant_id, plan_id, status, started_on, current_period_start, \
                            current_period_end, created_at, updated_at \
                     from subscriptions where id = {b2} returning id"
                ),
                undo: "delete from subscriptions where id = $1",
                reported: vec![format!("{live}: {}", b.0)],
            },
            Break {
                rule: "a second plan change of a on September 15th",
                plant: change_again(a1, "2026-09-15"),
                undo: "delete from contracts where id = $1",
                reported: vec![format!("{change}: {} on 2026-09-15", a.0)],
            },
            Break {
                // c subscribed and changed plan on September 1st: allowed, one more is not.
                rule: "a second plan change of c on its first day",
                plant: change_again(c1, "2026-09-01"),
                undo: "delete from contracts where id = $1",
                reported: vec![format!("{change}: {} on 2026-09-01", h.c.0)],
            },
            Break {
                rule: "a billing of another subscription than its contract's",
                plant: format!(
                    "update billings set subscription_id = {d1} where id = \
                         (select id from billings where subscription_id = {c1} order by id limit 1) \
                     returning id"
                ),
                undo: "update billings set subscription_id = \
                           (select c.subscription_id from contracts c where c.id = billings.contract_id) \
                       where id = $1",
                reported: vec![format!(
                    "{period}: billing {{row}} from 2026-09-01 until 2026-09-01, \
                     contract from 2026-09-01 until 2026-09-01"
                )],
            },
            Break {
                rule: "a billing starting a day after its contract",
                plant: format!(
                    "update billings set starts_on = '2026-10-21' where subscription_id = {b2} \
                     returning id"
                ),
                undo: "update billings set starts_on = '2026-10-20' where id = $1",
                reported: vec![format!(
                    "{period}: billing {{row}} from 2026-10-21 until -, contract from 2026-10-20 until -"
                )],
            },
            Break {
                rule: "a billing ending a day before its contract",
                plant: format!(
                    "update billings set ends_on = '2026-10-09' \
                     where subscription_id = {b1} and ends_on = '2026-10-10' returning id"
                ),
                undo: "update billings set ends_on = '2026-10-10' where id = $1",
                reported: vec![format!(
                    "{period}: billing {{row}} from 2026-09-15 until 2026-10-09, \
                     contract from 2026-09-15 until 2026-10-10"
                )],
            },
            Break {
                rule: "a second invoice of a for September",
                plant: format!(
                    "insert into invoices (subscription_id, tenant_id, period, status, currency, \
                                           subtotal, tax, total, due_on, finalized_at, paid_at) \
                     select subscription_id, tenant_id, period, status, currency, subtotal, tax, \
                            total, due_on, finalized_at, paid_at \
                     from invoices where id = {a_september} returning id"
                ),
                undo: "delete from invoices where id = $1",
                reported: vec![format!("{invoices}: {a1} 2026-09-01")],
            },
            Break {
                rule: "usage of a closed month changed after its invoice",
                plant: format!(
                    "update usage_events set quantity = quantity + 1 \
                     where subscription_id = {a1} and occurred_on = '2026-10-03' returning id"
                ),
                undo: "update usage_events set quantity = quantity - 1 where id = $1",
                reported: vec![format!(
                    "{billed}: subscription {a1} 2026-10-01: used 24, billed 23"
                )],
            },
            Break {
                // a's plan period covers that day: usage is its own subscription's.
                rule: "usage of b2 five days before it started",
                plant: usage_outside(b2, b, "2026-10-15"),
                undo: "delete from usage_events where id = $1",
                reported: vec![format!("{outside}: usage {{row}} on 2026-10-15")],
            },
            Break {
                rule: "usage of b1 two days after its cancel day",
                plant: usage_outside(b1, b, "2026-10-12"),
                undo: "delete from usage_events where id = $1",
                reported: vec![format!("{outside}: usage {{row}} on 2026-10-12")],
            },
            Break {
                // b1's last plan period ends on the 10th: usage that day is outside it.
                rule: "a cancel day a day after b1's last plan period, with usage on its end day",
                plant: format!(
                    "update subscriptions set cancelled_on = '2026-10-11' where id = {b1} \
                     returning (select u.id from usage_events u \
                                where u.subscription_id = {b1} and u.occurred_on = '2026-10-10')"
                ),
                undo: "update subscriptions set cancelled_on = '2026-10-10' \
                       where id = (select subscription_id from usage_events where id = $1)",
                reported: vec![format!("{outside}: usage {{row}} on 2026-10-10")],
            },
            Break {
                rule: "a second successful payment of d's September invoice, the next day",
                plant: format!(
                    "insert into payments (invoice_id, card_id, attempt, attempted_at, outcome, \
                                           amount, idempotency_key, approval_number) \
                     select invoice_id, card_id, attempt + 1, attempted_at + interval '1 day', \
                            outcome, amount, idempotency_key || ' again', approval_number \
                     from payments where invoice_id = {d_september} and outcome = 'succeeded' \
                     returning id"
                ),
                undo: "delete from payments where id = $1",
                reported: vec![format!("{paid}: {d_september}")],
            },
            Break {
                // 00:00 and 23:00 in Seoul: two UTC days, one Seoul day.
                rule: "a second attempt of a's September invoice at 23:00 on its day",
                plant: format!(
                    "insert into payments (invoice_id, card_id, attempt, attempted_at, outcome, \
                                           amount, idempotency_key, failure_code) \
                     select invoice_id, card_id, 2, \
                            ((attempted_at at time zone 'Asia/Seoul')::date + time '23:00') \
                                at time zone 'Asia/Seoul', \
                            'failed', amount, idempotency_key || ' again', 'card_declined' \
                     from payments where invoice_id = {a_september} returning id"
                ),
                undo: "delete from payments where id = $1",
                reported: vec![format!("{attempts}: {a_september} on 2026-10-05")],
            },
        ],
    )
    .await;
}
