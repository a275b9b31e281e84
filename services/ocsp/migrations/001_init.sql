-- ocsp: what the responder answers from, fed by certs' events (this service never reads
-- certs' tables). Every process loads these tables into memory at start and follows
-- changes through NOTIFY 'ocsp_state'; the hot path never queries them.

create table issuers (
    id uuid primary key,
    subject_dn text not null,
    certificate_der bytea not null,
    -- occurred_at of the newest issuer event applied: a late, older one changes nothing.
    event_at timestamptz not null,
    updated_at timestamptz not null default now()
);

-- No foreign key to issuers: a certificate's event may arrive before its issuer's.
create table certificates (
    issuer_id uuid not null,
    -- Up to 20 octets: beyond bigint, so numeric, stored exactly.
    serial numeric(50, 0) not null,
    certificate_id uuid not null unique,
    username text not null,
    cas text not null,
    provider_cui text not null,
    status text not null check (status in ('active', 'suspended', 'revoked')),
    -- When the current suspension began (the certificateHold revocation time).
    suspended_at timestamptz,
    revoked_at timestamptz,
    revocation_reason text,
    not_before timestamptz,
    not_after timestamptz,
    certificate_der bytea,
    -- certs' changed_at of the state held here: events may arrive out of order, and an
    -- older state must never overwrite a newer one.
    changed_at timestamptz not null,
    updated_at timestamptz not null default now(),
    primary key (issuer_id, serial),
    check (status <> 'suspended' or suspended_at is not null),
    check (status <> 'revoked' or revoked_at is not null)
);
create index certificates_username on certificates (username);

-- Delegated OCSP signers (PUT /v1/issuers/{id}/signer): the issuer's own responder
-- certificate, and its private key encrypted with AES-256-GCM under the data key
-- (associated data: the issuer id, so a ciphertext cannot be moved to another issuer).
create table signers (
    issuer_id uuid primary key,
    certificate_der bytea not null,
    key_nonce bytea not null,
    key_ciphertext bytea not null,
    created_at timestamptz not null default now(),
    created_by text not null
);
