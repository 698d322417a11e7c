//! The account operations at their edges: a card, a user and a tenant change their own row
//! only, a deleted user or tenant is unknown to them, and a card registration waits for its own
//! organization alone.

use std::time::Duration;

use billing_harness::model::{OrgId, TenantId, UserId};
use billing_harness::payments::TestCard;
use billing_harness::prelude::*;
use serde_json::json;

use crate::rules::{env_with_catalog, midnight, refused};
use crate::support::member;

const WAIT: Duration = Duration::from_secs(10);

/// A database with the catalog, an organization and two of its members, jo and kim.
async fn two_members() -> (TestEnv, billing_harness::builders::Org, UserId, UserId) {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let org = env.build().org().create().await.unwrap();
    let now = env.clock().now();
    let p = env.platform();
    let jo = p
        .create_user(org.id, &member("jo@acme.test"), now)
        .await
        .unwrap();
    let kim = p
        .create_user(org.id, &member("kim@acme.test"), now)
        .await
        .unwrap();
    (env, org, jo, kim)
}

/// A user's name, locale and whether they left.
async fn user(env: &TestEnv, id: UserId) -> (String, String, bool) {
    sqlx::query_as("select name, locale, deleted_at is not null from users where id = $1")
        .bind(id)
        .fetch_one(env.pool())
        .await
        .unwrap()
}

/// A tenant's status and spec.
async fn tenant(env: &TestEnv, id: TenantId) -> (String, Option<serde_json::Value>) {
    sqlx::query_as("select status, spec from tenants where id = $1")
        .bind(id)
        .fetch_one(env.pool())
        .await
        .unwrap()
}

/// A tenant's subscriptions, oldest first: status, cancel day and reason.
async fn subscriptions(env: &TestEnv, id: TenantId) -> Vec<String> {
    let rows: Vec<(String, Option<chrono::NaiveDate>, Option<String>)> = sqlx::query_as(
        "select status, cancelled_on, cancel_reason from subscriptions where tenant_id = $1 \
         order by id",
    )
    .bind(id)
    .fetch_all(env.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(status, on, reason)| {
            let on = on.map_or("-".to_owned(), |d| d.to_string());
            format!("{status} {on} {}", reason.as_deref().unwrap_or("-"))
        })
        .collect()
}

/// An organization's cards in registration order: status and billing key.
async fn cards(env: &TestEnv, org: OrgId) -> Vec<(String, String)> {
    sqlx::query_as("select status, billing_key from cards where organization_id = $1 order by id")
        .bind(org)
        .fetch_all(env.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn updating_a_user_changes_that_user_only_and_one_who_left_is_unknown() {
    let (env, _, jo, kim) = two_members().await;
    let p = env.platform();
    let now = env.clock().now();
    let kim_before = user(&env, kim).await;

    p.update_user(jo, "Jo Park", "en-US", now).await.unwrap();
    assert_eq!(
        user(&env, jo).await,
        ("Jo Park".to_owned(), "en-US".to_owned(), false),
        "rule: an update sets the user's name and locale as given"
    );
    assert_eq!(
        user(&env, kim).await,
        kim_before,
        "rule: an update changes its own user only"
    );

    p.leave_org(jo, now).await.unwrap();
    let rule = "rule: a user who left cannot be updated";
    assert_eq!(
        refused(p.update_user(jo, "Jo", "ko-KR", now).await, rule),
        "unknown_user",
        "{rule}"
    );
    assert_eq!(user(&env, jo).await.0, "Jo Park", "{rule}: nothing written");
}

#[tokio::test]
async fn a_user_leaves_once_and_alone() {
    let (env, org, jo, kim) = two_members().await;
    let p = env.platform();
    let now = env.clock().now();

    p.leave_org(jo, now).await.unwrap();
    assert!(user(&env, jo).await.2, "rule: the user who leaves has left");
    assert!(
        !user(&env, kim).await.2 && !user(&env, org.owner).await.2,
        "rule: the others of the organization stay"
    );
    let rule = "rule: a user who left cannot leave again";
    assert_eq!(
        refused(p.leave_org(jo, now).await, rule),
        "unknown_user",
        "{rule}"
    );
}

#[tokio::test]
async fn a_spec_is_set_on_its_own_tenant_and_a_deleted_tenant_is_unknown() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let a = env.build().tenant().plan("pro").create().await.unwrap();
    let b = env.build().tenant().plan("pro").create().await.unwrap();
    let p = env.platform();
    let now = env.clock().now();
    let b_before = tenant(&env, b.id()).await;

    p.set_tenant_spec(a.id(), &json!({"seats": 20}), now)
        .await
        .unwrap();
    assert_eq!(
        tenant(&env, a.id()).await.1,
        Some(json!({"seats": 20})),
        "rule: a spec is set on its tenant"
    );
    assert_eq!(
        tenant(&env, b.id()).await,
        b_before,
        "rule: a spec is set on its own tenant only"
    );

    p.delete_tenant(b.id(), now).await.unwrap();
    let rule = "rule: a deleted tenant takes no spec";
    assert_eq!(
        refused(
            p.set_tenant_spec(b.id(), &json!({"seats": 99}), now).await,
            rule
        ),
        "unknown_tenant",
        "{rule}"
    );
    assert_eq!(
        tenant(&env, b.id()).await.1,
        b_before.1,
        "{rule}: nothing written"
    );
}

#[tokio::test]
async fn deleting_a_tenant_ends_its_own_live_subscription_only_and_a_second_delete_is_unknown() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let a = env.build().tenant().plan("pro").create().await.unwrap();
    // b has a cancelled subscription before its live one.
    let b = env.build().tenant().plan("pro").create().await.unwrap();
    b.cancel()
        .on(env.day(chrono::NaiveDate::from_ymd_opt(2026, 10, 3).unwrap()))
        .await
        .unwrap();
    let p = env.platform();
    p.subscribe(b.id(), "business", midnight(2026, 10, 5))
        .await
        .unwrap();
    env.clock()
        .advance_to(midnight(2026, 10, 10))
        .await
        .unwrap();
    let now = env.clock().now();

    p.delete_tenant(b.id(), now).await.unwrap();
    assert_eq!(
        subscriptions(&env, b.id()).await,
        [
            "cancelled 2026-10-03 requested",
            "cancelled 2026-10-10 requested"
        ],
        "rule: deleting a tenant cancels its live subscription that day"
    );
    assert_eq!(tenant(&env, b.id()).await.0, "deleted");
    assert_eq!(
        (
            tenant(&env, a.id()).await.0,
            subscriptions(&env, a.id()).await
        ),
        ("active".to_owned(), vec!["active - -".to_owned()]),
        "rule: deleting a tenant touches no other tenant or subscription"
    );
    let rule = "rule: a deleted tenant cannot be deleted again";
    assert_eq!(
        refused(p.delete_tenant(b.id(), now).await, rule),
        "unknown_tenant",
        "{rule}"
    );
}

