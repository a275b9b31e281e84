-- The issuing authority's own word on its certificates (issue 16): where its CRLs are,
-- what the newest one verified said and when, and what each registered certificate's
-- issuer says of it. SIUI's own state (status) and the issuer's are kept apart: a house
-- suspends and reinstates, the issuer revokes, and each is shown as itself.

-- crl_urls: set by CNAS (PATCH /v1/issuers/{id}); the URLs of the registered
-- certificates' CRL Distribution Points are read from the certificates themselves.
alter table issuers add column crl_urls text[] not null default '{}';
-- When the status was last fetched (success or not), and the newest verified CRL's
-- thisUpdate / nextUpdate; status_error is the last failure (null after a success).
alter table issuers add column status_checked_at timestamptz;
alter table issuers add column crl_this_update timestamptz;
alter table issuers add column crl_next_update timestamptz;
-- The URL and time of the newest CRL that verified: a certificate registered after it
-- was read has not been checked yet (its issuer status is unknown until the next read).
alter table issuers add column crl_url text;
alter table issuers add column crl_read_at timestamptz;
alter table issuers add column status_error text;
-- When the fetcher takes this issuer next (null: as soon as it has a source). A refresh
-- request sets it to now; the fetcher claims it by moving it a lease ahead.
alter table issuers add column status_due_at timestamptz;

-- Read from the certificate's CRL Distribution Points extension at registration.
alter table certificates add column crl_urls text[] not null default '{}';
-- Set once, when a verified CRL of the issuer lists the serial: the issuer's revocation
-- time and CRLReason (asn1crypto's spelling, as the OCSP service signs it).
alter table certificates add column issuer_revoked_at timestamptz;
alter table certificates add column issuer_revocation_reason text;
alter table certificates add column issuer_revocation_seen_at timestamptz;
create index certificates_issuer_live on certificates (issuer_id) where issuer_revoked_at is null;

alter table certificate_history drop constraint certificate_history_action_check;
alter table certificate_history add constraint certificate_history_action_check
    check (action in ('registered', 'suspended', 'reinstated', 'revoked', 'revoked_by_issuer'));
