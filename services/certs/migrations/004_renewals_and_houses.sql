-- Issue 15: a renewed certificate never cuts a provider off.

-- One certificate, several houses: the same (issuer, serial) may be registered for the
-- same provider's external user of each house (<CUI>_CAS-B and <CUI>_CAS-CJ), each row
-- its house's own (suspended, reinstated, revoked by that house alone). That no other
-- provider shares it is a rule operations.register_certificate keeps under a lock.
alter table certificates drop constraint certificates_issuer_id_serial_key;
alter table certificates add constraint certificates_issuer_serial_user unique (issuer_id, serial, username);
create index certificates_issuer_serial on certificates (issuer_id, serial);

-- A certificate a provider presented on the online channel that is not registered but
-- names the holder of one registered to that user: it waits for the house's decision.
-- Everything is read from the certificate itself; nobody types a serial.
create table renewals (
    id uuid primary key,
    username text not null references external_users (username),
    cas text not null,
    provider_cui text not null,
    issuer_id uuid not null references issuers (id),
    serial numeric(50, 0) not null check (serial > 0),
    subject text not null,
    not_before timestamptz not null,
    not_after timestamptz not null,
    certificate_der bytea not null,
    -- The registered certificate it follows (the newest live one of the same holder).
    replaces uuid not null references certificates (id),
    presented_at timestamptz not null,
    presented_from text,
    -- A desktop retries; the first presentation is the request, the last is kept too.
    last_presented_at timestamptz not null,
    status text not null default 'pending' check (status in ('pending', 'approved', 'rejected')),
    decided_at timestamptz,
    decided_by text,
    reason text,
    -- The certificate the approval registered.
    certificate_id uuid references certificates (id),
    unique (username, issuer_id, serial),
    check ((status = 'pending') = (decided_at is null))
);
create index renewals_cas_status on renewals (cas, status, presented_at desc);

-- Per-house settings of renewals. No row: the national default (automatic approval off).
create table house_renewal_settings (
    cas text primary key,
    auto_approve boolean not null default false,
    updated_at timestamptz not null,
    updated_by text not null
);

alter table certificate_history drop constraint certificate_history_action_check;
alter table certificate_history add constraint certificate_history_action_check
    check (action in ('registered', 'suspended', 'reinstated', 'revoked', 'revoked_by_issuer', 'renewed'));
