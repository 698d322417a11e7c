//! The builder DSL: the QA intent in a few typed lines, with every table agreeing.

use billing_harness::prelude::*;
use chrono::NaiveDate;

use crate::support::{day, dec, fingerprint, pro_since_last_month};

fn today() -> NaiveDate {
    day(2026, 11, 24)
}

async fn env() -> TestEnv {
    TestEnv::builder()
        .today(today())
        .seed(42)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn upgrade_mid_month_bills_both_plans() {
    let env = env().await;
    let t = env
        .build()
        .tenant()
        .plan("pro")
        .subscribed_on(env.months_ago(1).day(10))
        .create()
        .await
        .unwrap();
    t.change_plan("business")
        .on(env.months_ago(1).day(20))
        .await
        .unwrap();
    t.usage("api_calls", 120_000)
        .on(env.months_ago(1).day(25))
        .await
        .unwrap();
    env.clock()
        .advance_to(env.this_month().day(1))
        .await
        .unwrap();
    let invoice = t.invoice(env.months_ago(1)).await.unwrap().unwrap();
    insta::with_settings!({
        snapshot_path => "../../../snapshots/invoices",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_yaml_snapshot!("builder_upgrade_mid_month", invoice, {
            ".id" => "[id]",
            ".finalized_at" => "[timestamp]",
        });
    });
    assert_eq!(invoice.invoice.total, dec("144193"));
}

/// The analysis's "move the subscription back a month" case, as one chain; then every table
/// QA used to edit by hand agrees with the others.
#[tokio::test]
async fn a_subscription_from_last_month_with_daily_usage_is_consistent_across_six_tables() {
    let env = env().await;
    let t = env
        .build()
        .tenant()
        .plan("pro")
        .subscribed_on(env.last_month().day(1))
        .daily_usage("api_calls", 5_000)
        .create()
        .await
        .unwrap();
    let started_on = env.last_month().day(1).date();
    let row: (
        i64,
        NaiveDate,
        NaiveDate,
        NaiveDate,
        Option<NaiveDate>,
        Option<NaiveDate>,
    ) = sqlx::query_as(
        "select s.id, s.started_on, c.starts_on, b.starts_on, c.ends_on, b.ends_on \
         from subscriptions s join contracts c on c.subscription_id = s.id \
         join billings b on b.contract_id = c.id where s.tenant_id = $1",
    )
    .bind(t.id())
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert_eq!(row.1..=row.3, started_on..=started_on);
    assert_eq!((row.2, row.4, row.5), (started_on, None, None));
    let details_match_the_plan: (bool, bool) = sqlx::query_as(
        "select \
           (select array_agg((option_key, value) order by option_key) from contract_details d \
              join contracts c on c.id = d.contract_id where c.subscription_id = $1) \
           = (select array_agg((option_key, value) order by option_key) from plan_limits l \
              join plans p on p.id = l.plan_id where p.key = 'pro'), \
           (select array_agg((metric, included, overage_block, overage_price) order by metric) \
              from billing_details d join billings b on b.id = d.billing_id where b.subscription_id = $1) \
           = (select array_agg((metric, included, overage_block, overage_price) order by metric) \
              from plan_metrics m join plans p on p.id = m.plan_id where p.key = 'pro')",
    )
    .bind(row.0)
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert_eq!(details_match_the_plan, (true, true));
    let usage: (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where subscription_id = $1), \
                count(distinct occurred_on) from usage_events where tenant_id = $2",
    )
    .bind(row.0)
    .bind(t.id())
    .fetch_one(env.pool())
    .await
    .unwrap();
    let days = (today() - started_on).num_days();
    assert_eq!(
        usage,
        (days, days, days),
        "one event a day from the 1st of last month to yesterday"
    );
}

#[tokio::test]
async fn tenants_share_one_default_org_unless_they_ask_for_their_own() {
    let env = env().await;
    let a = env.build().tenant().plan("pro").create().await.unwrap();
    let b = env.build().tenant().create().await.unwrap();
    let c = env
        .build()
        .tenant()
        .card(TestCard::Declined)
        .plan("free")
        .create()
        .await
        .unwrap();
    let org = env.build().org().name("Globex").create().await.unwrap();
    let d = env
        .build()
        .tenant()
        .org(&org)
        .users(2)
        .create()
        .await
        .unwrap();
    assert_eq!(a.org(), b.org());
    assert_ne!(c.org(), a.org());
    assert_eq!(d.org(), org.id);
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from organizations), (select count(*) from users), \
                (select count(*) from billing_accounts), (select count(*) from product_users)",
    )
    .fetch_one(env.pool())
    .await
    .unwrap();
    // Three organizations, each with its owner and billing account; two more members.
    assert_eq!(counts, (3, 5, 3, 2));
}

