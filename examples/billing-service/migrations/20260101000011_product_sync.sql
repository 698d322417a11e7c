-- Organizations, their users, and product sync. A customer may belong to an organization (its
-- owner and members are users); a customer of a product and an organization is a tenant of that
-- product, which must hold the tenant, its organization's users and its latest subscription.
--
-- The three views say what each product must hold, as the JSON documents of the product sync
-- API (v1): every change queues outbox rows copied from them in its own transaction, the
-- reconciler compares a product's read-back with them, and a purge tells each product what
-- they no longer list. One definition serves all three.

create table organizations (
    id         bigint generated always as identity primary key,
    name       text not null,
    created_at timestamptz not null
);
comment on table organizations is 'A company with users; its customers are its tenants on products.';

create table users (
    id              bigint generated always as identity primary key,
    organization_id bigint not null references organizations,
    email           text not null unique,
    name            text not null,
    role            text not null check (role in ('owner', 'admin', 'member')),
    locale          text not null,
    created_at      timestamptz not null
);
create index users_organization_idx on users (organization_id);
comment on table users is 'A person of an organization; the products of its tenants know them.';

alter table customers add column organization_id bigint references organizations;
create index customers_organization_idx on customers (organization_id);
comment on column customers.organization_id is 'The organization the customer is a tenant of; null: not synced to products.';

create table product_endpoints (
    product  text primary key,
    sync_url text not null
);
comment on table product_endpoints is 'Where a product receives sync writes; rows for a product without one wait.';

-- The outbox. Rows of one (product, customer) key are delivered in id order, each until a 2xx
-- answer, under the row's id as its Idempotency-Key; a row that failed max attempts times is a
-- dead letter and holds back its key. customer_id is the ordering key only, not a foreign key: a
-- purged customer's deletion notices still go out in order.
create table product_outbox (
    id           bigint generated always as identity primary key,
    product      text not null,
    customer_id  bigint,
    entity       text not null check (entity in ('user', 'tenant', 'subscription')),
    operation    text not null check (operation in ('upsert', 'delete')),
    entity_id    bigint not null,
    payload      jsonb not null,
    created_at   timestamptz not null,
    available_at timestamptz not null,
    attempts     int not null default 0 check (attempts >= 0),
    last_error   text,
    delivered_at timestamptz,
    dead_at      timestamptz,
    check (available_at >= created_at)
);
create index product_outbox_pending_idx
    on product_outbox (product, customer_id, id) where delivered_at is null;
comment on table product_outbox is 'A user, tenant or subscription write waiting to be sent (or sent) to a product.';

create view product_users as
select c.product, c.id as customer_id, u.id as entity_id,
       jsonb_build_object('id', u.id, 'organization_id', u.organization_id, 'email', u.email,
                          'name', u.name, 'role', u.role, 'locale', u.locale) as payload
from users u
join customers c on c.organization_id = u.organization_id
where c.product is not null;
comment on view product_users is 'The user documents each product must hold, one row per tenant of the user''s organization.';

create view product_tenants as
select c.product, c.id as customer_id, c.id as entity_id,
       jsonb_build_object('id', c.id, 'organization_id', c.organization_id, 'name', c.name,
                          'slug', c.name, 'spec', '{}'::jsonb, 'status', 'active') as payload
from customers c
where c.product is not null and c.organization_id is not null;
comment on view product_tenants is 'The tenant documents each product must hold.';

create view product_subscriptions as
select c.product, c.id as customer_id, s.id as entity_id,
       jsonb_build_object(
           'id', s.id, 'tenant_id', c.id,
           'plan', (select p.plan_key from plan_periods p where p.subscription_id = s.id
                    order by p.id desc limit 1),
           'status', s.status, 'started_on', s.started_on, 'cancelled_on', s.cancelled_on,
           'limits', coalesce((select k.limits from contracts k where k.subscription_id = s.id
                               order by k.starts_on desc, k.created_at desc limit 1),
                              '{}'::jsonb)) as payload
from customers c
join lateral (select * from subscriptions s where s.customer_id = c.id
              order by s.id desc limit 1) s on true
where c.product is not null and c.organization_id is not null;
comment on view product_subscriptions is 'Each tenant''s latest subscription document, as its product must hold it.';
