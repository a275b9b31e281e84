-- Retention of the OCSP log: whole day partitions older than the cut-off are dropped (a
-- DROP is instant and leaves no bloat, unlike deleting millions of rows). Rows that fell
-- into the default partition are deleted the ordinary way. The writers' advisory lock
-- keeps a drop from racing a partition being created.
create function ocsp_log_drop_days_before(cutoff date) returns setof text
language plpgsql as $$
declare
    part record;
begin
    perform pg_advisory_xact_lock(hashtext('siui-ocsp-log'));
    for part in
        select c.relname
          from pg_inherits i
          join pg_class c on c.oid = i.inhrelid
          join pg_class p on p.oid = i.inhparent
          join pg_namespace n on n.oid = p.relnamespace
         where p.relname = 'ocsp_log' and n.nspname = current_schema()
           and c.relname ~ '^ocsp_log_[0-9]{8}$'
           and to_date(substr(c.relname, 10), 'YYYYMMDD') < cutoff
         order by c.relname
    loop
        execute format('drop table %I', part.relname);
        return next part.relname;
    end loop;
    delete from ocsp_log_default where at < cutoff::timestamp at time zone 'UTC';
end;
$$;
