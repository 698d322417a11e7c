//! Product sync through the service's outbox against the harness's product mocks, served over
//! HTTP: order and idempotency, retries with backoff, timeouts, dead letters, and the
//! reconciler's repairs.

use std::sync::Arc;
use std::time::Duration;

use billing_harness::payments::TestCard;
use billing_harness::products::{Fault, ProductMock, ProductServer};
use chrono::{DateTime, TimeDelta, Utc};
use example_billing_service::BillingService;
use example_billing_service::accounts::NewUser;
use example_billing_service::service::{CustomerId, OrganizationId, SubscriptionId};
use example_billing_service::sync::{DeliveryPolicy, DriftKind, Entity};

use crate::support::{World, seoul};

/// A world with a product mock served for `analytics`, the service pointed at it.
pub(crate) struct Synced {
    pub(crate) world: World,
    pub(crate) service: BillingService,
    pub(crate) server: ProductServer,
}

impl Synced {
    /// A world at `start` whose service delivers under `policy` to a lenient, fault-free mock.
    pub(crate) async fn start(start: DateTime<Utc>, policy: DeliveryPolicy) -> Synced {
        let world = World::start(start).await;
        let service = world.service.clone().with_delivery_policy(policy);
        let mock = Arc::new(ProductMock::new("analytics"));
        mock.set_hold(policy.timeout + Duration::from_millis(250));
        let server = ProductServer::start(mock).await.expect("the mock serves");
        service
            .set_product_endpoint("analytics", server.url())
            .await
            .expect("an endpoint");
        Synced {
            world,
            service,
            server,
        }
    }

    pub(crate) fn mock(&self) -> &ProductMock {
        self.server.mock()
    }

    /// An organization with an owner (`owner@<name>.test`) and these members.
    pub(crate) async fn org(&self, name: &str, members: &[&str]) -> OrganizationId {
        let org = self
            .service
            .create_organization(name)
            .await
            .expect("an organization");
        let owner = format!("owner@{name}.test");
        for (email, role) in
            std::iter::once((owner.as_str(), "owner")).chain(members.iter().map(|m| (*m, "member")))
        {
            let user = NewUser {
                email: email.to_owned(),
                name: email.to_owned(),
                role: role.to_owned(),
                locale: "ko-KR".to_owned(),
            };
            self.service.add_user(org, &user).await.expect("a user");
        }
        org
    }

    /// A tenant of `org` on `product` with a card that pays, subscribed to `pro` now.
    pub(crate) async fn tenant(
        &self,
        org: OrganizationId,
        product: &str,
    ) -> (CustomerId, SubscriptionId) {
        let mut new = self.world.new_customer(Some(TestCard::Ok));
        new.product = Some(product.to_owned());
        new.organization = Some(org);
        let customer = self
            .service
            .create_customer(&new)
            .await
            .expect("a customer");
        let subscription = self
            .service
            .subscribe(customer.id, "pro")
            .await
            .expect("subscribed");
        (customer.id, subscription.id)
    }

    /// Delivers what is due, moving the clock through each backoff, until nothing live is left
    /// within a day; the waits it moved through.
    pub(crate) async fn deliver_to_idle(&self) -> Vec<TimeDelta> {
        let mut waits = Vec::new();
        loop {
            let now = self.service.now();
            let next = self
                .service
                .next_delivery(now, now + TimeDelta::days(1))
                .await
                .expect("the next delivery");
            let Some(at) = next else { return waits };
            if at > now {
                waits.push(at - now);
                self.world.at(at).await;
            }
            self.service.deliver_due().await.expect("a delivery run");
        }
    }
}

#[tokio::test]
async fn a_tenant_reaches_its_product_after_its_users_and_a_duplicate_is_applied_once() {
    let s = Synced::start(seoul(2026, 10, 1), DeliveryPolicy::default()).await;
    s.mock().set_strict(true);
    s.mock().fail_next(Fault::Duplicate, 1);
    let org = s.org("acme", &["jo@acme.test"]).await;
    let (customer, _) = s.tenant(org, "analytics").await;
    // Crm has no endpoint: a tenant of it waits, and holds nothing back.
    s.tenant(org, "crm").await;
    let done = s.service.deliver_due().await.expect("a delivery run");
    assert_eq!((done.delivered, done.failed), (4, 0), "{done:?}");
    let state = s.mock().read_state();
    let users: Vec<(&str, &str)> = state
        .users
        .iter()
        .map(|u| (u.email.as_str(), u.role.as_str()))
        .collect();
    assert_eq!(
        users,
        [("owner@acme.test", "owner"), ("jo@acme.test", "member")]
    );
    assert_eq!(state.tenants.len(), 1);
    assert_eq!(state.tenants[0].id, customer.0);
    let sub = &state.subscriptions[0];
    assert_eq!((sub.plan.as_str(), sub.status.as_str()), ("pro", "active"));
    let journal = s.mock().journal();
    let routes: Vec<&str> = journal.iter().map(|r| r.route.as_str()).collect();
    assert_eq!(
        routes,
        [
            "/v1/users/{user}",
            "/v1/users/{user}",
            "/v1/users/{user}",
            "/v1/tenants/{tenant}",
            "/v1/tenants/{tenant}/subscription",
        ],
        "the duplicate arrives twice, the tenant after its users, its subscription last"
    );
    assert!(journal[1].replay && !journal[1].applied, "{journal:?}");
    assert!(s.mock().applied_twice().is_empty());
    assert!(
        s.mock().violations().is_empty(),
        "{:?}",
        s.mock().violations()
    );
}

