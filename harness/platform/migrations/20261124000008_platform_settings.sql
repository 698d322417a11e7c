-- Catalog-wide settings and the record of closed months.
-- platform_settings holds the billing time zone (a day is a calendar day there), the tax rate and
-- the charge day; month_closes records each monthly close, so usage for a closed month is refused
-- and a month is never closed twice.

create table platform_settings (
    id         boolean primary key default true check (id),
    time_zone  text not null,
    currency   char(3) not null check (currency ~ '^[A-Z]{3}$'),
    tax_rate   numeric(6,4) not null check (tax_rate >= 0 and tax_rate < 1),
    charge_day smallint not null check (charge_day between 2 and 28),
    updated_at timestamptz not null
);
comment on table platform_settings is 'Catalog-wide billing settings: time zone, default currency, tax rate, charge day.';

create table month_closes (
    month     date primary key check (extract(day from month) = 1),
    closed_at timestamptz not null,
    invoices  int not null check (invoices >= 0)
);
comment on table month_closes is 'One row per finalised month: written by the close job at 00:00 on the 1st of the next month.';

-- How a test card behaves at the mock payment gateway (ok, declined, fail_times:N, ...).
alter table cards add column test_script text not null default 'ok';
comment on column cards.test_script is 'The harness gateway mock''s script for this card: ok, declined, insufficient_funds, expired, fail_times:N, timeout.';
