-- Currencies, as the reference platform has them: a plan is priced in KRW (whole won) or USD
-- (cents), a subscription keeps the currency of the plan it started on, and an invoice is in
-- its subscription's currency. Amounts become unconstrained numerics written with exactly
-- their currency's decimals (`70258`, `9.99`), so they read back as written.
-- A plan without an overage price (block_price null) never charges its metric's overage.

alter table plans
    add column currency text not null default 'KRW' check (currency in ('KRW', 'USD')),
    alter column monthly_fee type numeric,
    alter column block_price type numeric,
    alter column block_price drop not null,
    add constraint plans_amount_scale check (scale(monthly_fee) <= 2 and scale(block_price) <= 2);
comment on column plans.block_price is 'Price of a started overage block; null: overage is never charged.';

alter table subscriptions
    add column currency text not null default 'KRW' check (currency in ('KRW', 'USD'));
alter table subscriptions alter column currency drop default;
comment on column subscriptions.currency is 'The currency of the plan it started on: every plan it moves to, and every invoice, is in it.';

alter table invoices
    add column currency text not null default 'KRW' check (currency in ('KRW', 'USD')),
    alter column subtotal type numeric,
    alter column tax type numeric,
    alter column total type numeric;
alter table invoices alter column currency drop default;
alter table invoice_lines alter column amount type numeric;
alter table payments alter column amount type numeric;
