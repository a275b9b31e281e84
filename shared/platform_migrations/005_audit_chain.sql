-- The audit trail as a hash chain (shared.audit_chain): each row gets its place in its
-- service's chain (seq 1, 2, ... without gaps) and row_hash = SHA-256(the previous row's
-- hash || the row's canonical encoding), computed by the service (shared.audit) and
-- checked by deploy.verify_audit.
--
-- Rows written before this migration keep seq and row_hash NULL: the chain starts at the
-- first row written after it, from the genesis (shared.audit_chain.genesis). The verifier
-- counts those older rows but cannot vouch for them (their encoding was never recorded).
alter table audit_log add column if not exists seq bigint unique;
alter table audit_log add column if not exists row_hash bytea;

-- The chain's head, one row: the last row's seq and hash (NULL hash: the genesis). The
-- anchor is where the retained rows begin: the last row the retention purge removed.
-- Appends lock this row, so seq is gapless and the hashes follow each other even when
-- many requests write at once.
create table if not exists audit_chain (
    only_row    boolean primary key default true check (only_row),
    seq         bigint not null default 0,
    hash        bytea,
    anchor_seq  bigint not null default 0,
    anchor_hash bytea
);
insert into audit_chain (only_row) values (true) on conflict do nothing;

-- The service role may not write audit_log nor audit_chain (shared.migrations grants it
-- SELECT only); it appends through these two functions, which run as their owner, the
-- role that ran the migrations. Together they only ever add a row at the head.

-- Lock the head until the transaction ends; where the next row goes.
create or replace function audit_chain_claim(out seq bigint, out hash bytea)
language sql security definer as $$
    select c.seq, c.hash from audit_chain c for update
$$;

-- Add the row ``p_seq`` (the head's next) with the hash the caller computed, and move
-- the head to it. A head that moved since the claim (a caller that did not claim) is
-- refused as a serialization failure, never papered over.
create or replace function audit_append(
    p_seq bigint, p_at timestamptz, p_actor text, p_actor_cas text, p_cas text, p_action text,
    p_target_kind text, p_target_id text, p_status integer, p_result text, p_address text,
    p_details jsonb, p_row_hash bytea) returns bigint
language plpgsql security definer as $$
declare
    head bigint;
    new_id bigint;
begin
    select c.seq into head from audit_chain c for update;
    if p_seq is distinct from head + 1 or p_row_hash is null then
        raise exception 'the audit chain head is at seq %, not %', head, p_seq - 1
            using errcode = '40001';
    end if;
    insert into audit_log (seq, at, actor, actor_cas, cas, action, target_kind, target_id,
                           status, result, address, details, row_hash)
    values (p_seq, p_at, p_actor, p_actor_cas, p_cas, p_action, p_target_kind, p_target_id,
            p_status, p_result, p_address, p_details, p_row_hash)
    returning id into new_id;
    update audit_chain set seq = p_seq, hash = p_row_hash;
    return new_id;
end;
$$;

-- Retention (SIUI_AUDIT_RETENTION_DAYS): remove up to ``batch`` rows older than
-- ``before``. Chained rows go only as the chain's oldest prefix, and the anchor keeps the
-- last one's seq and hash, so what remains still verifies from there. Never a row of the
-- last 30 days (the shortest retention the setting allows): the service role calling this
-- cannot empty its trail. How many went.
create or replace function audit_purge(before timestamptz, batch integer) returns integer
language plpgsql security definer as $$
declare
    anchor bigint;
    cut bigint;
    legacy integer;
    chained integer := 0;
begin
    before := least(before, now() - interval '30 days');
    select c.anchor_seq into anchor from audit_chain c for update;
    delete from audit_log where id in (
        select id from audit_log where seq is null and at < before order by id limit batch);
    get diagnostics legacy = row_count;
    select coalesce(max(s.seq), anchor) into cut from (
        select l.seq, bool_and(l.at < before) over (order by l.seq) as all_old
          from audit_log l where l.seq > anchor and l.seq <= anchor + batch) s
     where s.all_old;
    if cut > anchor then
        update audit_chain
           set anchor_seq = cut, anchor_hash = (select row_hash from audit_log where seq = cut);
        delete from audit_log where seq > anchor and seq <= cut;
        get diagnostics chained = row_count;
    end if;
    return legacy + chained;
end;
$$;

-- A definer function resolves names in its own schema only (pg_temp last, where the
-- caller could otherwise shadow audit_chain with a temporary table), and only the
-- service role, granted by shared.migrations, may call it.
do $$
begin
    execute format('alter function audit_chain_claim() set search_path = %I, pg_temp', current_schema());
    execute format('alter function audit_append(bigint, timestamptz, text, text, text, text, text, '
                   'text, integer, text, text, jsonb, bytea) set search_path = %I, pg_temp', current_schema());
    execute format('alter function audit_purge(timestamptz, integer) set search_path = %I, pg_temp', current_schema());
end;
$$;
revoke all on function audit_chain_claim() from public;
revoke all on function audit_append(bigint, timestamptz, text, text, text, text, text, text,
                                    integer, text, text, jsonb, bytea) from public;
revoke all on function audit_purge(timestamptz, integer) from public;
