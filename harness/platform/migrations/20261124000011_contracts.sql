-- Sales-led contracts. A contract is a custom plan (is_custom, owned by the organization) made
-- from a catalog plan, its base, with the terms agreed with sales; the subscription moves to it
-- like any plan change. A contract may end on a day (its term), when the subscription is
-- cancelled with the reason contract_ended. Every contract applied to a shared QA database from
-- a file leaves an audit row.

alter table plans add column base_plan_id bigint references plans;
alter table plans add constraint plans_custom_has_a_base
    check (base_plan_id is null or is_custom);
create index plans_base_plan_id_idx on plans (base_plan_id);
comment on column plans.base_plan_id is
    'For a custom plan (a sales contract): the catalog plan it was made from.';

alter table contracts add column term_ends_on date;
alter table contracts add constraint contracts_term_after_start
    check (term_ends_on is null or term_ends_on > starts_on);
comment on column contracts.term_ends_on is
    'The first day a custom contract no longer covers: its subscription is cancelled then.';

create table contract_applications (
    id         bigint generated always as identity primary key,
    applied_at timestamptz not null,
    file       text not null,
    file_hash  text not null,
    tenant_id  bigint not null references tenants,
    plan_id    bigint not null references plans,
    rows       jsonb not null check (jsonb_typeof(rows) = 'object')
);
create index contract_applications_tenant_id_idx on contract_applications (tenant_id);
create index contract_applications_plan_id_idx on contract_applications (plan_id);
comment on table contract_applications is
    'Audit: a contract file applied to this database: when, which file and its hash, the rows written per table.';
