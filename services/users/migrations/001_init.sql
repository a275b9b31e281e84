-- users: house staff (internal) and providers' accounts (external), roles and rights,
-- sessions, and what the service learns from events (key changes, certificates).

-- Trigram indexes answer the list's substring search ("q"). Created in public so that
-- every service's search_path (<schema>, public) finds the operator classes.
create extension if not exists pg_trgm with schema public;

create table users (
    username text primary key,
    type text not null check (type in ('internal', 'external')),
    cas text not null,
    employee_code text,
    employee_name text,
    password_hash text,
    enabled boolean not null default true,
    schema_name text not null,
    org_unit text not null,
    provider_cui text,
    provider_code text,
    provider_name text,
    failed_logins integer not null default 0,
    locked_until timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- One lower-cased haystack for "q", fields split by U+001F so that a search never
    -- matches across two of them. Provider code and name are in it: searching the
    -- provider code finds the external user even when the code differs from the CUI.
    search_text text generated always as (lower(
        username || E'\x1f' || coalesce(employee_code, '') || E'\x1f' ||
        coalesce(employee_name, '') || E'\x1f' || coalesce(provider_code, '') || E'\x1f' ||
        coalesce(provider_name, ''))) stored,
    -- External users never log in: they have no password here (their key is keygen's).
    constraint users_external_no_password check (type = 'internal' or password_hash is null),
    constraint users_external_provider check (type = 'internal' or provider_cui is not null)
);
create index users_cas_type_username on users (cas, type, username);
create index users_type_username on users (type, username);
create index users_search_trgm on users using gin (search_text gin_trgm_ops);

create table roles (
    name text primary key,
    description text not null
);

create table role_rights (
    role text not null references roles (name) on delete cascade,
    right_name text not null,
    primary key (role, right_name)
);

create table user_roles (
    username text not null references users (username) on delete cascade,
    role text not null references roles (name),
    primary key (username, role)
);

-- No foreign key to users: the record of a revoked session outlives a deleted user, so
-- its token stays refused until it expires.
create table sessions (
    jti uuid primary key,
    username text not null,
    issued_at timestamptz not null,
    expires_at timestamptz not null,
    revoked_at timestamptz
);
create index sessions_live_by_user on sessions (username) where revoked_at is null;
create index sessions_expires_at on sessions (expires_at);

-- Every activation key generated or reset for an external user (from KeyIssued). Kept
-- after the user is deleted: it is the history of who was given access, and when.
create table key_changes (
    key_id text primary key,
    username text not null,
    reset boolean not null,
    issued_at timestamptz not null,
    issued_by text not null,
    recorded_at timestamptz not null default now()
);
create index key_changes_username on key_changes (username, issued_at);

-- Certificates registered to external users (from certs events): an external user that
-- still has one may not be deleted.
create table user_certificates (
    certificate_id text primary key,
    username text not null,
    status text not null,
    changed_at timestamptz not null default now()
);
create index user_certificates_live on user_certificates (username) where status <> 'revoked';

insert into roles (name, description) values
    ('national-admin', 'CNAS administrator: every right in every house, issuing authorities included'),
    ('house-admin', 'House administrator: everything in the house, staff accounts and audit included'),
    ('house-operator', 'House operator: providers, activation keys, user certificates and their suspension'),
    ('house-viewer', 'House viewer: reads providers, users, certificates, issuers and the OCSP log');

insert into role_rights (role, right_name)
select 'national-admin', r from unnest(array[
    'providers:read', 'providers:write', 'keys:issue', 'users:read', 'users:write',
    'certificates:read', 'certificates:write', 'certificates:suspend', 'issuers:read',
    'issuers:write', 'ocsp-log:read', 'audit:read']) as r
union all
select 'house-admin', r from unnest(array[
    'providers:read', 'providers:write', 'keys:issue', 'users:read', 'users:write',
    'certificates:read', 'certificates:write', 'certificates:suspend', 'issuers:read',
    'ocsp-log:read', 'audit:read']) as r
union all
select 'house-operator', r from unnest(array[
    'providers:read', 'providers:write', 'keys:issue', 'users:read', 'certificates:read',
    'certificates:write', 'certificates:suspend', 'issuers:read', 'ocsp-log:read']) as r
union all
select 'house-viewer', r from unnest(array[
    'providers:read', 'users:read', 'certificates:read', 'issuers:read', 'ocsp-log:read']) as r;
