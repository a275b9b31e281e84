-- The OCSP log ("Log OCSP") and the external users' current activation-key digests.

-- One row per OCSP answer or online connect. Written only by COPY batches (logstore.py);
-- partitioned by UTC day so that old days can be dropped whole and time-range queries
-- prune to the days they ask about. Ids come from one sequence, and writers take an
-- advisory lock around id assignment and commit, so ids become visible in order: the
-- live stream can tail "id > last seen" without ever skipping a late commit.
create sequence ocsp_log_id_seq;

create table ocsp_log (
    id             bigint not null default nextval('ocsp_log_id_seq'),
    at             timestamptz not null,
    operation      text not null,          -- 'ocsp' | 'connect'
    status         text not null,          -- good, revoked, unknown, unauthorized, malformed,
                                           -- try_later, online, offline
    latency_ms     real not null,
    client         text,                   -- the caller's address
    cas            text,                   -- the certificate holder's house, when known
    username       text,                   -- the external user, when known
    serial         text,                   -- certificate serial, decimal
    issuer_id      text,
    certificate_id text,
    detail         text                    -- reason code of a refusal, and the like
) partition by range (at);

alter sequence ocsp_log_id_seq owned by ocsp_log.id;

-- Catches what no day partition takes (a clock far off); ocsp_log_ensure_day moves such
-- rows into their day's partition when it creates it.
create table ocsp_log_default partition of ocsp_log default;

create index ocsp_log_by_id on ocsp_log (id);
create index ocsp_log_by_cas on ocsp_log (cas, id);
create index ocsp_log_by_username on ocsp_log (username, id);
create index ocsp_log_by_serial on ocsp_log (serial, id);

-- Create the partition of one UTC day unless it exists. Identifiers are built here, with
-- format('%I'), so the service never formats SQL itself. Several processes call it at
-- start: the advisory lock (the same one the writers take) makes that safe.
create function ocsp_log_ensure_day(day date) returns boolean
language plpgsql as $$
declare
    part text := 'ocsp_log_' || to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp at time zone 'UTC';
    hi timestamptz := (day + 1)::timestamp at time zone 'UTC';
begin
    perform pg_advisory_xact_lock(hashtext('siui-ocsp-log'));
    if to_regclass(quote_ident(current_schema()) || '.' || quote_ident(part)) is not null then
        return false;
    end if;
    execute format('create table %I (like ocsp_log including defaults)', part);
    -- Rows of that day that fell into the default partition move into the new one;
    -- otherwise attaching would fail.
    execute format('with moved as (delete from ocsp_log_default where at >= $1 and at < $2 returning *)
                    insert into %I select * from moved', part) using lo, hi;
    execute format('alter table ocsp_log attach partition %I for values from (%L) to (%L)',
                   part, lo, hi);
    return true;
end;
$$;

-- Per external user, the digest of their current activation key (from KeyIssued), and the
-- digests of the keys a reset replaced, so a connect with an old key can say so.
create table external_user_keys (
    username         text primary key,        -- <CUI>_CAS-<cas>
    cas              text not null,
    provider_cui     text,
    provider_name    text,
    key_digest       text,                    -- hex HMAC-SHA256 of the normalized serial
    issued_at        timestamptz,             -- of key_digest; an older KeyIssued never wins
    previous_digests text[] not null default '{}',
    deleted_at       timestamptz,             -- ExternalUserDeleted: connects say unknown_user
    -- +1 on every change: a process refreshing its in-memory copy keeps the higher one,
    -- whatever order a full reload and a single-user refresh finish in.
    version          bigint not null default 1
);
