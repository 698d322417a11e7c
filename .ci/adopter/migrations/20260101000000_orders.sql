-- The backend's own schema: its default reads the test clock that the harness installs before
-- the first migration.
create table orders (
    id        bigint generated always as identity primary key,
    item      text not null,
    placed_at timestamptz not null default harness_now()
);
