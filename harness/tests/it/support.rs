//! Shared set-up for the platform tests: a small catalog, an org with a card, a tenant.

use std::collections::BTreeMap;

use billing_harness::TestEnv;
use billing_harness::calendar::Calendar;
use billing_harness::model::{Catalog, Currency, Overage, Plan, TenantId, Terms};
use billing_harness::payments::TestCard;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

/// The password in `url`'s user info (`postgres://user:PASSWORD@host/...`), as written there.
pub(crate) fn url_password(url: &str) -> Option<String> {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, password)| password.to_owned())
}

/// The start of a day in the platform's calendar (Asia/Seoul).
pub(crate) fn seoul(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Calendar::platform().start_of_day(day(y, m, d))
}

pub(crate) fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Holds `tenant`'s row as a plan change or cancel of it does, until the transaction ends.
pub(crate) async fn hold_tenant(
    env: &TestEnv,
    tenant: TenantId,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = env.pool().begin().await.unwrap();
    sqlx::query("select id from tenants where id = $1 for update")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

pub(crate) fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub(crate) fn plan(
    key: &str,
    product: &str,
    base_fee: &str,
    included: u64,
    block: u64,
    price: &str,
) -> Plan {
    Plan {
        key: key.into(),
        product: product.into(),
        currency: Currency::Krw,
        terms: Terms {
            base_fee: dec(base_fee),
            included: BTreeMap::from([("api_calls".to_owned(), included)]),
            overage: BTreeMap::from([(
                "api_calls".to_owned(),
                Overage {
                    block,
                    price: dec(price),
                },
            )]),
        },
        limits: BTreeMap::from([("seats".to_owned(), 10)]),
    }
}

/// The catalog of the example: pro and business on analytics, free on analytics, and a
/// plan of another product.
pub(crate) fn catalog() -> Catalog {
    let mut free = plan("free", "analytics", "0", 1000, 1000, "0");
    free.terms.overage.clear();
    Catalog::new(vec![
        plan("pro", "analytics", "99000", 100_000, 1000, "500"),
        plan("business", "analytics", "290000", 1_000_000, 1000, "300"),
        free,
        plan("crm-basic", "crm", "50000", 0, 100, "10"),
    ])
}

/// Plans whose every unit of `calls` is billed (no included quota, blocks of 1 at 1 KRW), so the
/// invoices show exactly how much usage they counted.
pub(crate) fn metered_catalog() -> Catalog {
    let plan = |key: &str, fee: i64| Plan {
        key: key.into(),
        product: "analytics".into(),
        currency: Currency::Krw,
        terms: Terms {
            base_fee: Decimal::from(fee),
            included: BTreeMap::new(),
            overage: BTreeMap::from([(
                "calls".to_owned(),
                Overage {
                    block: 1,
                    price: Decimal::ONE,
                },
            )]),
        },
        limits: BTreeMap::new(),
    };
    Catalog::new(vec![plan("small", 1_000), plan("large", 5_000)])
}

/// Gives every table's ids a range of its own: the n-th id sequence (by name) restarts at
/// n × 100,000 + n. A fresh database otherwise numbers tenants, subscriptions, plans, contracts
/// and billings 1, 2, 3 alike, so a query that joins on the wrong key or binds a tenant id where a
/// subscription id belongs still finds the right row by luck. Here it finds none.
///
/// The outbox keeps its ids from 1: they seed the dispatcher's jitter, so a scenario's snapshot,
/// which says when each product converged, is the same here and in `cargo xtask scenario run`,
/// whose databases number from 1.
pub(crate) async fn distinct_ids(env: &TestEnv) {
    sqlx::query(
        "select setval(format('%I.%I', schemaname, sequencename)::regclass, n * 100000 + n, false) \
         from (select schemaname, sequencename, row_number() over (order by sequencename) as n \
               from pg_sequences \
               where schemaname = 'public' \
                 and sequencename not in ('harness_sequence', 'sync_outbox_id_seq')) s",
    )
    .execute(env.pool())
    .await
    .unwrap();
}

/// Gives every product and every plan one display name, "Product" and "Plan": names are for
/// people, unlike keys neither unique nor stable, so a query that reads the name where the key
/// belongs shows it.
pub(crate) async fn display_names(env: &TestEnv) {
    sqlx::query(
        "with products as (update products set name = 'Product') \
         update plans set name = 'Plan'",
    )
    .execute(env.pool())
    .await
    .unwrap();
}

/// A database with [`distinct_ids`], the catalog installed, the clock at `start`, and one tenant
/// of `analytics` whose org has an `ok` card when `card` is set.
pub(crate) async fn world(start: DateTime<Utc>, card: bool) -> (TestEnv, TenantId) {
    let env = TestEnv::builder().start_at(start).build().await.unwrap();
    world_with(env, card.then_some(TestCard::Ok)).await
}

/// [`world`] in a given environment, with a card of any script.
pub(crate) async fn world_with(env: TestEnv, card: Option<TestCard>) -> (TestEnv, TenantId) {
    distinct_ids(&env).await;
    let start = env.clock().now();
    let p = env.platform();
    p.install_catalog(&catalog(), start).await.unwrap();
    let org = p.create_org("acme", start).await.unwrap();
    if let Some(card) = card {
        p.register_card(org, card, start).await.unwrap();
    }
    let tenant = p
        .create_tenant(org, "analytics", "acme-analytics", start)
        .await
        .unwrap();
    (env, tenant)
}

/// Every row of every platform table, as text: equal fingerprints mean nothing was written.
pub(crate) async fn fingerprint(env: &TestEnv) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = 'public' order by 1",
    )
    .fetch_all(env.pool())
    .await
    .unwrap();
    let mut all = String::new();
    for table in tables {
        let rows: Option<String> = sqlx::query_scalar(&format!(
            "select string_agg(t::text, E'\\n' order by t::text) from {table} t"
        ))
        .fetch_one(env.pool())
        .await
        .unwrap();
        all.push_str(&format!("== {table}\n{}\n", rows.unwrap_or_default()));
    }
    all
}

/// Snapshots a payment timeline under `snapshots/payments/`.
pub(crate) fn assert_timeline(name: &str, timeline: &billing_harness::platform::Timeline) {
    insta::with_settings!({
        snapshot_path => "../../../snapshots/payments",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_yaml_snapshot!(name, timeline);
    });
}

/// A tenant on `pro` since the 1st of last month, through the builders.
pub(crate) async fn pro_since_last_month(env: &TestEnv) -> billing_harness::builders::Tenant<'_> {
    env.build()
        .tenant()
        .plan("pro")
        .subscribed_on(env.last_month().day(1))
        .create()
        .await
        .unwrap()
}

/// A member to sign up with `email`.
pub(crate) fn member(email: &str) -> billing_harness::platform::NewUser {
    billing_harness::platform::NewUser {
        name: "Member".into(),
        email: email.into(),
        phone: None,
        role: "member".into(),
        locale: "ko-KR".into(),
    }
}
