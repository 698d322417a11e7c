//! The JSON API, as an axum [`Router`] over a [`BillingService`]:
//!
//! | route | does |
//! |---|---|
//! | `POST /customers` | create a customer: `{"name", "email", "billing_key"?}` |
//! | `PUT /customers/{id}/card` | replace the card: `{"billing_key"}` (`null` removes it) |
//! | `POST /subscriptions` | subscribe from today: `{"customer_id", "plan"}` |
//! | `POST /subscriptions/{id}/plan` | change plan from today: `{"plan"}` |
//! | `POST /subscriptions/{id}/cancel` | cancel from today |
//! | `POST /subscriptions/{id}/usage` | record usage: `{"metric", "quantity", "occurred_at"?}` |
//! | `POST /months/{YYYY-MM}/close` | close a month, returning its invoices |
//! | `POST /months/{YYYY-MM}/charge` | charge its finalized invoices, returning its payments |
//! | `GET /customers/{id}/invoices` | a customer's invoices with their lines |
//!
//! A refusal answers `404`, `409` or `422` with `{"error": CODE, "message": TEXT}`, the code
//! being [`Error::code`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::calendar::Month;
use crate::service::{CustomerId, NewCustomer, NewUsage, SubscriptionId};
use crate::{BillingService, Error};

/// The service's routes.
pub fn router(service: BillingService) -> Router {
    Router::new()
        .route("/customers", post(create_customer))
        .route("/customers/{id}/invoices", get(invoices))
        .route("/customers/{id}/card", put(set_card))
        .route("/subscriptions", post(subscribe))
        .route("/subscriptions/{id}/plan", post(change_plan))
        .route("/subscriptions/{id}/cancel", post(cancel))
        .route("/subscriptions/{id}/usage", post(record_usage))
        .route("/months/{month}/close", post(close_month))
        .route("/months/{month}/charge", post(charge))
        .with_state(service)
}

type Reply = Result<Response, Error>;

async fn create_customer(State(s): State<BillingService>, Json(new): Json<NewCustomer>) -> Reply {
    let customer = s.create_customer(&new).await?;
    Ok((StatusCode::CREATED, Json(customer)).into_response())
}

#[derive(Deserialize)]
struct SetCard {
    billing_key: Option<String>,
}

async fn set_card(
    State(s): State<BillingService>,
    Path(id): Path<CustomerId>,
    Json(body): Json<SetCard>,
) -> Reply {
    Ok(Json(s.set_card(id, body.billing_key).await?).into_response())
}

#[derive(Deserialize)]
struct Subscribe {
    customer_id: CustomerId,
    plan: String,
}

async fn subscribe(State(s): State<BillingService>, Json(body): Json<Subscribe>) -> Reply {
    let subscription = s.subscribe(body.customer_id, &body.plan).await?;
    Ok((StatusCode::CREATED, Json(subscription)).into_response())
}

#[derive(Deserialize)]
struct ChangePlan {
    plan: String,
}

async fn change_plan(
    State(s): State<BillingService>,
    Path(id): Path<SubscriptionId>,
    Json(body): Json<ChangePlan>,
) -> Reply {
    Ok(Json(s.change_plan(id, &body.plan).await?).into_response())
}

async fn cancel(State(s): State<BillingService>, Path(id): Path<SubscriptionId>) -> Reply {
    Ok(Json(s.cancel(id).await?).into_response())
}

async fn record_usage(
    State(s): State<BillingService>,
    Path(id): Path<SubscriptionId>,
    Json(usage): Json<NewUsage>,
) -> Reply {
    let event = s.record_usage(id, &usage).await?;
    Ok((StatusCode::CREATED, Json(event)).into_response())
}

async fn close_month(State(s): State<BillingService>, Path(month): Path<String>) -> Reply {
    Ok(Json(s.close_month(month_of(&month)?).await?).into_response())
}

async fn charge(State(s): State<BillingService>, Path(month): Path<String>) -> Reply {
    Ok(Json(s.charge(month_of(&month)?).await?).into_response())
}

async fn invoices(State(s): State<BillingService>, Path(id): Path<CustomerId>) -> Reply {
    Ok(Json(s.invoices(id).await?).into_response())
}

fn month_of(text: &str) -> Result<Month, Error> {
    text.parse().map_err(Error::Invalid)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::NoCustomer(_)
            | Error::NoSubscription(_)
            | Error::NoPlan(_)
            | Error::NoOrganization(_) => StatusCode::NOT_FOUND,
            Error::Invalid(_) | Error::InvalidTerms(_) | Error::UnknownMetric { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Error::Database(_) | Error::ProductUnreadable { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::CONFLICT,
        };
        let message = match &self {
            // The cause stays in the log, not in the reply.
            Error::Database(e) => {
                eprintln!("billing service: the database failed: {e}");
                self.to_string()
            }
            _ => self.to_string(),
        };
        let body = serde_json::json!({ "error": self.code(), "message": message });
        (status, Json(body)).into_response()
    }
}
