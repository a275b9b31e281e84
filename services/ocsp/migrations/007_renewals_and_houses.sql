-- Issue 15. One certificate, several houses: certs may register one (issuer, serial) for
-- the same provider's user of each house, each its own row (and certificate_id); the
-- registry keeps each house's record and answers OCSP by the rule of state/houses.py.
alter table certificates drop constraint certificates_pkey;
alter table certificates add primary key (issuer_id, serial, username);
create index certificates_issuer_serial on certificates (issuer_id, serial);

-- Who the certificate names (shared.holders.Holder as JSON), read from certificate_der
-- when the event is stored: the online channel recognises a renewal by it without
-- parsing every certificate at start. Null for a certificate registered by serial only.
alter table certificates add column holder jsonb;

-- Renewals a house rejected (certs' RenewalRejected): the online channel answers that
-- certificate renewal_rejected with the house's reason instead of renewal_pending.
create table renewal_refusals (
    username text not null,
    issuer_id uuid not null,
    serial numeric(50, 0) not null,
    renewal_id uuid not null,
    reason text not null,
    rejected_at timestamptz not null,
    primary key (username, issuer_id, serial)
);
