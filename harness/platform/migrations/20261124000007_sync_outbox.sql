-- Sync outbox: user/tenant/subscription changes queued for delivery to a
-- product's sync_url over HTTP. A dispatcher picks pending rows
-- (dispatched_at is null, available_at reached) in id order and pushes
-- available_at forward on failure.

create table sync_outbox (
    id            bigint generated always as identity primary key,
    product_id    bigint not null references products,
    tenant_id     bigint references tenants,
    entity        text not null check (entity in ('user', 'tenant', 'subscription')),
    operation     text not null check (operation in ('upsert', 'delete')),
    entity_id     bigint not null,
    payload       jsonb not null,
    created_at    timestamptz not null,
    available_at  timestamptz not null,
    dispatched_at timestamptz,
    attempts      int not null default 0 check (attempts >= 0),
    last_error    text,
    check (available_at >= created_at)
);
create index sync_outbox_pending_idx on sync_outbox (dispatched_at, available_at);
create index sync_outbox_product_id_idx on sync_outbox (product_id);
create index sync_outbox_tenant_id_idx on sync_outbox (tenant_id);
comment on table sync_outbox is 'A user/tenant/subscription change waiting to be sent (or sent) to a product over HTTP.';
