-- Catalog: products (one deployment per tenant), the plans sold for each
-- product, and per-plan options: limits (e.g. seats) and metered metrics
-- with a monthly included quota and overage pricing per block.
-- Custom plans (is_custom) belong to one organization under a sales contract.

create table products (
    id         bigint generated always as identity primary key,
    key        text not null unique,
    name       text not null,
    sync_url   text,
    created_at timestamptz not null
);
comment on table products is 'A product the platform sells; receives user/tenant/subscription data at sync_url.';

create table plans (
    id              bigint generated always as identity primary key,
    product_id      bigint not null references products,
    key             text not null unique,
    name            text not null,
    currency        char(3) not null check (currency ~ '^[A-Z]{3}$'),
    base_fee        numeric(20,4) not null check (base_fee >= 0),
    is_custom       boolean not null default false,
    organization_id bigint references organizations,
    created_at      timestamptz not null,
    check (is_custom = (organization_id is not null))
);
create index plans_product_id_idx on plans (product_id);
create index plans_organization_id_idx on plans (organization_id);
comment on table plans is 'A priced plan of a product (monthly base fee); custom plans are sales contracts owned by one organization.';

create table plan_limits (
    plan_id    bigint not null references plans on delete cascade,
    option_key text not null,
    value      bigint not null check (value >= 0),
    primary key (plan_id, option_key)
);
comment on table plan_limits is 'A limit option of a plan (e.g. seats) and its value.';

create table plan_metrics (
    plan_id       bigint not null references plans on delete cascade,
    metric        text not null,
    included      bigint not null default 0 check (included >= 0),
    overage_block bigint check (overage_block > 0),
    overage_price numeric(20,4) check (overage_price >= 0),
    primary key (plan_id, metric),
    check ((overage_block is null) = (overage_price is null))
);
comment on table plan_metrics is 'A metered metric of a plan: monthly included quota and price per overage block (null = no overage billed).';
