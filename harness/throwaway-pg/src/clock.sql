-- The test clock in the database, installed into every template before its migrations run, so
-- that defaults and triggers of any schema (ours or a backend repo's own) can call harness_now().
-- The harness writes the single row of harness_clock whenever its clock moves.

create table if not exists harness_clock (
    id  boolean primary key default true check (id),
    now timestamptz not null
);
comment on table harness_clock is
    'Single-row test clock; the harness sets it so user defaults/triggers can follow the test clock.';

create or replace function harness_now() returns timestamptz
language plpgsql stable
as $$
declare
    t timestamptz;
begin
    select c.now into t from harness_clock c;
    if not found then
        raise exception 'harness clock is not set for this database'
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'insert a row into harness_clock first';
    end if;
    return t;
end;
$$;
comment on function harness_now() is
    'The harness test clock (harness_clock.now); raises if the clock is not set.';

