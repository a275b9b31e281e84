-- The service role owns nothing (shared.migrations: the owner role runs migrations and
-- owns the schema), yet the OCSP log's day partitions are made and dropped at run time.
-- The two functions that do it run as their owner, with their names resolved in this
-- schema only (pg_temp last: the caller cannot shadow ocsp_log with a temporary table).
do $$
begin
    execute format('alter function ocsp_log_ensure_day(date) security definer set search_path = %I, pg_temp',
                   current_schema());
    execute format('alter function ocsp_log_drop_days_before(date) security definer set search_path = %I, pg_temp',
                   current_schema());
end;
$$;
revoke all on function ocsp_log_ensure_day(date) from public;
revoke all on function ocsp_log_drop_days_before(date) from public;
