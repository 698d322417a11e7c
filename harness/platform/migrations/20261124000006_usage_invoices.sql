-- Usage, invoices and payments. Usage events are metered per calendar day
-- (Asia/Seoul). Month M is finalised into an invoice on the 1st of M+1 (base
-- fee prorated by days, overage per block) and charged on the billing day
-- (the 5th by default); a failed charge is retried daily up to 3 times
-- (attempts 1..4) before the subscription is cancelled.

create table usage_events (
    id              bigint generated always as identity primary key,
    tenant_id       bigint not null references tenants,
    subscription_id bigint not null references subscriptions,
    metric          text not null,
    quantity        bigint not null check (quantity > 0),
    occurred_on     date not null,
    occurred_at     timestamptz not null,
    idempotency_key text unique,
    created_at      timestamptz not null
);
create index usage_events_subscription_day_idx on usage_events (subscription_id, occurred_on);
create index usage_events_tenant_day_idx on usage_events (tenant_id, occurred_on);
comment on table usage_events is 'A metered usage report from a product for a tenant (occurred_on is the Asia/Seoul calendar day).';

create table invoices (
    id              bigint generated always as identity primary key,
    subscription_id bigint not null references subscriptions,
    tenant_id       bigint not null references tenants,
    period          date not null check (extract(day from period) = 1),
    status          text not null check (status in ('finalized', 'paid', 'past_due', 'uncollectible')),
    currency        char(3) not null check (currency ~ '^[A-Z]{3}$'),
    subtotal        numeric(20,4) not null check (subtotal >= 0),
    tax             numeric(20,4) not null check (tax >= 0),
    total           numeric(20,4) not null check (total >= 0),
    due_on          date not null,
    finalized_at    timestamptz not null,
    paid_at         timestamptz,
    unique (subscription_id, period),
    check (total = subtotal + tax),
    check (due_on > period),
    check ((status = 'paid') = (paid_at is not null))
);
create index invoices_tenant_id_idx on invoices (tenant_id, period);
comment on table invoices is 'The postpaid invoice of one subscription for one calendar month (period = first day of the month).';

create table invoice_lines (
    id           bigint generated always as identity primary key,
    invoice_id   bigint not null references invoices on delete cascade,
    position     int not null check (position >= 1),
    kind         text not null check (kind in ('base', 'overage')),
    plan_id      bigint not null references plans,
    metric       text,
    period_from  date not null,
    period_until date not null,
    days         int check (days between 0 and 31),
    quantity     bigint check (quantity >= 0),
    included     bigint check (included >= 0),
    amount       numeric(20,4) not null check (amount >= 0),
    unique (invoice_id, position),
    check (period_until >= period_from),
    check ((kind = 'base') = (metric is null))
);
create index invoice_lines_plan_id_idx on invoice_lines (plan_id);
comment on table invoice_lines is 'One invoice line: a prorated base fee or a metric''s overage, per plan period within the month.';

create table payments (
    id                 bigint generated always as identity primary key,
    invoice_id         bigint not null references invoices,
    card_id            bigint references cards,
    attempt            smallint not null check (attempt between 1 and 4),
    attempted_at       timestamptz not null,
    outcome            text not null check (outcome in ('succeeded', 'failed')),
    amount             numeric(20,4) not null check (amount >= 0),
    gateway_request_id text,
    idempotency_key    text not null unique,
    approval_number    text,
    failure_code       text,
    unique (invoice_id, attempt),
    check (outcome = 'succeeded' or approval_number is null),
    check (outcome = 'failed' or failure_code is null)
);
create index payments_card_id_idx on payments (card_id);
create unique index payments_one_success_per_invoice
    on payments (invoice_id) where outcome = 'succeeded';
comment on table payments is 'One charge attempt of an invoice against a card''s billing key (1 = billing day, 2..4 = daily retries).';
