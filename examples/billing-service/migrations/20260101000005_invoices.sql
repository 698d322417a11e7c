-- Invoices. Closing month M writes one invoice per subscription served in M, with its lines
-- (a prorated base fee per plan period, overage above the period's prorated quota), and
-- records M as closed: usage for a closed month is refused.

create table closed_months (
    month     date primary key check (extract(day from month) = 1),
    closed_at timestamptz not null
);
comment on table closed_months is 'Months whose invoices are written; usage dated in them is refused.';

create table invoices (
    id              bigint generated always as identity primary key,
    subscription_id bigint not null references subscriptions,
    customer_id     bigint not null references customers,
    month           date not null references closed_months,
    status          text not null check (status in ('finalized', 'paid', 'failed')),
    subtotal        numeric(14, 0) not null check (subtotal >= 0),
    tax             numeric(14, 0) not null check (tax >= 0),
    total           numeric(14, 0) not null check (total >= 0),
    closed_at       timestamptz not null,
    paid_at         timestamptz,
    unique (subscription_id, month),
    check (total = subtotal + tax),
    check ((status = 'paid') = (paid_at is not null))
);
create index invoices_customer_idx on invoices (customer_id, month);
comment on table invoices is 'The postpaid invoice of one subscription for one calendar month.';

create table invoice_lines (
    id           bigint generated always as identity primary key,
    invoice_id   bigint not null references invoices on delete cascade,
    position     int not null check (position >= 1),
    kind         text not null check (kind in ('base', 'overage')),
    plan_key     text not null references plans,
    metric       text,
    period_from  date not null,
    period_until date not null,
    days         int not null check (days between 1 and 31),
    used         bigint check (used >= 0),
    included     bigint check (included >= 0),
    overage      bigint check (overage >= 0),
    amount       numeric(14, 0) not null check (amount >= 0),
    unique (invoice_id, position),
    check (period_until > period_from),
    check ((kind = 'base') = (metric is null))
);
comment on table invoice_lines is 'A prorated base fee, or the overage of a metric, of one plan period in the month.';
