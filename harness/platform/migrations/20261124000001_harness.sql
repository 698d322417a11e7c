-- Harness bookkeeping: scenario run tracking.
-- harness_runs / harness_run_rows record which scenario run created which
-- platform row, so runs can be inspected and purged afterwards.
-- (The test clock, harness_clock and harness_now(), is installed by the harness
-- itself before any migration runs: see src/env/clock.sql.)

create table harness_runs (
    id         text primary key,
    scenario   text not null,
    seed       bigint not null,
    anchor     date,
    created_at timestamptz not null
);
comment on table harness_runs is 'One scenario run of the harness (run id, scenario, RNG seed, anchor date).';

create table harness_run_rows (
    run_id     text not null references harness_runs on delete cascade,
    table_name text not null,
    row_id     bigint not null,
    primary key (run_id, table_name, row_id)
);
create index harness_run_rows_table_row_idx on harness_run_rows (table_name, row_id);
comment on table harness_run_rows is 'Which platform row (table, id) a scenario run created.';
