-- Dunning, as the reference platform does it: a failed charge makes the invoice `past_due` and
-- its subscription `past_due`; it is retried once a day, 4 attempts in all; when the last fails
-- the invoice is `uncollectible` and the subscription is cancelled that day. A paid invoice
-- makes the subscription `active` again. Each payment row is one numbered attempt.

alter table subscriptions
    add column status text not null default 'active'
        check (status in ('active', 'past_due', 'cancelled'));
update subscriptions set status = 'cancelled' where cancelled_on is not null;
alter table subscriptions alter column status drop default;
alter table subscriptions
    add constraint subscriptions_cancelled_status
        check ((status = 'cancelled') = (cancelled_on is not null));
comment on column subscriptions.status is 'active, past_due (an invoice is in dunning) or cancelled.';

-- `failed` was the one status of a failed charge; it is now past due or uncollectible.
alter table invoices drop constraint invoices_status_check;
update invoices set status = 'past_due' where status = 'failed';
alter table invoices
    add constraint invoices_status_check
        check (status in ('finalized', 'paid', 'past_due', 'uncollectible'));

alter table payments add column attempt smallint not null default 1 check (attempt between 1 and 4);
alter table payments alter column attempt drop default;
create unique index payments_one_attempt on payments (invoice_id, attempt);
comment on column payments.attempt is '1 for the charge on the charge day, 2 to 4 for the daily retries.';
