-- Product sync retries for a horizon of time, not a number of attempts: a row that fails is
-- tried again with a capped backoff until its product's horizon (days) has passed since its first
-- failure, and only a failure past it makes it a dead letter. `failing_since` is that first
-- failure; re-queuing a dead letter clears it, so that the row gets a whole horizon again.

alter table sync_outbox add column failing_since timestamptz;
comment on column sync_outbox.failing_since is
    'The first failed attempt since the row was queued or re-queued; a failure past it plus the product''s retry horizon makes the row a dead letter.';
