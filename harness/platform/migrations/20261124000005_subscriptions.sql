-- Subscriptions and the agreements behind them. A subscription binds a
-- tenant to its current plan; each plan period has one contract (the limits,
-- contract_details) and one billing (the prices, billing_details). A plan
-- change (at most once per day) closes the open contract/billing and opens
-- new ones. Date ranges are [starts_on, ends_on), ends_on null = open.

create table subscriptions (
    id                   bigint generated always as identity primary key,
    tenant_id            bigint not null references tenants,
    plan_id              bigint not null references plans,
    status               text not null check (status in ('active', 'past_due', 'cancelled')),
    started_on           date not null,
    cancelled_on         date,
    cancel_reason        text check (cancel_reason in ('requested', 'payment_failed', 'contract_ended')),
    current_period_start date not null,
    current_period_end   date not null,
    last_plan_change_at  timestamptz,
    created_at           timestamptz not null,
    updated_at           timestamptz not null,
    check (current_period_end > current_period_start),
    check ((status = 'cancelled') = (cancelled_on is not null)),
    check (cancelled_on is null or cancelled_on >= started_on),
    check (cancel_reason is null or status = 'cancelled')
);
create index subscriptions_tenant_id_idx on subscriptions (tenant_id);
create index subscriptions_plan_id_idx on subscriptions (plan_id);
create unique index subscriptions_one_live_per_tenant
    on subscriptions (tenant_id) where status <> 'cancelled';
comment on table subscriptions is 'A tenant''s subscription to its current plan, billed postpaid per calendar month (Asia/Seoul).';

create table contracts (
    id              bigint generated always as identity primary key,
    subscription_id bigint not null references subscriptions,
    plan_id         bigint not null references plans,
    kind            text not null check (kind in ('plan', 'custom')),
    starts_on       date not null,
    ends_on         date,
    created_at      timestamptz not null,
    check (ends_on is null or ends_on >= starts_on)
);
create index contracts_subscription_id_idx on contracts (subscription_id, starts_on);
create index contracts_plan_id_idx on contracts (plan_id);
create unique index contracts_one_open_per_subscription
    on contracts (subscription_id) where ends_on is null;
comment on table contracts is 'The terms of one plan period of a subscription; the old manual month shift rewrote starts_on/ends_on here every month.';

create table contract_details (
    id          bigint generated always as identity primary key,
    contract_id bigint not null references contracts on delete cascade,
    option_key  text not null,
    value       bigint not null check (value >= 0),
    unique (contract_id, option_key)
);
comment on table contract_details is 'A limit value (e.g. seats) agreed in a contract, copied from the plan or set by sales.';

create table billings (
    id              bigint generated always as identity primary key,
    subscription_id bigint not null references subscriptions,
    contract_id     bigint not null unique references contracts,
    currency        char(3) not null check (currency ~ '^[A-Z]{3}$'),
    base_fee        numeric(20,4) not null check (base_fee >= 0),
    starts_on       date not null,
    ends_on         date,
    created_at      timestamptz not null,
    check (ends_on is null or ends_on >= starts_on)
);
create index billings_subscription_id_idx on billings (subscription_id, starts_on);
create unique index billings_one_open_per_subscription
    on billings (subscription_id) where ends_on is null;
comment on table billings is 'The price agreement (monthly base fee) of one contract''s plan period; the old manual month shift rewrote starts_on/ends_on here every month.';

create table billing_details (
    id            bigint generated always as identity primary key,
    billing_id    bigint not null references billings on delete cascade,
    metric        text not null,
    included      bigint not null default 0 check (included >= 0),
    overage_block bigint check (overage_block > 0),
    overage_price numeric(20,4) check (overage_price >= 0),
    unique (billing_id, metric),
    check ((overage_block is null) = (overage_price is null))
);
comment on table billing_details is 'Per-metric pricing of a billing: monthly included quota and price per overage block.';
