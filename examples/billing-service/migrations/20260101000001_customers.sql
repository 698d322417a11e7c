-- Customers of the billing service. A customer with a card has the payment provider's
-- billing key; without one, a charge fails with `no_card`.

create table customers (
    id          bigint generated always as identity primary key,
    name        text not null,
    email       text not null unique,
    billing_key text,
    created_at  timestamptz not null
);
comment on table customers is 'A paying customer; billing_key is the payment provider''s key for their card.';
