//! Purge: a rich user purged completely (the catalog walk finds nothing), everything else
//! untouched table by table, products told, a second purge a no-op, a dry run that writes nothing;
//! a table a later migration adds is covered or named.

use std::collections::BTreeMap;

use billing_harness::TestEnv;
use billing_harness::builders::{Org, default_catalog};
use billing_harness::model::UserId;
use billing_harness::payments::TestCard;
use billing_harness::purge::{self, PurgeError, PurgeTarget, Scope};
use chrono::NaiveDate;
use sqlx::PgPool;

async fn env() -> TestEnv {
    TestEnv::builder()
        .today("2026-11-24".parse::<NaiveDate>().unwrap())
        .seed(14)
        .build()
        .await
        .unwrap()
}

/// `value` (a query with `{t}` for the table) for each table that `tables` lists.
async fn per_table(pool: &PgPool, tables: &str, value: &str) -> BTreeMap<String, i64> {
    let tables: Vec<String> = sqlx::query_scalar(tables).fetch_all(pool).await.unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(&value.replace("{t}", &t))
            .fetch_one(pool)
            .await
            .unwrap();
        out.insert(t, n);
    }
    out
}

/// Every table's row count.
async fn counts(pool: &PgPool) -> BTreeMap<String, i64> {
    per_table(
        pool,
        "select table_name::text from information_schema.tables where table_schema = 'public' \
         and table_type = 'BASE TABLE' order by 1",
        "select count(*) from {t}",
    )
    .await
}

/// The rows of one organization, table by table, as JSON text: compared whole before and after.
async fn rows_of_org(pool: &PgPool, org: i64) -> BTreeMap<&'static str, Vec<String>> {
    let queries: [(&str, &str); 12] = [
        (
            "organizations",
            "select to_jsonb(x)::text from organizations x where id = $1",
        ),
        (
            "users",
            "select to_jsonb(x)::text from users x where organization_id = $1",
        ),
        (
            "cards",
            "select to_jsonb(x)::text from cards x where organization_id = $1",
        ),
        (
            "billing_accounts",
            "select to_jsonb(x)::text from billing_accounts x where organization_id = $1",
        ),
        (
            "invitations",
            "select to_jsonb(x)::text from invitations x where organization_id = $1",
        ),
        (
            "tenants",
            "select to_jsonb(x)::text from tenants x where organization_id = $1",
        ),
        (
            "product_users",
            "select to_jsonb(x)::text from product_users x join tenants t on t.id = x.tenant_id where t.organization_id = $1",
        ),
        (
            "subscriptions",
            "select to_jsonb(x)::text from subscriptions x join tenants t on t.id = x.tenant_id where t.organization_id = $1",
        ),
        (
            "usage_events",
            "select to_jsonb(x)::text from usage_events x join tenants t on t.id = x.tenant_id where t.organization_id = $1",
        ),
        (
            "invoices",
            "select to_jsonb(x)::text from invoices x join tenants t on t.id = x.tenant_id where t.organization_id = $1",
        ),
        (
            "payments",
            "select to_jsonb(x)::text from payments x join invoices i on i.id = x.invoice_id join tenants t on t.id = i.tenant_id where t.organization_id = $1",
        ),
        (
            "sync_outbox",
            "select to_jsonb(x)::text from sync_outbox x join tenants t on t.id = x.tenant_id where t.organization_id = $1",
        ),
    ];
    let mut out = BTreeMap::new();
    for (table, sql) in queries {
        let mut rows: Vec<String> = sqlx::query_scalar(sql)
            .bind(org)
            .fetch_all(pool)
            .await
            .unwrap();
        rows.sort();
        out.insert(table, rows);
    }
    out
}

