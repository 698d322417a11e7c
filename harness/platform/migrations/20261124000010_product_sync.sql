-- Product sync that converges. Each product holds, for the platform's tenants on it, the users of
-- their organizations, the tenants and each tenant's latest subscription. The three views below
-- say what a product must hold, as the JSON documents of the product sync API (version 1): the
-- platform queues a row from them in the transaction of every change, and the reconciler
-- compares a product's read-back with them. One definition serves both.
--
-- The outbox gains dead letters: a row that failed `attempts` times stops, and holds back the
-- later rows of its (product, tenant) key until someone re-queues it.

alter table sync_outbox
    add column dead_at timestamptz,
    add column last_status int;
-- The dispatcher looks for the first undelivered row of each key.
create index sync_outbox_key_pending_idx
    on sync_outbox (product_id, tenant_id, id) where dispatched_at is null;
comment on column sync_outbox.dead_at is
    'When the row was given up after its last failed attempt (a dead letter); null while live.';
comment on column sync_outbox.last_status is
    'The HTTP status of the last attempt, null when it got no answer (timeout, reset).';

-- The users a product must know: the live users of every organization with a live tenant on it,
-- one row per (tenant, user) so that a user's changes are ordered with the tenant's own.
create view sync_users as
select t.product_id, t.id as tenant_id, u.id as entity_id,
       jsonb_build_object('id', u.id, 'organization_id', u.organization_id, 'email', u.email,
                          'name', u.name, 'role', u.role, 'locale', u.locale) as payload
from users u
join tenants t on t.organization_id = u.organization_id and t.status <> 'deleted'
where u.deleted_at is null;
comment on view sync_users is
    'Product sync: the user documents each product must hold, one row per tenant of the user''s organization.';

-- The tenants a product must know: every tenant on it that is not deleted.
create view sync_tenants as
select t.product_id, t.id as tenant_id, t.id as entity_id,
       jsonb_build_object('id', t.id, 'organization_id', t.organization_id, 'name', t.name,
                          'slug', t.slug, 'spec', t.spec, 'status', t.status) as payload
from tenants t
where t.status <> 'deleted';
comment on view sync_tenants is 'Product sync: the tenant documents each product must hold.';

-- The subscription a product must know for each live tenant: its latest one (a cancelled one
-- stays, cancelled), with the plan, the status words of the platform and the limits of its
-- latest contract.
create view sync_subscriptions as
select t.product_id, t.id as tenant_id, s.id as entity_id,
       jsonb_build_object(
           'id', s.id, 'tenant_id', t.id, 'plan', p.key, 'status', s.status,
           'started_on', s.started_on, 'cancelled_on', s.cancelled_on,
           'limits', coalesce((select jsonb_object_agg(d.option_key, d.value order by d.option_key)
                                 from contract_details d
                                where d.contract_id = (select c.id from contracts c
                                                        where c.subscription_id = s.id
                                                        order by c.starts_on desc, c.id desc
                                                        limit 1)),
                              '{}'::jsonb)) as payload
from tenants t
join lateral (select * from subscriptions s where s.tenant_id = t.id
              order by s.id desc limit 1) s on true
join plans p on p.id = s.plan_id
where t.status <> 'deleted';
comment on view sync_subscriptions is
    'Product sync: each live tenant''s latest subscription document, as its product must hold it.';
