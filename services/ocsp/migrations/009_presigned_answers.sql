-- Pre-signed OCSP answers (issue 14): one signed, nonce-less answer per registered
-- certificate and CertID hash algorithm, made by the one elected presigner (advisory
-- lock) and read by every worker of every responder, so that all of them serve the same
-- bytes (and the same ETag) for the same state. ECDSA signatures are randomised: only
-- sharing the bytes makes the answers identical.
create sequence presigned_answers_seq;

create table presigned_answers (
    issuer_id uuid not null,
    serial numeric(50, 0) not null,
    -- The CertID's hash algorithm (asn1crypto's name: sha1, sha256).
    hash_algorithm text not null,
    -- The OCSPResponse, exactly as served.
    der bytea not null,
    -- What the answer says ('good', or 'revoked <epoch> <reason>'): a worker serves it only
    -- while its registry holds that same state.
    state text not null,
    -- SHA-1 of the signer's public key (the responderID byKey): a worker serves it only
    -- while that is the signer it would use (a rotation or a new delegate re-signs).
    signer_key_hash bytea not null,
    produced_at timestamptz not null,
    next_update timestamptz not null,
    -- Set from the sequence on every write. Only the lock holder writes, on the lock's
    -- own connection, so rows commit in seq order and "seq > last seen" misses none.
    seq bigint not null default nextval('presigned_answers_seq'),
    primary key (issuer_id, serial, hash_algorithm)
);
alter sequence presigned_answers_seq owned by presigned_answers.seq;
create index presigned_answers_by_seq on presigned_answers (seq);
