//! Playing a story on the platform: a fresh database, each step through `env.platform()` at the
//! clock's instant after `advance_to` (which runs the close, charge and retry jobs on the way),
//! then everything read back into a [`Record`].

use billing_harness::TestEnv;
use billing_harness::model::{Month, TenantId};
use billing_harness::platform::DomainError;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::model::{Action, Story};
use super::record::{HistoryRec, InvoiceRec, PaymentRec, PeriodRec, Record, SubscriptionRec};

/// Plays `story` on a fresh database and reads back what the platform wrote.
///
/// # Errors
/// No database, or one that failed: described for the failure message.
pub(crate) async fn play(story: &Story) -> Result<Record, String> {
    let env = TestEnv::builder()
        .start_at(story.start_at())
        .seed(1)
        .build()
        .await
        .map_err(|e| format!("no test database: {e}"))?;
    crate::support::distinct_ids(&env).await;
    // A platform bug can stop the clock (a day computed in UTC makes the next Seoul midnight
    // "now" again): a story that does not end in time fails instead of hanging the run.
    match tokio::time::timeout(TIME_LIMIT, run(story, &env)).await {
        Ok(Ok(record)) => Ok(record),
        Ok(Err((during, e))) => Err(format!("database error {during}: {e}")),
        Err(_) => Err(format!(
            "the story did not end within {} s on the platform (the clock stopped?)",
            TIME_LIMIT.as_secs()
        )),
    }
}

/// Far more than a story takes (well under a second, a few seconds on a loaded machine).
const TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A database error, and what was being played when it happened.
type Failed = (String, String);

fn during<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> Failed {
    let what = what.into();
    move |e| (what, e.to_string())
}

async fn run(story: &Story, env: &TestEnv) -> Result<Record, Failed> {
    let p = env.platform();
    let clock = env.clock();
    let start = clock.now();
    let setup = || during("while setting up the catalog, orgs and tenants");
    p.install_catalog(&story.catalog, start)
        .await
        .map_err(setup())?;
    let mut orgs = Vec::new();
    for (i, card) in story.orgs.iter().enumerate() {
        let org = p
            .create_org(&format!("org{i}"), start)
            .await
            .map_err(setup())?;
        if let Some(card) = card {
            p.register_card(org, *card, start).await.map_err(setup())?;
        }
        orgs.push(org);
    }
    let mut tenants = Vec::new();
    for (i, t) in story.tenants.iter().enumerate() {
        tenants.push(
            p.create_tenant(orgs[t.org], &t.product, &format!("t{i}"), start)
                .await
                .map_err(setup())?,
        );
    }
    let mut steps = Vec::new();
    for (n, step) in story.steps.iter().enumerate() {
        clock.advance_to(step.at()).await.map_err(during(format!(
            "in the jobs the clock ran on its way to step {} ({})",
            n + 1,
            step.describe()
        )))?;
        let at = clock.now();
        let result: Result<(), DomainError> = match &step.action {
            Action::Subscribe { tenant, plan } => {
                p.subscribe(tenants[*tenant], plan, at).await.map(drop)
            }
            Action::ChangePlan { tenant, plan } => p.change_plan(tenants[*tenant], plan, at).await,
            Action::Cancel { tenant } => p.cancel(tenants[*tenant], at).await,
            Action::Usage {
                tenant,
                metric,
                quantity,
            }
            | Action::LateUsage {
                tenant,
                metric,
                quantity,
            } => {
                p.record_usage(tenants[*tenant], metric, *quantity, step.usage_day(), at)
                    .await
            }
            Action::SetCard { org, card } => p
                .register_card(orgs[*org], *card, at)
                .await
                .map(drop)
                .map_err(DomainError::from),
        };
        steps.push(result.err().map(|e| e.code().to_owned()));
    }
    clock
        .advance_to(story.end_at())
        .await
        .map_err(during(format!(
            "in the jobs the clock ran on its way to the end, {} 00:00",
            story.until
        )))?;
    read(env, &tenants, steps)
        .await
        .map_err(during("while reading back what the platform wrote"))
}

type SubscriptionRow = (
    i64,
    i64,
    String,
    String,
    NaiveDate,
    Option<NaiveDate>,
    Option<String>,
    NaiveDate,
    NaiveDate,
    Option<DateTime<Utc>>,
);

type PaymentRow = (
    i64,
    NaiveDate,
    DateTime<Utc>,
    i16,
    Decimal,
    String,
    Option<String>,
    Option<String>,
);

