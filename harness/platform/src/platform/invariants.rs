//! The platform's invariants, checked from the database: what must hold after any mix of
//! operations and jobs, however concurrent. The stress suite and `cargo xtask bench load` read
//! them after every run.

use sqlx::PgPool;

/// Every row that breaks one of the platform's invariants, as `invariant: row`; empty when all
/// hold. The invariants: at most one live subscription per tenant; at most one plan change per
/// tenant and day; a plan period's contract and billing cover the same days; one invoice per
/// subscription and month; every accepted usage event of a
/// closed month billed exactly once, and usage outside every plan period only on its
/// subscription's cancel day; at most one successful payment per invoice and one attempt per
/// invoice and day.
///
/// "Billed exactly once" compares a month's usage with the quantities on its invoice's overage
/// lines, and a plan period has such a line only when its usage went over its included quota:
/// the check is exact on a catalog whose every metric has an overage price and no quota (the
/// stress suite's and the checker tests' metered catalog); on another, usage within a quota is
/// reported as unbilled.
///
/// # Errors
/// The database failed.
pub async fn invariant_violations(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    let checks: [(&str, &str); 8] = [
        (
            "at most one live subscription per tenant",
            "select tenant_id::text from subscriptions where status <> 'cancelled' \
             group by tenant_id having count(*) > 1",
        ),
        (
            "at most one plan change per tenant and day",
            "select s.tenant_id || ' on ' || c.starts_on from contracts c \
             join subscriptions s on s.id = c.subscription_id \
             group by s.tenant_id, s.id, s.started_on, c.starts_on \
             having count(*) - (case when c.starts_on = s.started_on then 1 else 0 end) > 1",
        ),
        (
            "a plan period's contract and billing cover the same days",
            "select 'billing ' || b.id || ' from ' || b.starts_on || ' until ' || coalesce(b.ends_on::text, '-') \
                    || ', contract from ' || c.starts_on || ' until ' || coalesce(c.ends_on::text, '-') \
             from billings b join contracts c on c.id = b.contract_id \
             where c.subscription_id <> b.subscription_id or c.starts_on <> b.starts_on \
                or c.ends_on is distinct from b.ends_on",
        ),
        (
            "one invoice per subscription and month",
            "select subscription_id || ' ' || period from invoices \
             group by subscription_id, period having count(*) > 1",
        ),
        (
            "every accepted usage event of a closed month billed exactly once",
            "with used as (select u.subscription_id, date_trunc('month', u.occurred_on)::date as period, \
                                  sum(u.quantity) as used \
                           from usage_events u \
                           where exists (select 1 from billings b where b.subscription_id = u.subscription_id \
                                         and u.occurred_on >= b.starts_on \
                                         and (b.ends_on is null or u.occurred_on < b.ends_on)) \
                           group by 1, 2), \
                  billed as (select i.subscription_id, i.period, coalesce(sum(l.quantity), 0) as billed \
                             from invoices i left join invoice_lines l on l.invoice_id = i.id and l.kind = 'overage' \
                             group by 1, 2) \
             select 'subscription ' || u.subscription_id || ' ' || u.period || ': used ' || u.used \
                    || ', billed ' || coalesce(b.billed::text, 'no invoice') \
             from used u join month_closes m on m.month = u.period \
             left join billed b on b.subscription_id = u.subscription_id and b.period = u.period \
             where b.billed is distinct from u.used",
        ),
        (
            // The one way accepted usage goes unbilled, by the rules: a later cancel effective
            // from the usage's own day (the cancel day is not billed).
            "usage outside every plan period only on its subscription's cancel day",
            "select 'usage ' || u.id || ' on ' || u.occurred_on from usage_events u \
             join subscriptions s on s.id = u.subscription_id \
             where not exists (select 1 from billings b where b.subscription_id = u.subscription_id \
                               and u.occurred_on >= b.starts_on \
                               and (b.ends_on is null or u.occurred_on < b.ends_on)) \
               and s.cancelled_on is distinct from u.occurred_on",
        ),
        (
            "at most one successful payment per invoice",
            "select invoice_id::text from payments where outcome = 'succeeded' \
             group by invoice_id having count(*) > 1",
        ),
        (
            "at most one attempt per invoice and day",
            "select invoice_id || ' on ' || (attempted_at at time zone 'Asia/Seoul')::date from payments \
             group by invoice_id, (attempted_at at time zone 'Asia/Seoul')::date having count(*) > 1",
        ),
    ];
    let mut found = Vec::new();
    for (invariant, sql) in checks {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await?;
        found.extend(rows.into_iter().map(|r| format!("{invariant}: {r}")));
    }
    Ok(found)
}
