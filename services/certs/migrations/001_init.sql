-- certs: issuing authorities, the external users certificates are registered to, the
-- certificates themselves and what happened to each. search_path is the certs schema.

create table issuers (
    id uuid primary key,
    -- Shown as the seed shows it (C=RO, ..., CN=...); subject_der is the exact encoding.
    subject_dn text not null,
    subject_der bytea not null,
    -- The DN normalised (attribute order, case and spacing ignored): how a typed or
    -- differently encoded DN finds its issuer, and why one DN is registered only once.
    dn_key text not null unique,
    certificate_der bytea not null,
    serial numeric(50, 0) not null,
    not_before timestamptz not null,
    not_after timestamptz not null,
    -- What OCSP CertIDs carry (RFC 6960 4.1.1): hashes of the subject DER and of the key.
    name_sha1 bytea not null,
    key_sha1 bytea not null,
    name_sha256 bytea not null,
    key_sha256 bytea not null,
    created_at timestamptz not null,
    created_by text not null,
    updated_at timestamptz,
    updated_by text
);

-- Fed by ExternalUserCreated / ExternalUserDeleted: this service never reads users' tables.
create table external_users (
    username text primary key,
    cas text not null,
    provider_cui text not null,
    provider_code text not null,
    provider_name text not null,
    schema text not null,
    org_unit text not null,
    -- occurred_at of the newest event applied, so that a late, older event changes nothing.
    event_at timestamptz not null,
    deleted_at timestamptz
);
create index external_users_cas on external_users (cas);

create table certificates (
    id uuid primary key,
    username text not null references external_users (username),
    cas text not null,
    provider_cui text not null,
    issuer_id uuid not null references issuers (id),
    -- Up to 20 octets: beyond bigint, so numeric, stored exactly.
    serial numeric(50, 0) not null check (serial >= 0),
    subject text,
    not_before timestamptz,
    not_after timestamptz,
    certificate_der bytea,
    status text not null default 'active' check (status in ('active', 'suspended', 'revoked')),
    suspended_at timestamptz,
    revoked_at timestamptz,
    revocation_reason text,
    last_used_at timestamptz,
    created_at timestamptz not null,
    created_by text not null,
    updated_at timestamptz,
    unique (issuer_id, serial)
);
create index certificates_cas_created on certificates (cas, created_at desc);
create index certificates_username on certificates (username);
create index certificates_provider on certificates (provider_cui);
-- The expiry warning list: live certificates by end of validity.
create index certificates_expiring on certificates (not_after) where status <> 'revoked';

create table certificate_history (
    id bigserial primary key,
    certificate_id uuid not null references certificates (id),
    at timestamptz not null,
    actor text not null,
    action text not null check (action in ('registered', 'suspended', 'reinstated', 'revoked')),
    reason text,
    comment text
);
create index certificate_history_certificate on certificate_history (certificate_id, id);
