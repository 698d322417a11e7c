-- Tenants and product users: a tenant is one deployment of a product for an
-- organization (spec holds sales-contract sizing such as cpu/memory/storage);
-- product users are the organization's users granted access to a tenant.

create table tenants (
    id              bigint generated always as identity primary key,
    organization_id bigint not null references organizations,
    product_id      bigint not null references products,
    name            text not null,
    slug            text not null,
    spec            jsonb not null default '{}' check (jsonb_typeof(spec) = 'object'),
    status          text not null check (status in ('provisioning', 'active', 'suspended', 'deleted')),
    created_at      timestamptz not null,
    deleted_at      timestamptz,
    unique (product_id, slug),
    check ((status = 'deleted') = (deleted_at is not null))
);
create index tenants_organization_id_idx on tenants (organization_id);
comment on table tenants is 'One deployment of a product for an organization; the unit that is subscribed and billed.';

create table product_users (
    id         bigint generated always as identity primary key,
    tenant_id  bigint not null references tenants,
    user_id    bigint not null references users,
    role       text not null,
    created_at timestamptz not null,
    unique (tenant_id, user_id)
);
create index product_users_user_id_idx on product_users (user_id);
comment on table product_users is 'A user''s access to a tenant with a product-defined role (synced to the product).';