#[tokio::test]
async fn a_new_card_replaces_its_organizations_active_card_only() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let other = env.build().org().card(TestCard::Ok).create().await.unwrap();
    let org = env.build().org().card(TestCard::Ok).create().await.unwrap();
    // The organization removed its first card in the card service.
    sqlx::query("update cards set status = 'removed', removed_at = $2 where organization_id = $1")
        .bind(org.id)
        .bind(env.clock().now())
        .execute(env.pool())
        .await
        .unwrap();
    let p = env.platform();
    let now = env.clock().now();
    p.register_card(org.id, TestCard::Ok, now).await.unwrap();
    p.register_card(org.id, TestCard::Declined, now)
        .await
        .unwrap();

    let mine = cards(&env, org.id).await;
    let statuses: Vec<&str> = mine.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["removed", "replaced", "active"],
        "rule: a new card replaces the active one; a removed card stays removed"
    );
    for (n, (_, key)) in mine.iter().enumerate() {
        assert!(
            key.ends_with(&n.to_string()),
            "rule: a card's billing key is numbered among its organization's cards: card {n} is {key}"
        );
    }
    let theirs = cards(&env, other.id).await;
    assert_eq!(
        theirs.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["active"],
        "rule: another organization's card is untouched"
    );
}

#[tokio::test]
async fn registering_a_card_does_not_wait_for_another_organization() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let a = env.build().org().create().await.unwrap();
    let b = env.build().org().create().await.unwrap();
    // A registration for b in progress holds b's row until it commits.
    let mut held = env.pool().begin().await.unwrap();
    sqlx::query("select id from organizations where id = $1 for update")
        .bind(b.id)
        .execute(&mut *held)
        .await
        .unwrap();
    let registered = tokio::time::timeout(
        WAIT,
        env.platform()
            .register_card(a.id, TestCard::Ok, env.clock().now()),
    )
    .await;
    held.rollback().await.unwrap();
    assert!(
        registered.is_ok_and(|r| r.is_ok()),
        "rule: a card registration locks its own organization only"
    );
}

#[tokio::test]
async fn a_registered_card_expires_on_january_1st_three_years_on() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let org = env.build().org().create().await.unwrap();
    env.platform()
        .register_card(
            org.id,
            billing_harness::payments::TestCard::Ok,
            env.clock().now(),
        )
        .await
        .unwrap();
    let expires: Vec<chrono::NaiveDate> = sqlx::query_scalar(
        "select expires_on from cards where organization_id = $1 and status = 'active'",
    )
    .bind(org.id)
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(
        expires,
        [chrono::NaiveDate::from_ymd_opt(2029, 1, 1).unwrap()]
    );
}
