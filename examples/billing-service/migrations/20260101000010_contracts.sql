-- Sales contracts, as the reference platform has them: custom terms over a plan of the price
-- list (its base) for one customer, from a first day. A contract is a plan of its own, keyed
-- `<base>~<customer id>~<first day>` and kept out of the price list, which the customer's
-- subscription moves to as in a plan change (or starts on). A term that ends cancels the
-- subscription on its end day, if it is still on the contract.

alter table plans add column base_key text references plans;
comment on column plans.base_key is 'A contract''s base plan; null: a plan of the price list.';

create table contracts (
    plan_key        text primary key references plans,
    customer_id     bigint not null references customers,
    subscription_id bigint not null references subscriptions,
    starts_on       date not null,
    term_ends_on    date check (term_ends_on > starts_on),
    limits          jsonb not null default '{}',
    created_at      timestamptz not null
);
create index contracts_subscription_idx on contracts (subscription_id);
comment on table contracts is 'A sales contract: its plan (the custom terms), whose subscription, and its term.';
comment on column contracts.term_ends_on is 'The first day the contract no longer covers; null: open-ended.';
comment on column contracts.limits is 'Limits per option (e.g. seats = 40), a JSON object of integers; none is billed.';
