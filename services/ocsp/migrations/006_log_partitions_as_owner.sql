-- The service role owns nothing (shared.migrations: the owner role runs the migrations
-- and owns the schema), yet the OCSP log's day partitions are made, trimmed and dropped
-- at run time. The functions that do it (every ocsp_log_* function) run as their owner,
-- their names resolved in this schema only: pg_temp last, so a caller's temporary table
-- cannot stand in for ocsp_log. A later migration adding such a function declares it
-- "security definer" with the same search_path itself.
do $$
declare
    fn regprocedure;
begin
    for fn in select p.oid::regprocedure from pg_proc p
               where p.pronamespace = current_schema()::regnamespace and p.proname like 'ocsp\_log\_%'
    loop
        execute format('alter function %s security definer set search_path = %I, pg_temp',
                       fn, current_schema());
        execute format('revoke all on function %s from public', fn);
    end loop;
end;
$$;
