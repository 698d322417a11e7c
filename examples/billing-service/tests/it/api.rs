//! The HTTP API through the axum router (tower's `oneshot`): a month end to end as a client sees
//! it, and each refusal with its status, its rule's code, and nothing written.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{World, call, seoul, seoul_at};

/// The redactions of every API snapshot: ids and timestamps vary by run; days and amounts stay.
macro_rules! assert_api_snapshot {
    ($name:literal, $value:expr) => {
        insta::assert_yaml_snapshot!($name, $value, {
            ".**.id" => "[id]",
            ".**.customer_id" => "[id]",
            ".**.subscription_id" => "[id]",
            ".**.created_at" => "[timestamp]",
            ".**.recorded_at" => "[timestamp]",
            ".**.closed_at" => "[timestamp]",
        })
    };
}

#[tokio::test]
async fn a_month_through_the_api() {
    let world = World::start(seoul_at(2026, 10, 5, 9, 0)).await;
    let app = world.app();
    let new = world.new_customer(Some(billing_harness::payments::TestCard::Ok));
    let (status, customer) =
        call(&app, "POST", "/customers", Some(json!(new_customer(&new)))).await;
    assert_eq!(status, StatusCode::CREATED, "{customer}");
    let (status, subscription) = call(
        &app,
        "POST",
        "/subscriptions",
        Some(json!({ "customer_id": customer["id"], "plan": "pro" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{subscription}");
    let id = &subscription["id"];

    world.at(seoul_at(2026, 10, 18, 14, 0)).await;
    let (status, usage) = call(
        &app,
        "POST",
        &format!("/subscriptions/{id}/usage"),
        Some(json!({ "metric": "api_calls", "quantity": 120_000 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{usage}");
    assert_eq!(usage["day"], "2026-10-18");

    world.at(seoul(2026, 10, 25)).await;
    let (status, changed) = call(
        &app,
        "POST",
        &format!("/subscriptions/{id}/plan"),
        Some(json!({ "plan": "business" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");

    world.at(seoul(2026, 11, 1)).await;
    let (status, closed) = call(&app, "POST", "/months/2026-10/close", None).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let (status, invoices) = call(
        &app,
        "GET",
        &format!("/customers/{}/invoices", customer["id"]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        invoices, closed,
        "the close returns what the customer then reads"
    );
    assert_api_snapshot!(
        "api_october",
        json!({ "customer": customer, "subscription": changed, "invoices": invoices })
    );
}

#[tokio::test]
async fn a_second_plan_change_on_one_day_is_refused() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let app = world.app();
    let (_, id) = world.subscriber("pro").await;
    world.at(seoul_at(2026, 10, 20, 9, 0)).await;
    let change = |plan: &str| json!({ "plan": plan });
    let path = format!("/subscriptions/{id}/plan");
    let (status, body) = call(&app, "POST", &path, Some(change("business"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    world.at(seoul_at(2026, 10, 20, 23, 59)).await;
    let (status, body) = call(&app, "POST", &path, Some(change("pro"))).await;
    assert_refused(status, &body, StatusCode::CONFLICT, "plan_change_limit");
    let periods = world.service.subscription(id).await.unwrap().periods;
    let plans: Vec<&str> = periods.iter().map(|p| p.plan.as_str()).collect();
    assert_eq!(plans, ["pro", "business"], "nothing written by the refusal");
    // The next day in Seoul the change is allowed again.
    world.at(seoul(2026, 10, 21)).await;
    let (status, body) = call(&app, "POST", &path, Some(change("pro"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn usage_for_a_closed_month_is_refused() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let app = world.app();
    let (customer, id) = world.subscriber("pro").await;
    world.at(seoul(2026, 11, 1)).await;
    let (status, _) = call(&app, "POST", "/months/2026-10/close", None).await;
    assert_eq!(status, StatusCode::OK);
    // Late usage for October 31 (15:00 UTC on the 31st is 00:00 on November 1 in Seoul, so
    // one second before it is still October).
    let late = seoul(2026, 11, 1) - chrono::TimeDelta::seconds(1);
    let (status, body) = call(
        &app,
        "POST",
        &format!("/subscriptions/{id}/usage"),
        Some(json!({ "metric": "api_calls", "quantity": 5, "occurred_at": late })),
    )
    .await;
    assert_refused(status, &body, StatusCode::CONFLICT, "period_closed");
    let (status, body) = call(
        &app,
        "POST",
        &format!("/subscriptions/{id}/usage"),
        Some(json!({ "metric": "api_calls", "quantity": 5, "occurred_at": seoul(2026, 11, 1) })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "November is open: {body}");
    let (status, invoices) = call(
        &app,
        "GET",
        &format!("/customers/{}/invoices", customer.id),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        invoices[0]["total"], "108900",
        "October as closed: {invoices}"
    );
}

#[tokio::test]
async fn a_month_closes_only_after_it_ends_in_seoul() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let app = world.app();
    world.subscriber("pro").await;
    world
        .at(seoul(2026, 11, 1) - chrono::TimeDelta::seconds(1))
        .await;
    let (status, body) = call(&app, "POST", "/months/2026-10/close", None).await;
    assert_refused(status, &body, StatusCode::CONFLICT, "month_not_over");
    world.at(seoul(2026, 11, 1)).await;
    let (status, first) = call(&app, "POST", "/months/2026-10/close", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = call(&app, "POST", "/months/2026-10/close", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (first.as_array().map(Vec::len), &again),
        (Some(1), &first),
        "closing twice writes once"
    );
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let app = world.app();
    let customer = world.customer(None).await;
    let cases: [(&str, &str, Option<Value>, StatusCode, &str); 5] = [
        (
            "POST",
            "/subscriptions",
            Some(json!({ "customer_id": customer.id, "plan": "gold" })),
            StatusCode::NOT_FOUND,
            "no_plan",
        ),
        (
            "POST",
            "/subscriptions",
            Some(json!({ "customer_id": 999_999, "plan": "pro" })),
            StatusCode::NOT_FOUND,
            "no_customer",
        ),
        (
            "POST",
            "/months/2026-13/close",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "GET",
            "/customers/999999/invoices",
            None,
            StatusCode::NOT_FOUND,
            "no_customer",
        ),
        (
            "POST",
            "/subscriptions/999999/cancel",
            None,
            StatusCode::NOT_FOUND,
            "no_subscription",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, reply) = call(&app, method, path, body).await;
        assert_refused(got, &reply, status, code);
    }
    let (status, body) = call(
        &app,
        "POST",
        "/customers",
        Some(json!(new_customer(&world.new_customer(None)))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(
        &app,
        "POST",
        "/customers",
        Some(json!({ "name": "다른 사람", "email": body["email"] })),
    )
    .await;
    assert_refused(status, &body, StatusCode::CONFLICT, "email_taken");
}

/// A new customer as the API takes it.
fn new_customer(new: &example_billing_service::service::NewCustomer) -> Value {
    json!({ "name": new.name, "email": new.email, "billing_key": new.billing_key })
}

#[track_caller]
fn assert_refused(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(
        (status, body["error"].as_str()),
        (want, Some(code)),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a refusal says why: {body}"
    );
}
