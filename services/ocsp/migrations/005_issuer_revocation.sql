-- The issuing authority's revocation of a registered certificate (CertificateRevokedByIssuer,
-- and carried by every later state event): kept beside SIUI's own status, and answered
-- as revoked with the issuer's time and reason while SIUI has not revoked it itself.
alter table certificates add column issuer_revoked_at timestamptz;
alter table certificates add column issuer_revocation_reason text;
