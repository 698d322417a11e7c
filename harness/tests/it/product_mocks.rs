//! Product mocks served away from the test: a [`ProductHost`] with one mock per namespace, driven
//! through [`ProductMock::remote`] with the same methods as a mock held in the test; and, where a
//! Docker engine answers, a test whose mocks live in the product-mock container.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use billing_harness::TestEnv;
use billing_harness::env::ProductsChoice;
use billing_harness::products::api::{Entity, Write};
use billing_harness::products::{Fault, Outage, ProductHost, ProductMock, SyncClient};
use chrono::NaiveDate;

/// A host on a runtime of its own thread (remote calls block, so the test's thread must not be
/// the one serving them); its URL, and the sender that stops it.
fn host() -> (String, mpsc::Sender<()>) {
    let (url_tx, url_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let host = ProductHost::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .unwrap();
            url_tx.send(host.url().to_owned()).unwrap();
            let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
        });
    });
    (url_rx.recv().unwrap(), stop_tx)
}

fn tenant_write(id: i64) -> Write {
    Write {
        entity: Entity::Tenant,
        delete: false,
        path_id: id,
        body: Some(
            serde_json::json!({"id": id, "organization_id": 1, "name": "t", "slug": "t",
                                      "spec": {}, "status": "active"}),
        ),
    }
}