async fn email_of(pool: &PgPool, user: UserId) -> String {
    sqlx::query_scalar("select email from users where id = $1")
        .bind(user)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The owner of an org with 2 tenants on 2 products, a member, 2 invitations, 2 cards, 3 months
/// of invoices and payments and daily usage; and another organization with a tenant.
async fn rich(env: &TestEnv) -> (Org, Org, UserId) {
    env.platform()
        .install_catalog(&default_catalog(), env.clock().now())
        .await
        .unwrap();
    let org = env
        .build()
        .org()
        .card(TestCard::Ok)
        .invitations(2)
        .create()
        .await
        .unwrap();
    let start = env.months_ago(3).day(3);
    env.build()
        .tenant()
        .org(&org)
        .plan("pro")
        .users(1)
        .subscribed_on(start)
        .daily_usage("api_calls", 4_000)
        .create()
        .await
        .unwrap();
    env.build()
        .tenant()
        .org(&org)
        .plan("crm-basic")
        .subscribed_on(start)
        .create()
        .await
        .unwrap();
    env.platform()
        .register_card(org.id, TestCard::Ok, env.clock().now())
        .await
        .unwrap();
    let other = env.build().org().card(TestCard::Ok).create().await.unwrap();
    env.build()
        .tenant()
        .org(&other)
        .plan("pro")
        .users(1)
        .subscribed_on(env.months_ago(2).day(1))
        .create()
        .await
        .unwrap();
    env.clock()
        .advance_to(env.this_month().day(6))
        .await
        .unwrap();
    let member: UserId =
        sqlx::query_scalar("select id from users where organization_id = $1 and role <> 'owner'")
            .bind(org.id)
            .fetch_one(env.pool())
            .await
            .unwrap();
    (org, other, member)
}

#[tokio::test]
async fn a_rich_user_is_purged_completely_and_nothing_else_moves() {
    let env = env().await;
    let (org, other, member) = rich(&env).await;
    let pool = env.pool();
    let paid: i64 = sqlx::query_scalar(
        "select count(*) from payments p join invoices i on i.id = p.invoice_id \
         join tenants t on t.id = i.tenant_id where t.organization_id = $1 and p.outcome = 'succeeded'",
    )
    .bind(org.id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(paid >= 6, "3 months of 2 tenants paid, got {paid}");
    env.assert_converged().await;
    let email = email_of(pool, org.owner).await;
    let target = PurgeTarget::Email(email.clone());

    // A dry run writes nothing.
    let before = counts(pool).await;
    let plan = env.platform().purge_plan(&target).await.unwrap();
    assert_eq!(counts(pool).await, before, "a dry run writes nothing");
    assert_eq!(
        plan.scope,
        Scope::OwnerData,
        "a member remains: the org stays"
    );
    for table in [
        "payments",
        "invoice_lines",
        "invoices",
        "usage_events",
        "billing_details",
        "billings",
        "contract_details",
        "contracts",
        "subscriptions",
        "product_users",
        "tenants",
        "cards",
        "invitations",
        "billing_accounts",
        "users",
    ] {
        assert!(
            plan.rows.get(table).copied().unwrap_or(0) > 0,
            "{table} in the plan"
        );
    }
    assert_eq!(plan.rows.get("cards"), Some(&2));
    assert_eq!(plan.rows.get("tenants"), Some(&2));
    assert_eq!(plan.rows.get("users"), Some(&1));
    assert!(!plan.rows.contains_key("organizations"));
    let told: Vec<&str> = plan.tenants_told.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(told, ["analytics", "crm"]);
    let notices: Vec<(&str, &str)> = plan
        .notices
        .iter()
        .map(|n| (n.product.as_str(), n.entity.as_str()))
        .collect();
    assert_eq!(
        notices,
        [
            ("analytics", "tenant"),
            ("analytics", "user"),
            ("analytics", "user"),
            ("crm", "tenant"),
            ("crm", "user"),
            ("crm", "user")
        ],
        "rule: each product hears of its tenant's deletion before its users' (the owner's and \
         the member's, whose tenant goes)"
    );
    let text = plan.render();
    assert!(
        !text.contains(&email),
        "the plan names no e-mail address:\n{text}"
    );

    let other_before = rows_of_org(pool, other.id.0).await;
    let member_before: String =
        sqlx::query_scalar("select to_jsonb(u)::text from users u where id = $1")
            .bind(member)
            .fetch_one(pool)
            .await
            .unwrap();
    let report = env.purge_user(&email).await.unwrap();
    assert_eq!(
        report.plan, plan,
        "the purge executes the plan the dry run showed"
    );
    let left = purge::leftovers(pool, &report.keys).await.unwrap();
    assert!(
        left.is_empty(),
        "the catalog walk finds nothing left: {left:?}"
    );
    let after = counts(pool).await;
    for (table, was) in &before {
        let deleted = i64::try_from(plan.rows.get(table).copied().unwrap_or(0)).unwrap();
        let added = match table.as_str() {
            "sync_outbox" => i64::try_from(plan.notices.len()).unwrap(),
            "purge_audit" => 1,
            _ => 0,
        };
        assert_eq!(after[table], was - deleted + added, "{table}");
    }
    assert_eq!(
        rows_of_org(pool, other.id.0).await,
        other_before,
        "another org untouched"
    );
    let member_after: String =
        sqlx::query_scalar("select to_jsonb(u)::text from users u where id = $1")
            .bind(member)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(
        member_after, member_before,
        "the other member stays as they were"
    );

    // The audit row: counts, no e-mail address or name.
    let (asked, rows): (String, serde_json::Value) =
        sqlx::query_as("select asked, rows from purge_audit where id = $1")
            .bind(report.audit_id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(asked.starts_with("user email sha256:"), "{asked}");
    assert!(!asked.contains(&email));
    assert_eq!(rows["tenants"], 2);

    // The products receive the deletions and agree with the platform.
    env.assert_converged().await;
    let analytics = env.product("analytics").await.unwrap();
    let crm = env.product("crm").await.unwrap();
    let routes: Vec<String> = analytics
        .journal()
        .iter()
        .chain(crm.journal().iter())
        .filter(|r| r.method == "DELETE")
        .map(|r| r.route.clone())
        .collect();
    assert!(
        routes.contains(&"/v1/tenants/{tenant}".to_owned()),
        "{routes:?}"
    );
    assert!(
        routes.contains(&"/v1/users/{user}".to_owned()),
        "{routes:?}"
    );
    assert!(
        analytics
            .read_state()
            .users
            .iter()
            .all(|u| u.id != org.owner.0)
    );
    assert!(crm.read_state().tenants.is_empty());

    // Again: nothing matches, nothing moves but the audit.
    let again = env.purge_user(&email).await.unwrap();
    assert_eq!(again.plan.scope, Scope::Nothing);
    assert!(again.plan.rows.is_empty());
    let mut expected = counts(pool).await;
    *expected.get_mut("purge_audit").unwrap() -= 1;
    assert_eq!(expected, after, "a second purge deletes nothing");
}

#[tokio::test]
async fn the_last_member_takes_the_org_and_a_member_only_leaves() {
    let env = env().await;
    let (org, tenant, member) = small(&env).await;
    let report = env.purge(&PurgeTarget::User(member)).await.unwrap();
    assert_eq!(report.plan.scope, Scope::UserLeft);
    assert_eq!(report.plan.rows.get("tenants"), None);
    assert_eq!(report.plan.rows.get("product_users"), Some(&1));
    // The user's deletion is queued with the tenant that stays, in its order.
    let queued: Vec<(Option<i64>, String)> = sqlx::query_as(
        "select tenant_id, operation from sync_outbox where entity = 'user' and entity_id = $1 \
         order by id desc limit 1",
    )
    .bind(member)
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(queued, [(Some(tenant), "delete".to_owned())]);
    env.assert_converged().await;
    let owner: UserId = sqlx::query_scalar("select id from users where organization_id = $1")
        .bind(org)
        .fetch_one(env.pool())
        .await
        .unwrap();
    let report = env.purge(&PurgeTarget::User(owner)).await.unwrap();
    assert_eq!(
        report.plan.scope,
        Scope::Organization,
        "the last member takes the org"
    );
    assert_eq!(report.plan.rows.get("organizations"), Some(&1));
    assert!(
        purge::leftovers(env.pool(), &report.keys)
            .await
            .unwrap()
            .is_empty()
    );
    env.assert_converged().await;
}

#[tokio::test]
async fn a_table_a_later_migration_adds_is_covered_or_named() {
    let env = env().await;
    let t = env.build().tenant().plan("pro").create().await.unwrap();
    sqlx::raw_sql(
        "create table tenant_notes (id bigint generated always as identity primary key, \
         tenant_id bigint not null references tenants, written_by_id bigint references users, \
         note text not null)",
    )
    .execute(env.pool())
    .await
    .unwrap();
    sqlx::query("insert into tenant_notes (tenant_id, note) values ($1, 'x')")
        .bind(t.id())
        .execute(env.pool())
        .await
        .unwrap();
    let plan = env
        .platform()
        .purge_plan(&PurgeTarget::Org(t.org()))
        .await
        .unwrap();
    assert_eq!(
        plan.rows.get("tenant_notes"),
        Some(&1),
        "covered by its key"
    );
    sqlx::raw_sql("create table shadow_copies (id bigint primary key, user_ref_id bigint)")
        .execute(env.pool())
        .await
        .unwrap();
    let before = counts(env.pool()).await;
    let refused = env.purge_org(t.org()).await.unwrap_err();
    assert!(
        matches!(&refused, PurgeError::UnknownReference { table, column }
            if table == "shadow_copies" && column == "user_ref_id"),
        "{refused}"
    );
    assert!(refused.to_string().contains("shadow_copies"));
    assert_eq!(counts(env.pool()).await, before, "refused: nothing written");
    // A column of a keyed table is covered only by a key of its own, and a soft reference only
    // in its own table: `entity_id` outside the outbox is named too.
    sqlx::raw_sql(
        "drop table shadow_copies; create table mirrors (id bigint primary key, \
         tenant_id bigint references tenants, entity_id bigint)",
    )
    .execute(env.pool())
    .await
    .unwrap();
    let refused = env.purge_org(t.org()).await.unwrap_err();
    assert!(
        matches!(&refused, PurgeError::UnknownReference { table, column }
            if table == "mirrors" && column == "entity_id"),
        "{refused}"
    );
}

/// Addresses are matched without regard to case: two users whose addresses differ only in case
/// are refused as ambiguous, with nothing purged; each can still be purged by id.
#[tokio::test]
async fn an_address_matching_two_users_up_to_case_is_refused_and_purges_nothing() {
    let env = env().await;
    let upper = env
        .build()
        .user()
        .email("Dana@Example.com")
        .create()
        .await
        .unwrap();
    let lower = env
        .build()
        .user()
        .email("dana@example.com")
        .create()
        .await
        .unwrap();
    let users = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from users")
            .fetch_one(env.pool())
            .await
            .unwrap()
    };
    let before = users().await;
    let refused = env.purge_user("DANA@example.COM").await.unwrap_err();
    assert!(
        matches!(refused, PurgeError::Ambiguous { matches: 2 }),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "the e-mail address matches 2 users whose addresses differ only in case; nothing was purged (purge each by its user id)"
    );
    assert_eq!(users().await, before, "nothing was purged");
    let report = env.purge(&PurgeTarget::User(lower.id())).await.unwrap();
    assert_eq!(report.plan.scope, Scope::Organization);
    // Now one user matches, whatever the case: the other one.
    let report = env.purge_user("DANA@EXAMPLE.COM").await.unwrap();
    assert_eq!(report.plan.scope, Scope::Organization);
    assert_eq!(users().await, before - 2);
    let left: i64 = sqlx::query_scalar("select count(*) from users where id = any($1)")
        .bind(vec![upper.id().0, lower.id().0])
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// A user by id, with the organization's other users made with the given roles; `left` of them
/// leave the organization before the purge.
async fn org_with(env: &TestEnv, others: &[&str], left: usize) -> (Org, Vec<UserId>) {
    let org = env.build().org().create().await.unwrap();
    let mut ids = Vec::new();
    for role in others {
        let user = env
            .build()
            .user()
            .org(&org)
            .role(*role)
            .create()
            .await
            .unwrap();
        ids.push(user.id());
    }
    for id in ids.iter().take(left) {
        env.platform()
            .leave_org(*id, env.clock().now())
            .await
            .unwrap();
    }
    (org, ids)
}

/// Each row of the scope table in `purge`'s module doc, at its boundary.
#[tokio::test]
async fn the_scope_rule_at_each_of_its_rows() {
    let env = env().await;
    env.platform()
        .install_catalog(&default_catalog(), env.clock().now())
        .await
        .unwrap();
    // The owner, with another owner: only the owner's own rows.
    let (org, _) = org_with(&env, &["owner", "member"], 0).await;
    let plan = env
        .platform()
        .purge_plan(&PurgeTarget::User(org.owner))
        .await
        .unwrap();
    assert_eq!(plan.scope, Scope::UserLeft, "another owner remains");
    assert_eq!(plan.rows.get("tenants"), None);
    // The last owner, with members only: the owner and the organization's billing data.
    let (org, _) = org_with(&env, &["member"], 0).await;
    let plan = env
        .platform()
        .purge_plan(&PurgeTarget::User(org.owner))
        .await
        .unwrap();
    assert_eq!(
        plan.scope,
        Scope::OwnerData,
        "members remain, no other owner"
    );
    assert_eq!(plan.rows.get("organizations"), None);
    assert_eq!(plan.rows.get("billing_accounts"), Some(&1));
    // Every other member already left: the owner is the last, and takes the organization.
    let (org, _) = org_with(&env, &["owner", "member"], 2).await;
    let plan = env
        .platform()
        .purge_plan(&PurgeTarget::User(org.owner))
        .await
        .unwrap();
    assert_eq!(plan.scope, Scope::Organization, "the others already left");
    assert_eq!(plan.rows.get("organizations"), Some(&1));
    // A member with another member left: only the member.
    let (_, members) = org_with(&env, &["member", "member"], 1).await;
    let plan = env
        .platform()
        .purge_plan(&PurgeTarget::User(members[1]))
        .await
        .unwrap();
    assert_eq!(plan.scope, Scope::UserLeft, "the owner remains");
    // Nobody by that id.
    let plan = env
        .platform()
        .purge_plan(&PurgeTarget::User(UserId(i64::MAX)))
        .await
        .unwrap();
    assert_eq!(plan.scope, Scope::Nothing);
}

/// Names play no part: a user of another organization with the same name stays.
#[tokio::test]
async fn a_namesake_in_another_organization_is_never_touched() {
    let env = env().await;
    let gone = env.build().user().name("Kim Minji").create().await.unwrap();
    let namesake = env.build().user().name("Kim Minji").create().await.unwrap();
    assert_ne!(gone.org(), namesake.org());
    let report = env.purge(&PurgeTarget::User(gone.id())).await.unwrap();
    assert_eq!(report.plan.scope, Scope::Organization);
    let (name, deleted): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("select name, deleted_at from users where id = $1")
            .bind(namesake.id())
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!(name, "Kim Minji");
    assert_eq!(deleted, None);
    let orgs: i64 = sqlx::query_scalar("select count(*) from organizations where id = $1")
        .bind(namesake.org())
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(orgs, 1);
}

/// The highest id of every table with a bigint `id`: what a seed tags its rows above.
async fn max_ids(pool: &PgPool) -> BTreeMap<String, i64> {
    per_table(
        pool,
        "select table_name::text from information_schema.columns where table_schema = 'public' \
         and column_name = 'id' and data_type = 'bigint' order by 1",
        "select coalesce(max(id), 0) from {t}",
    )
    .await
}

/// A run's rows as `harness_run_rows` holds them (written here after the fact, by id, where
/// `scenario seed` records each in the transaction that inserts it): the catalog when
/// `catalog`, an organization with a card and a tenant on `pro` with a user; then the run `run`
/// and every row created since it began. The organization.
async fn seeded_run(env: &TestEnv, run: &str, catalog: bool) -> Org {
    let before = max_ids(env.pool()).await;
    if catalog {
        env.platform()
            .install_catalog(&default_catalog(), env.clock().now())
            .await
            .unwrap();
    }
    let org = env.build().org().card(TestCard::Ok).create().await.unwrap();
    env.build()
        .tenant()
        .org(&org)
        .plan("pro")
        .users(1)
        .create()
        .await
        .unwrap();
    sqlx::query(
        "insert into harness_runs (id, scenario, seed, anchor, created_at) values ($1, 'x', 1, null, $2)",
    )
    .bind(run)
    .bind(env.clock().now())
    .execute(env.pool())
    .await
    .unwrap();
    for (table, max) in before {
        sqlx::query(&format!(
            "insert into harness_run_rows (run_id, table_name, row_id) select $1, $2, id from {table} where id > $3"
        ))
        .bind(run)
        .bind(&table)
        .bind(max)
        .execute(env.pool())
        .await
        .unwrap();
    }
    org
}

/// How many rows each run has in `harness_run_rows`, and the runs.
async fn run_rows(pool: &PgPool) -> (BTreeMap<String, i64>, Vec<String>) {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select run_id, count(*) from harness_run_rows group by 1 order by 1")
            .fetch_all(pool)
            .await
            .unwrap();
    let runs = sqlx::query_scalar("select id from harness_runs order by 1")
        .fetch_all(pool)
        .await
        .unwrap();
    (rows.into_iter().collect(), runs)
}

/// A run takes the organizations it created and everything of them, its run rows, and the
/// catalog rows it installed that nothing else uses; another run stays, and so do the catalog
/// rows it uses. An organization purged on its own takes the run rows that name its rows, and
/// leaves its run. Ids repeat across tables here (each
/// table counts from 1), so a run row is told apart by its table as well as its id.
#[tokio::test]
async fn a_run_takes_its_organizations_and_unused_plans_and_leaves_other_runs() {
    let env = env().await;
    let a = seeded_run(&env, "run-a", true).await;
    let b = seeded_run(&env, "run-b", false).await;
    env.assert_converged().await;
    let (rows, _) = run_rows(env.pool()).await;
    let plans_before = counts(env.pool()).await["plans"];
    let b_before = rows_of_org(env.pool(), b.id.0).await;

    let report = env.purge(&PurgeTarget::Run("run-a".into())).await.unwrap();
    assert_eq!(report.plan.scope, Scope::Run);
    assert_eq!(report.plan.rows.get("harness_runs"), Some(&1));
    assert_eq!(report.plan.rows.get("organizations"), Some(&1));
    assert_eq!(
        report.plan.rows.get("harness_run_rows").copied(),
        u64::try_from(rows["run-a"]).ok(),
        "every row of the run's, the catalog's included"
    );
    assert_eq!(
        (
            report.plan.rows.get("plans"),
            report.plan.rows.get("products")
        ),
        (Some(&3), None),
        "the plans nothing else uses go (free, business, crm-basic); pro, which run b's tenant \
         is on, stays, and so do the products, which have a sync_url (in use)"
    );
    assert_eq!(counts(env.pool()).await["plans"], plans_before - 3);
    let pro: i64 = sqlx::query_scalar("select count(*) from plans where key = 'pro'")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(pro, 1);
    assert_eq!(
        rows_of_org(env.pool(), a.id.0).await["organizations"].len(),
        0
    );
    assert_eq!(
        rows_of_org(env.pool(), b.id.0).await,
        b_before,
        "run b untouched"
    );
    assert_eq!(
        run_rows(env.pool()).await,
        (
            BTreeMap::from([("run-b".to_owned(), rows["run-b"])]),
            vec!["run-b".to_owned()]
        )
    );
    assert!(
        purge::leftovers(env.pool(), &report.keys)
            .await
            .unwrap()
            .is_empty()
    );
    env.assert_converged().await;
    let again = env.purge(&PurgeTarget::Run("run-a".into())).await.unwrap();
    assert_eq!(again.plan.scope, Scope::Nothing);
    assert!(again.plan.rows.is_empty());

    // Run b's organization alone: its run rows go with its rows, the run stays.
    let report = env.purge_org(b.id).await.unwrap();
    assert_eq!(report.plan.scope, Scope::Organization);
    assert_eq!(
        report.plan.rows.get("harness_run_rows").copied(),
        u64::try_from(rows["run-b"]).ok()
    );
    assert_eq!(report.plan.rows.get("harness_runs"), None);
    assert_eq!(
        run_rows(env.pool()).await,
        (BTreeMap::new(), vec!["run-b".to_owned()])
    );
    env.assert_converged().await;
}

/// A tenant on `pro` with a user, converged with its product: the organization, the tenant and
/// the member.
async fn small(env: &TestEnv) -> (billing_harness::model::OrgId, i64, UserId) {
    let t = env
        .build()
        .tenant()
        .plan("pro")
        .users(1)
        .create()
        .await
        .unwrap();
    env.assert_converged().await;
    let member: UserId =
        sqlx::query_scalar("select id from users where organization_id = $1 and role = 'member'")
            .bind(t.org())
            .fetch_one(env.pool())
            .await
            .unwrap();
    (t.org(), t.id().0, member)
}

/// A plan reads as a line per table in the order they go, then the products told; a purge that
/// matches nothing says so.
#[tokio::test]
async fn a_plan_reads_as_a_line_per_table_then_the_products_told() {
    let env = env().await;
    let (org, tenant, member) = small(&env).await;
    let plan = |target: PurgeTarget| {
        let env = &env;
        async move { env.platform().purge_plan(&target).await.unwrap().render() }
    };
    assert_eq!(
        plan(PurgeTarget::Org(org)).await,
        format!(
            "purge organization {org} (organization)
  billing_details                1 row
  billings                       1 row
  contract_details               1 row
  contracts                      1 row
  subscriptions                  1 row
  product_users                  1 row
  cards                          1 row
  billing_accounts               1 row
  users                          2 rows
  sync_outbox                    4 rows
  tenants                        1 row
  organizations                  1 row
  tell analytics: tenant {tenant} is deleted
  tell products: 2 user deletions
",
            org = org.0
        )
    );
    assert_eq!(
        plan(PurgeTarget::User(member)).await,
        format!(
            "purge user {} (user_left)
  product_users                  1 row
  users                          1 row
  sync_outbox                    1 row
  tell products: 1 user deletion
",
            member.0
        )
    );
    assert_eq!(
        plan(PurgeTarget::User(UserId(i64::MAX))).await,
        format!(
            "purge user {} (nothing)\n  nothing matches: nothing to delete\n",
            i64::MAX
        )
    );
}

/// The catalog walk, given the ids of live rows, finds every row that points at them: through
/// each foreign key, the outbox's entity ids (not its deletion notices) and the run rows of that
/// table (a run row of another table with the same id is not one).
#[tokio::test]
async fn the_walk_finds_every_row_that_points_at_given_ids() {
    let env = env().await;
    let (_, tenant, member) = small(&env).await;
    sqlx::raw_sql(&format!(
        "insert into harness_runs (id, scenario, seed, created_at) values ('r', 'x', 1, now()); \
         insert into harness_run_rows (run_id, table_name, row_id) values \
         ('r', 'tenants', {tenant}), ('r', 'plans', {tenant}), ('r', 'users', {member})",
        member = member.0
    ))
    .execute(env.pool())
    .await
    .unwrap();
    let walk = |table: &str, id: i64| {
        let keys = BTreeMap::from([(table.to_owned(), vec![id])]);
        let env = &env;
        async move {
            purge::leftovers(env.pool(), &keys)
                .await
                .unwrap()
                .into_iter()
                .map(|l| format!("{}.{} -> {}: {}", l.table, l.column, l.references, l.rows))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        walk("tenants", tenant).await,
        [
            "product_users.tenant_id -> tenants: 1",
            "subscriptions.tenant_id -> tenants: 1",
            "sync_outbox.tenant_id -> tenants: 4",
            "sync_outbox.entity_id (tenant) -> tenants: 1",
            "harness_run_rows.row_id -> tenants: 1",
        ]
    );
    assert_eq!(
        walk("users", member.0).await,
        [
            "product_users.user_id -> users: 1",
            "sync_outbox.entity_id (user) -> users: 1",
            "harness_run_rows.row_id -> users: 1",
        ]
    );
    assert!(walk("tenants", i64::MAX).await.is_empty());
}

/// A table outside the plan that changes size during the purge (a backend's trigger writing a
/// log, say) rolls the purge back, named, with nothing written.
#[tokio::test]
async fn a_table_outside_the_plan_that_changes_size_rolls_the_purge_back() {
    let env = env().await;
    let (org, _, _) = small(&env).await;
    sqlx::raw_sql(
        "create table deletion_log (id bigint generated always as identity primary key, note text); \
         create function log_deletion() returns trigger language plpgsql as \
           $$ begin insert into deletion_log (note) values (old.name); return old; end $$; \
         create trigger tenants_logged after delete on tenants \
           for each row execute function log_deletion();",
    )
    .execute(env.pool())
    .await
    .unwrap();
    let before = counts(env.pool()).await;
    let refused = env.purge_org(org).await.unwrap_err();
    assert!(
        matches!(&refused, PurgeError::CountChanged { table, expected: 0, found: 1 }
            if table == "deletion_log"),
        "{refused:?}"
    );
    assert_eq!(counts(env.pool()).await, before, "rolled back");
}

/// The purge reads its tables from the catalog: a database without the harness's run tables (a
/// backend's own) is purged all the same.
#[tokio::test]
async fn a_database_without_the_run_tables_is_purged_all_the_same() {
    let env = env().await;
    let (org, _, _) = small(&env).await;
    sqlx::raw_sql("drop table harness_run_rows; drop table harness_runs;")
        .execute(env.pool())
        .await
        .unwrap();
    let report = env.purge_org(org).await.unwrap();
    assert_eq!(report.plan.scope, Scope::Organization);
    assert_eq!(report.plan.rows.get("organizations"), Some(&1));
    assert!(
        purge::leftovers(env.pool(), &report.keys)
            .await
            .unwrap()
            .is_empty()
    );
}
