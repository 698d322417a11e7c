-- Metered usage, one row per report, dated by its Asia/Seoul calendar day.

create table usage_events (
    id              bigint generated always as identity primary key,
    subscription_id bigint not null references subscriptions,
    metric          text not null,
    quantity        bigint not null check (quantity > 0),
    occurred_on     date not null,
    recorded_at     timestamptz not null
);
create index usage_events_subscription_day_idx on usage_events (subscription_id, occurred_on);
comment on table usage_events is 'A usage report; occurred_on is the Asia/Seoul day it belongs to.';
