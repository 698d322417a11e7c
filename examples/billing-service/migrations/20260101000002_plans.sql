-- The price list. Every plan meters one metric: `included` units a month (prorated by days),
-- then `block_price` for every started block of `block_size` units. Amounts are whole won.

create table plans (
    key         text primary key,
    name        text not null,
    monthly_fee numeric(14, 0) not null check (monthly_fee >= 0),
    metric      text not null,
    included    bigint not null check (included >= 0),
    block_size  bigint not null check (block_size > 0),
    block_price numeric(14, 0) not null check (block_price >= 0)
);
comment on table plans is 'A plan of the price list (KRW): a monthly fee and one metered metric.';

insert into plans (key, name, monthly_fee, metric, included, block_size, block_price) values
    ('starter',  'Starter',       0,  'api_calls',     1000, 1000,   0),
    ('pro',      'Pro',       99000,  'api_calls',   100000, 1000, 500),
    ('business', 'Business', 290000,  'api_calls',  1000000, 1000, 300);