/// Everything the story left in the database, in the model's shape. Invoices come through
/// `Platform::invoices`, but their amounts are read raw (`numeric(20,4)`): `invoices` rescales
/// to the currency's decimals, which would round an unfloored `9.995` to `10.00` and hide it.
async fn read(
    env: &TestEnv,
    tenants: &[TenantId],
    steps: Vec<Option<String>>,
) -> Result<Record, sqlx::Error> {
    let pool = env.pool();
    let tenant_of = |id: i64| {
        tenants
            .iter()
            .position(|t| t.0 == id)
            .expect("only the story's tenants exist")
    };
    let mut invoices = Vec::new();
    for (tenant, id) in tenants.iter().enumerate() {
        for stored in env.platform().invoices(*id).await? {
            let (due_on, subtotal, tax, total): (NaiveDate, Decimal, Decimal, Decimal) =
                sqlx::query_as("select due_on, subtotal, tax, total from invoices where id = $1")
                    .bind(stored.id)
                    .fetch_one(pool)
                    .await?;
            let amounts: Vec<Decimal> = sqlx::query_scalar(
                "select amount from invoice_lines where invoice_id = $1 order by position",
            )
            .bind(stored.id)
            .fetch_all(pool)
            .await?;
            let mut invoice = stored.invoice;
            invoice.subtotal = subtotal;
            invoice.tax = tax;
            invoice.total = total;
            for (line, amount) in invoice.lines.iter_mut().zip(&amounts) {
                line.amount = *amount;
            }
            if amounts.len() != invoice.lines.len() {
                invoice.lines.clear();
            }
            invoices.push(InvoiceRec {
                tenant,
                status: stored.status.to_string(),
                due_on,
                invoice,
            });
        }
    }
    let payments: Vec<PaymentRow> = sqlx::query_as(
        "select i.tenant_id, i.period, p.attempted_at, p.attempt, p.amount, p.outcome, \
                p.failure_code, c.number_last4::text \
         from payments p join invoices i on i.id = p.invoice_id \
         left join cards c on c.id = p.card_id order by p.attempted_at, p.id",
    )
    .fetch_all(pool)
    .await?;
    let payments = payments
        .into_iter()
        .map(
            |(tenant, period, at, attempt, amount, outcome, failure_code, card)| PaymentRec {
                tenant: tenant_of(tenant),
                period: Month::of(period),
                at,
                attempt,
                amount,
                outcome,
                failure_code,
                card,
            },
        )
        .collect();
    let subscriptions: Vec<SubscriptionRow> = sqlx::query_as(
        "select s.id, s.tenant_id, p.key, s.status, s.started_on, s.cancelled_on, s.cancel_reason, \
                s.current_period_start, s.current_period_end, s.last_plan_change_at \
         from subscriptions s join plans p on p.id = s.plan_id order by s.id",
    )
    .fetch_all(pool)
    .await?;
    let ids: Vec<i64> = subscriptions.iter().map(|s| s.0).collect();
    let index_of = |id: i64| ids.iter().position(|s| *s == id).unwrap_or(usize::MAX);
    let subscriptions = subscriptions
        .into_iter()
        .enumerate()
        .map(
            |(
                index,
                (_, tenant, plan, status, started_on, cancelled_on, reason, from, until, last),
            )| {
                SubscriptionRec {
                    index,
                    tenant: tenant_of(tenant),
                    plan,
                    status,
                    started_on,
                    cancelled_on,
                    cancel_reason: reason,
                    current_period: (from, until),
                    last_plan_change_at: last,
                }
            },
        )
        .collect();
    let periods: Vec<(i64, String, NaiveDate, Option<NaiveDate>)> = sqlx::query_as(
        "select b.subscription_id, p.key, b.starts_on, b.ends_on from billings b \
         join contracts c on c.id = b.contract_id join plans p on p.id = c.plan_id order by b.id",
    )
    .fetch_all(pool)
    .await?;
    let periods = periods
        .into_iter()
        .map(|(sub, plan, starts_on, ends_on)| PeriodRec {
            subscription: index_of(sub),
            plan,
            starts_on,
            ends_on,
        })
        .collect();
    let events: Vec<(i64, DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
        "select entity_id, created_at, payload from sync_outbox \
         where entity = 'subscription' order by id",
    )
    .fetch_all(pool)
    .await?;
    let date = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<NaiveDate>().ok());
    let history = events
        .into_iter()
        .map(|(sub, at, payload)| HistoryRec {
            subscription: index_of(sub),
            at,
            plan: payload["plan"].as_str().unwrap_or("?").to_owned(),
            status: payload["status"].as_str().unwrap_or("?").to_owned(),
            started_on: date(&payload["started_on"]).unwrap_or(NaiveDate::MIN),
            cancelled_on: date(&payload["cancelled_on"]),
        })
        .collect();
    let captures = env
        .gateway()
        .ledger()
        .into_iter()
        .map(|c| c.amount)
        .collect();
    Ok(Record {
        steps,
        invoices,
        payments,
        captures,
        subscriptions,
        periods,
        history,
    })
}
