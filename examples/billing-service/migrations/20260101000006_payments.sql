-- Charges of finalized invoices through the payment provider, one attempt per invoice.

create table payments (
    id              bigint generated always as identity primary key,
    invoice_id      bigint not null references invoices,
    attempted_at    timestamptz not null,
    amount          numeric(14, 0) not null check (amount >= 0),
    outcome         text not null check (outcome in ('succeeded', 'failed')),
    reference       text,
    failure_code    text,
    idempotency_key text not null unique,
    check ((outcome = 'succeeded') = (reference is not null)),
    check ((outcome = 'failed') = (failure_code is not null))
);
create index payments_invoice_idx on payments (invoice_id);
comment on table payments is 'One charge attempt of an invoice; reference is the provider''s id of a capture.';
