-- Purge: one audit row per purge that ran (dry runs write nothing). It names what was asked
-- without personal data: an e-mail address is kept only as its SHA-256.

create table purge_audit (
    id        bigint generated always as identity primary key,
    purged_at timestamptz not null,
    asked     text not null,
    scope     text not null check (scope in ('user_left', 'owner_data', 'organization', 'run', 'nothing')),
    rows      jsonb not null check (jsonb_typeof(rows) = 'object'),
    told      jsonb not null check (jsonb_typeof(told) = 'array')
);
comment on table purge_audit is
    'Audit: one purge of a user, an organization or a scenario run: when, what was asked (an e-mail only as its sha256), rows deleted per table, deletions queued for products.';
