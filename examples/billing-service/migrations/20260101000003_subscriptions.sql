-- Subscriptions and their plan periods. A subscription is a sequence of plan periods over
-- Asia/Seoul calendar days [starts_on, ends_on): a plan change ends the open period on the
-- change day and opens the next one from it; a cancellation ends it. ends_on null = open.

create table subscriptions (
    id           bigint generated always as identity primary key,
    customer_id  bigint not null references customers,
    started_on   date not null,
    cancelled_on date,
    created_at   timestamptz not null,
    check (cancelled_on is null or cancelled_on >= started_on)
);
create unique index subscriptions_one_live_per_customer
    on subscriptions (customer_id) where cancelled_on is null;
comment on table subscriptions is 'A customer''s subscription, billed postpaid per calendar month (Asia/Seoul).';

create table plan_periods (
    id              bigint generated always as identity primary key,
    subscription_id bigint not null references subscriptions,
    plan_key        text not null references plans,
    starts_on       date not null,
    ends_on         date,
    created_at      timestamptz not null,
    check (ends_on is null or ends_on >= starts_on)
);
create index plan_periods_subscription_idx on plan_periods (subscription_id, starts_on);
create unique index plan_periods_one_open
    on plan_periods (subscription_id) where ends_on is null;
comment on table plan_periods is 'The days a subscription spent on one plan; a plan change splits the month.';
