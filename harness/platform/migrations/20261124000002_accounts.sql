-- Accounts: organizations and their users, invitations to join an
-- organization, registered cards (billing keys from the payment gateway) and
-- the per-organization billing account ("user pricing info").

create table organizations (
    id              bigint generated always as identity primary key,
    name            text not null,
    business_number text,
    created_at      timestamptz not null,
    deleted_at      timestamptz
);
comment on table organizations is 'A customer organization that signed up; owns users, cards, tenants and the billing account.';

create table users (
    id              bigint generated always as identity primary key,
    organization_id bigint not null references organizations,
    email           text not null unique,
    name            text not null,
    phone           text,
    role            text not null check (role in ('owner', 'admin', 'member')),
    locale          text not null default 'ko-KR',
    created_at      timestamptz not null,
    deleted_at      timestamptz
);
create index users_organization_id_idx on users (organization_id);
comment on table users is 'A person signed up under an organization (console login, synced to products as product users).';

create table invitations (
    id               bigint generated always as identity primary key,
    organization_id  bigint not null references organizations,
    email            text not null,
    invited_by       bigint not null references users,
    role             text not null check (role in ('owner', 'admin', 'member')),
    status           text not null check (status in ('pending', 'accepted', 'expired', 'revoked')),
    token            text not null unique,
    created_at       timestamptz not null,
    expires_at       timestamptz not null,
    accepted_at      timestamptz,
    accepted_user_id bigint references users,
    check (expires_at > created_at),
    check ((status = 'accepted') = (accepted_at is not null and accepted_user_id is not null))
);
create index invitations_organization_id_idx on invitations (organization_id);
create index invitations_invited_by_idx on invitations (invited_by);
create index invitations_accepted_user_id_idx on invitations (accepted_user_id);
create unique index invitations_one_pending_per_email
    on invitations (organization_id, email) where status = 'pending';
comment on table invitations is 'An invitation for an email address to join an organization with a role.';

create table cards (
    id              bigint generated always as identity primary key,
    organization_id bigint not null references organizations,
    billing_key     text not null unique,
    brand           text not null,
    number_last4    char(4) not null check (number_last4 ~ '^[0-9]{4}$'),
    holder_name     text,
    expires_on      date not null check (extract(day from expires_on) = 1),
    status          text not null check (status in ('active', 'replaced', 'removed')),
    registered_at   timestamptz not null,
    removed_at      timestamptz,
    check (status <> 'active' or removed_at is null)
);
create index cards_organization_id_idx on cards (organization_id);
create unique index cards_one_active_per_organization
    on cards (organization_id) where status = 'active';
comment on table cards is 'A card registered with the payment gateway, kept as its billing key; charges use the active one.';

create table billing_accounts (
    id              bigint generated always as identity primary key,
    organization_id bigint not null unique references organizations,
    billing_email   text not null,
    currency        char(3) not null check (currency ~ '^[A-Z]{3}$'),
    billing_day     smallint not null default 5 check (billing_day between 1 and 28),
    pricing         text not null default 'standard' check (pricing in ('standard', 'custom')),
    tax_rate        numeric(6,4) not null default 0 check (tax_rate >= 0 and tax_rate < 1),
    created_at      timestamptz not null
);
comment on table billing_accounts is 'Per-organization pricing info: invoice email, currency, charge day, standard or sales-led pricing, tax rate.';