#[tokio::test]
async fn a_failing_write_backs_off_is_dead_lettered_at_the_sixth_failure_and_holds_back_its_tenant()
{
    let s = Synced::start(seoul(2026, 10, 1), DeliveryPolicy::default()).await;
    s.mock().fail_next(Fault::Status503, 6);
    let org = s.org("acme", &[]).await;
    s.tenant(org, "analytics").await;
    let waits: Vec<i64> = s
        .deliver_to_idle()
        .await
        .iter()
        .map(|w| w.num_seconds())
        .collect();
    assert_eq!(waits, [2, 4, 8, 16, 32]);
    let dead = s.service.dead_letters().await.expect("the dead letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].entity.as_str(), dead[0].attempts), ("user", 6));
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("the product answered 503 Service Unavailable")
    );
    assert!(
        s.mock().read_state().tenants.is_empty(),
        "the tenant waits behind its dead user"
    );
    // Re-queued, the key goes on in order.
    assert_eq!(s.service.requeue_dead_letters().await.expect("requeued"), 1);
    assert!(s.deliver_to_idle().await.is_empty());
    let state = s.mock().read_state();
    assert_eq!(
        (
            state.users.len(),
            state.tenants.len(),
            state.subscriptions.len()
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_write_held_past_the_timeout_and_one_whose_reply_is_lost_are_sent_again_and_applied_once()
{
    let policy = DeliveryPolicy {
        timeout: Duration::from_millis(300),
        ..DeliveryPolicy::default()
    };
    let s = Synced::start(seoul(2026, 10, 1), policy).await;
    s.mock().fail_next(Fault::Timeout, 1);
    s.mock().fail_next(Fault::ReplyLost, 1);
    let org = s.org("acme", &[]).await;
    s.tenant(org, "analytics").await;
    let first = s.service.deliver_due().await.expect("a delivery run");
    assert_eq!((first.delivered, first.failed), (0, 1), "{first:?}");
    let waits = s.deliver_to_idle().await;
    assert_eq!(waits, [TimeDelta::seconds(2), TimeDelta::seconds(4)]);
    let journal = s.mock().journal();
    let key = |i: usize| journal[i].idempotency_key.clone();
    // held (timeout), lost reply (applied), the replay of the same key, then the rest.
    assert_eq!(key(0), key(1));
    assert_eq!(key(1), key(2));
    assert!(journal[1].applied && journal[2].replay, "{journal:?}");
    assert!(s.mock().applied_twice().is_empty());
    assert_eq!(s.mock().read_state().subscriptions.len(), 1);
}

#[tokio::test]
async fn the_reconciler_finds_drift_and_repairs_it_through_the_outbox() {
    let s = Synced::start(seoul(2026, 10, 1), DeliveryPolicy::default()).await;
    let org = s.org("acme", &[]).await;
    let (customer, _) = s.tenant(org, "analytics").await;
    s.deliver_to_idle().await;
    assert!(s.mock().drift(customer.0).is_some());
    s.mock().edit(|state| state.users.clear());
    let found = s.service.reconcile().await.expect("a reconciliation");
    let drift: Vec<(Entity, DriftKind)> = found.drift.iter().map(|d| (d.entity, d.kind)).collect();
    assert_eq!(
        drift,
        [
            (Entity::User, DriftKind::Missing),
            (Entity::Subscription, DriftKind::Differs)
        ]
    );
    // The repairs are queued: until they are delivered the product is busy.
    let busy = s.service.reconcile().await.expect("a reconciliation");
    assert_eq!(busy.busy, ["analytics"]);
    s.deliver_to_idle().await;
    let again = s.service.reconcile().await.expect("a reconciliation");
    assert!(again.drift.is_empty() && again.busy.is_empty(), "{again:?}");
    assert_eq!(s.mock().read_state().subscriptions[0].plan, "pro");
}