#[test]
fn a_remote_mock_does_what_a_mock_in_process_does_through_the_control_api() {
    let (url, _stop) = host();
    let a = ProductMock::remote("analytics", format!("{url}/ns/a"));
    let b = ProductMock::remote("analytics", format!("{url}/ns/b"));
    let client = SyncClient::new(Duration::from_millis(500));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-24T03:00:00Z")
        .unwrap()
        .to_utc();
    let send = |id: i64, key: &str| {
        runtime.block_on(client.send(a.remote_url().unwrap(), &tenant_write(id), key, at))
    };

    a.set_hold(Duration::from_millis(700));
    a.fail_next(Fault::Status503, 1);
    assert_eq!(send(1, "k1").unwrap_err().status(), Some(503));
    assert_eq!(send(1, "k1"), Ok(200));
    assert_eq!(send(1, "k1"), Ok(200), "a replay");
    a.fail_next(Fault::Timeout, 1);
    assert!(matches!(
        send(2, "k2"),
        Err(billing_harness::products::DeliveryError::Timeout(_))
    ));
    let journal = a.journal();
    assert_eq!(journal.len(), 4);
    assert_eq!(journal[0].fault, Some(Fault::Status503));
    assert_eq!(journal[0].path, "/v1/tenants/1", "without the namespace");
    assert!(journal[2].replay && !journal[2].applied);
    assert_eq!((a.requests(), a.faults_applied()), (4, 2));
    assert!(a.applied_twice().is_empty());

    a.reject_tenant(3, 422);
    assert_eq!(send(3, "k3").unwrap_err().status(), Some(422));
    a.accept_tenant(3);
    assert_eq!(send(3, "k4"), Ok(200));

    assert_eq!(a.drift(1).as_deref(), Some("tenant 1: name -> t (drifted)"));
    assert_eq!(a.drift(99), None);
    assert_eq!(a.tenant(1).unwrap().tenant.name, "t (drifted)");
    assert!(a.tenant(99).is_none());
    a.edit(|state| state.tenants.retain(|t| t.id != 3));
    let ids: Vec<i64> = a.read_state().tenants.iter().map(|t| t.id).collect();
    assert_eq!(ids, [1]);

    assert!(!a.is_strict());
    a.set_strict(true);
    assert!(a.is_strict());
    let no_key = runtime.block_on(async {
        reqwest::Client::new()
            .delete(format!("{url}/ns/a/v1/tenants/1"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(no_key, 400);
    assert_eq!(a.violations().len(), 1, "{:?}", a.violations());

    a.fault_rate(1.0, 7);
    let _ = send(4, "k5");
    assert_eq!(
        a.faults_applied(),
        3,
        "a rate of 1 puts a fault on every write"
    );
    a.clear_faults();
    assert_eq!(send(5, "k6"), Ok(200), "cleared: nothing drawn any more");
    let hour = chrono::TimeDelta::hours(1);
    a.outage(Outage::new(at - hour, at + hour, Fault::Status503).unwrap());
    assert_eq!(send(6, "k7").unwrap_err().status(), Some(503), "down");
    let last = a.journal().pop().unwrap();
    assert_eq!(
        (last.sent_at, last.fault, last.applied),
        (Some(at), Some(Fault::Status503), false)
    );
    assert_eq!(b.requests(), 0, "namespaces do not share a mock");
    assert!(b.read_state().tenants.is_empty());
}

#[test]
fn a_remote_mock_whose_host_is_gone_panics_naming_it() {
    let mock = ProductMock::remote("analytics", "http://127.0.0.1:9/ns/x");
    let panic = std::panic::catch_unwind(|| mock.requests()).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.starts_with(
            "the product mock at http://127.0.0.1:9/ns/x failed a control call (Requests): the mock's host could not be reached"
        ),
        "{message}"
    );
}

/// Whether this test can use the product-mock container: an engine and an image. Without them it
/// says so in one line and is skipped, except in CI's container pass (`CI=true` with
/// `DOCKER_HOST`: `.ci/run` gives its own engine), where it fails.
fn container_available() -> bool {
    let engine = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    let image = std::env::var("HARNESS_PRODUCT_MOCK_IMAGE").is_ok_and(|v| !v.trim().is_empty());
    let why = match (engine, image) {
        (true, true) => return true,
        (false, _) => "no Docker engine answers (DOCKER_HOST)",
        (true, false) => "HARNESS_PRODUCT_MOCK_IMAGE is not set (cargo xtask images prints it)",
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true") || std::env::var("DOCKER_HOST").is_err(),
        "product mocks in a container cannot run in CI: {why}"
    );
    println!("skipped: product mocks in a container: {why}");
    false
}

#[tokio::test]
async fn products_in_a_container_sync_with_faults_and_drift_and_converge() {
    if !container_available() {
        return;
    }
    let env = TestEnv::builder()
        .today(NaiveDate::from_ymd_opt(2026, 11, 24).unwrap())
        .seed(5)
        .products(ProductsChoice::Container)
        .build()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mock = env.product("analytics").await.unwrap();
    println!("product mock ready after {:?}", started.elapsed());
    let url = mock.remote_url().expect("a remote mock").to_owned();
    let sync_url: String =
        sqlx::query_scalar("select sync_url from products where key = 'analytics'")
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!(sync_url, url);
    assert!(url.contains("/ns/"), "{url}");
    mock.set_strict(true);
    mock.fail_next(Fault::Status503, 1);
    mock.fail_next(Fault::ReplyLost, 1);
    mock.fail_next(Fault::Timeout, 1);
    let t = env.build().tenant().plan("pro").create().await.unwrap();
    let converging = std::time::Instant::now();
    env.assert_converged().await;
    println!(
        "converged through the container in {:?}",
        converging.elapsed()
    );
    assert_eq!(mock.faults_applied(), 3);
    assert!(mock.applied_twice().is_empty());
    let what = mock.drift(t.id().0).unwrap();
    assert!(what.contains("plan pro -> drifted"), "{what}");
    let converged = env.assert_converged().await;
    assert_eq!(converged.repaired.len(), 1, "the drift was repaired");
    assert_eq!(
        mock.tenant(t.id().0).unwrap().subscription.unwrap().plan,
        "pro"
    );
    let journal = mock.journal();
    assert_eq!(journal[0].fault, Some(Fault::Status503));
    assert!(
        journal
            .iter()
            .any(|r| r.method == "GET" && r.route == "/v1/state"),
        "the reconciler read the container's mock back"
    );
    // The journal came from the container: its host answers for the namespace over HTTP.
    let host = url.split("/ns/").next().unwrap();
    let other = ProductMock::remote(
        "analytics",
        format!("{host}/ns/{}", url.rsplit('/').next().unwrap()),
    );
    assert_eq!(other.journal(), journal);
}