#[tokio::test]
async fn traits_compose_at_the_call_site() {
    let env = env().await;
    let late = env
        .build()
        .tenant()
        .plan("pro")
        .past_due()
        .create()
        .await
        .unwrap();
    let timeline = late.timeline().await.unwrap();
    assert_eq!(timeline.subscription.unwrap().status.as_str(), "past_due");
    assert_eq!(
        timeline.attempts[0].failure_code.as_deref(),
        Some("declined")
    );
    let org = env.build().org().invitations(3).create().await.unwrap();
    let pending: i64 = sqlx::query_scalar(
        "select count(*) from invitations where organization_id = $1 and status = 'pending'",
    )
    .bind(org.id)
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert_eq!(pending, 3);
}

#[tokio::test]
async fn build_gives_plain_values_and_writes_nothing() {
    let env = env().await;
    let before = fingerprint(&env).await;
    let spec = env
        .build()
        .tenant()
        .card(TestCard::FailTimes(1))
        .plan("business")
        .subscribed_on(env.last_month().day(3))
        .build();
    assert_eq!(fingerprint(&env).await, before);
    assert_eq!(
        (
            spec.product.as_str(),
            spec.plan.as_deref(),
            spec.subscribed_on
        ),
        ("analytics", Some("business"), Some(day(2026, 10, 3)))
    );
    assert_eq!(spec.org.unwrap().card.as_deref(), Some("fail_times:1"));
}

#[tokio::test]
async fn korean_people_and_companies() {
    let env = TestEnv::builder()
        .today(today())
        .locale(Locale::Korean)
        .build()
        .await
        .unwrap();
    env.build().tenant().create().await.unwrap();
    let (company, name, phone, locale): (String, String, String, String) = sqlx::query_as(
        "select o.name, u.name, u.phone, u.locale from organizations o join users u on u.organization_id = o.id",
    )
    .fetch_one(env.pool())
    .await
    .unwrap();
    let hangul = |s: &str| s.chars().all(|c| ('가'..='힣').contains(&c));
    assert!(hangul(&company) && hangul(&name), "{company} {name}");
    assert!(phone.starts_with("010-"), "{phone}");
    assert_eq!(locale, "ko-KR");
}

#[tokio::test]
async fn the_same_seed_creates_identical_data() {
    async fn world(seed: u64) -> String {
        let env = TestEnv::builder()
            .today(today())
            .seed(seed)
            .build()
            .await
            .unwrap();
        let t = env
            .build()
            .tenant()
            .plan("pro")
            .subscribed_on(env.last_month().day(5))
            .users(2)
            .create()
            .await
            .unwrap();
        t.usage_pattern("api_calls")
            .total(10_001)
            .from(env.last_month().day(5))
            .until(env.last_month().day(9))
            .await
            .unwrap();
        env.build().org().invitations(2).create().await.unwrap();
        fingerprint(&env).await
    }
    let (a, b, other) = (world(7).await, world(7).await, world(8).await);
    assert_eq!(a, b);
    assert_ne!(a, other, "another seed draws other names");
}

#[tokio::test]
async fn bulk_usage_patterns_record_one_batch() {
    let env = env().await;
    let t = pro_since_last_month(&env).await;
    let (from, until) = (env.last_month().day(1), env.last_month().day(4));
    t.usage_pattern("api_calls")
        .hourly(10)
        .from(from)
        .until(until)
        .await
        .unwrap();
    t.usage_pattern("exports")
        .total(1_000)
        .from(from)
        .until(until)
        .await
        .unwrap();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "select metric, count(*), sum(quantity)::bigint from usage_events group by metric order by metric",
    )
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![("api_calls".into(), 72, 720), ("exports".into(), 3, 1_000)]
    );
}

#[tokio::test]
async fn a_refused_step_names_its_rule_and_the_clock_never_rewinds_past_a_job() {
    let env = env().await;
    let t = env
        .build()
        .tenant()
        .plan("pro")
        .subscribed_on(env.last_month().day(10))
        .create()
        .await
        .unwrap();
    let err = t.change_plan("pro").await.unwrap_err();
    assert_eq!(err.code(), "same_plan");
    env.clock()
        .advance_to(env.this_month().day(2))
        .await
        .unwrap();
    let err = t.cancel().on(env.last_month().day(20)).await.unwrap_err();
    assert_eq!(err.code(), "clock");
    assert!(
        err.to_string().starts_with("cannot move the clock back"),
        "{err}"
    );
}

/// Once the builders drew fake data, the note carries the seed that replays it (before, it has
/// none: `adopters::the_failure_note_names_an_adopters_commands_and_the_seed_only_if_drawn`).
#[tokio::test]
async fn a_failing_test_prints_its_seed() {
    let env = TestEnv::builder()
        .today(today())
        .seed(1234)
        .build()
        .await
        .unwrap();
    env.build().tenant().plan("pro").create().await.unwrap();
    let note = env.failure_note();
    assert!(
        note.contains("fake data seed: 1234 (HARNESS_SEED=1234 replays it)"),
        "{note}"
    );
    assert!(note.contains(&env.psql_command()), "{note}");
}
