//! Purges: how far each reaches (a member leaves, the last owner takes the tenants along, an
//! organization goes whole), what it deletes, and the deletions its products are told of, down
//! to what the product holds once they are delivered.

use std::collections::BTreeMap;

use example_billing_service::Error;
use example_billing_service::purge::{PurgeScope, PurgeTarget, Purged};
use example_billing_service::service::CustomerId;
use example_billing_service::sync::DeliveryPolicy;

use crate::support::{date, seoul};
use crate::sync::Synced;

/// acme (owner@acme.test and kim@acme.test) with an analytics tenant on pro since October 1st,
/// invoiced for October and charged on November 5th, every write delivered; its tenant.
async fn acme_after_a_paid_month() -> (Synced, CustomerId) {
    let s = Synced::start(seoul(2026, 10, 1), DeliveryPolicy::default()).await;
    let org = s.org("acme", &["kim@acme.test"]).await;
    let (customer, _) = s.tenant(org, "analytics").await;
    s.world
        .live_days(date(2026, 10, 2), date(2026, 11, 10))
        .await;
    s.deliver_to_idle().await;
    (s, customer)
}

/// What a case purges: acme, or a user by address.
enum Target {
    Acme,
    User(&'static str),
}

/// Purges `target` from [`acme_after_a_paid_month`], delivers the notices, and checks the
/// scope, the deletions told per `product entity`, and the users the product still holds.
async fn check(
    target: Target,
    scope: PurgeScope,
    told: &[(&str, usize)],
    users_left: &[&str],
) -> (Synced, CustomerId, Purged) {
    let (s, customer) = acme_after_a_paid_month().await;
    let target = match target {
        Target::Acme => {
            let org = sqlx::query_scalar("select organization_id from customers where id = $1")
                .bind(customer)
                .fetch_one(s.world.pool())
                .await
                .expect("the tenant's organization");
            PurgeTarget::Organization(org)
        }
        Target::User(email) => PurgeTarget::User(email),
    };
    let purged = s.service.purge(target).await.expect("purged");
    assert_eq!(purged.scope, scope);
    let mut by_kind = BTreeMap::new();
    for n in &purged.notices {
        *by_kind
            .entry(format!("{} {}", n.product, n.entity))
            .or_insert(0) += 1;
    }
    let expected: BTreeMap<String, usize> =
        told.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect();
    assert_eq!(by_kind, expected);
    s.deliver_to_idle().await;
    let state = s.mock().read_state();
    let users: Vec<&str> = state.users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(users, users_left);
    let again = s.service.reconcile().await.expect("a reconciliation");
    assert!(again.drift.is_empty(), "{again:?}");
    (s, customer, purged)
}

#[tokio::test]
async fn a_member_only_leaves_and_the_organization_is_billed_as_before() {
    let (s, customer, purged) = check(
        Target::User("Kim@acme.test"),
        PurgeScope::UserLeft,
        &[("analytics user", 1)],
        &["owner@acme.test"],
    )
    .await;
    assert_eq!(purged.rows.get("users"), Some(&1));
    assert!(purged.customers.is_empty());
    assert_eq!(s.service.invoices(customer).await.expect("kept").len(), 1);
    assert_eq!(s.mock().read_state().tenants.len(), 1);
}

#[tokio::test]
async fn the_last_owner_takes_the_tenants_and_their_billing_and_the_member_keeps_the_org() {
    let (s, customer, purged) = check(
        Target::User("owner@acme.test"),
        PurgeScope::OwnerData,
        &[("analytics tenant", 1), ("analytics user", 2)],
        &[],
    )
    .await;
    assert_eq!(purged.customers, [customer]);
    for table in [
        "customers",
        "subscriptions",
        "invoices",
        "payments",
        "users",
    ] {
        assert_eq!(
            purged.rows.get(table),
            Some(&1),
            "{table}: {:?}",
            purged.rows
        );
    }
    assert!(matches!(
        s.service.invoices(customer).await,
        Err(Error::NoCustomer(_))
    ));
    let kim: i64 = sqlx::query_scalar("select count(*) from users where email = 'kim@acme.test'")
        .fetch_one(s.world.pool())
        .await
        .expect("kim");
    assert_eq!(kim, 1, "the organization stays with its member");
    assert!(s.mock().read_state().tenants.is_empty());
}

#[tokio::test]
async fn an_organization_goes_whole_and_a_second_purge_finds_nothing() {
    let (s, _, purged) = check(
        Target::Acme,
        PurgeScope::Organization,
        &[("analytics tenant", 1), ("analytics user", 2)],
        &[],
    )
    .await;
    assert_eq!(purged.rows.get("organizations"), Some(&1));
    assert_eq!(purged.rows.get("users"), Some(&2));
    let again = s
        .service
        .purge(PurgeTarget::User("owner@acme.test"))
        .await
        .expect("a no-op");
    assert_eq!(again.scope, PurgeScope::Nothing);
    assert!(again.rows.is_empty() && again.notices.is_empty());
}
