-- Retention per group of houses (services/ocsp/log/retention.py): a day partition that
-- some houses still keep and others do not is rewritten with the rows still kept, then
-- swapped in for the old one under the writers' advisory lock. Rewriting costs what is
-- kept (usually a few houses' rows), where deleting would cost what goes, leave the
-- partition bloated and vacuum behind it.

-- The rule each trimmed day was last trimmed to, so a day is rewritten only when a
-- group's limit newly passes over it.
create table ocsp_log_trimmed (
    day date primary key,
    kept text not null,
    trimmed_at timestamptz not null default now(),
    rows_kept bigint not null
);

-- Keep in the day's partition the rows of keep_houses, and, when keep_others, of every
-- house not in listed_houses and of none. Returns the rows kept, or null when the day
-- has no partition.
create function ocsp_log_trim_day(day date, keep_houses text[], keep_others boolean,
                                  listed_houses text[]) returns bigint
language plpgsql as $$
declare
    part text := 'ocsp_log_' || to_char(day, 'YYYYMMDD');
    fresh text := 'ocsp_log_' || to_char(day, 'YYYYMMDD') || '_trim';
    lo timestamptz := day::timestamp at time zone 'UTC';
    hi timestamptz := (day + 1)::timestamp at time zone 'UTC';
    kept bigint;
begin
    perform pg_advisory_xact_lock(hashtext('siui-ocsp-log'));
    if to_regclass(quote_ident(current_schema()) || '.' || quote_ident(part)) is null then
        return null;
    end if;
    execute format('create table %I (like ocsp_log including defaults)', fresh);
    execute format('insert into %I select * from %I
                     where cas = any($1) or ($2 and (cas is null or not cas = any($3)))', fresh, part)
        using keep_houses, keep_others, listed_houses;
    get diagnostics kept = row_count;
    execute format('alter table ocsp_log detach partition %I', part);
    execute format('drop table %I', part);
    execute format('alter table %I rename to %I', fresh, part);
    -- Attaching builds the partitioned indexes on the kept rows.
    execute format('alter table ocsp_log attach partition %I for values from (%L) to (%L)',
                   part, lo, hi);
    return kept;
end;
$$;
