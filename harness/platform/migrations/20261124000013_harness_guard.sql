-- Harness bookkeeping on shared databases: the marker checked by every write, in the write's own
-- transaction, and the rows of a scenario run recorded as they are written.
--
-- harness.require_marker: a connection of the harness to a database it did not create
-- (Database::attach, so every `cargo xtask` command that writes) carries it set to `on`. Every
-- statement that writes a table of this schema then checks, in its own transaction, that the
-- database is marked (`cargo xtask db mark` creates harness_marker), and holds the marker rows
-- for key share until it commits: removing the marker waits for the writes under way, and a
-- write after it is refused. No setting (a throwaway test database): no check.
--
-- harness.run_id: a connection of `cargo xtask scenario seed` carries the run's id. Every row
-- inserted into a table with an integer id is then recorded in harness_run_rows under that run,
-- by the insert's own transaction: a seed killed half-way leaves every row it committed
-- recorded, and `purge --run` takes it. No setting: nothing is recorded.
--
-- A table a later migration adds gets both triggers there (harness/tests/it/schema.rs checks).

create function harness_guard() returns trigger
language plpgsql
as $$
begin
    if to_regclass('harness_marker') is not null then
        perform 1 from harness_marker for key share;
        if found then
            return null;
        end if;
    end if;
    raise exception 'refusing to write: database % has no harness marker (the harness did not create it and nobody marked it for tests, or the marker was removed)', current_database()
        using errcode = 'HM001',
              hint = 'mark it with `cargo xtask db mark --env qa --database-url URL`';
end;
$$;
comment on function harness_guard() is
    'Refuses a write when harness.require_marker is on and the database has no harness marker; holds the marker for key share until commit.';

create function harness_record_row() returns trigger
language plpgsql
as $$
begin
    insert into harness_run_rows (run_id, table_name, row_id)
    values (current_setting('harness.run_id'), tg_table_name, new.id)
    on conflict do nothing;
    return null;
end;
$$;
comment on function harness_record_row() is
    'Records an inserted row in harness_run_rows under harness.run_id, in the insert''s transaction.';

do $$
declare
    t text;
begin
    for t in
        select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind = 'r'
          and c.relname not in ('_sqlx_migrations', 'harness_marker')
        order by 1
    loop
        execute format(
            'create trigger harness_guard before insert or update or delete or truncate on %I '
            'for each statement when (current_setting(''harness.require_marker'', true) = ''on'') '
            'execute function harness_guard()', t);
    end loop;
    for t in
        select c.table_name::text from information_schema.columns c
        join information_schema.tables k on k.table_schema = c.table_schema
             and k.table_name = c.table_name and k.table_type = 'BASE TABLE'
        where c.table_schema = 'public' and c.column_name = 'id'
          and c.data_type in ('bigint', 'integer', 'smallint')
        order by 1
    loop
        execute format(
            'create trigger harness_record_row after insert on %I for each row '
            'when (coalesce(current_setting(''harness.run_id'', true), '''') <> '''') '
            'execute function harness_record_row()', t);
    end loop;
end;
$$;
