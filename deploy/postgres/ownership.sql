-- What the service role owns in this database passes to the owner role (deploy/setup.sh
-- runs this as a superuser connected to the database, after roles.sql, with psql
-- variables s and o). Only the schemas the service role owns and the objects in them are
-- touched (REASSIGN OWNED would also take every other database it owns on the cluster).
-- The services' next start (shared.migrations, as the owner) grants the service role its
-- share again. Idempotent: a second run finds nothing to move.
SELECT set_config('siui.service_role', :'s', false) AS service_role,
       set_config('siui.owner_role', :'o', false) AS owner_role \gset
DO $$
DECLARE
    service oid := (SELECT oid FROM pg_roles WHERE rolname = current_setting('siui.service_role'));
    owner_role text := current_setting('siui.owner_role');
    ns record;
    obj record;
BEGIN
    FOR ns IN SELECT oid, nspname FROM pg_namespace WHERE nspowner = service LOOP
        -- Tables first: their indexes and the sequences they own follow them.
        FOR obj IN SELECT c.oid::regclass AS name FROM pg_class c
                    WHERE c.relnamespace = ns.oid AND c.relowner = service
                      AND c.relkind IN ('r', 'p', 'v', 'm', 'f') LOOP
            EXECUTE format('ALTER TABLE %s OWNER TO %I', obj.name, owner_role);
        END LOOP;
        FOR obj IN SELECT c.oid::regclass AS name FROM pg_class c
                    WHERE c.relnamespace = ns.oid AND c.relowner = service AND c.relkind = 'S' LOOP
            EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', obj.name, owner_role);
        END LOOP;
        FOR obj IN SELECT p.oid::regprocedure AS name FROM pg_proc p
                    WHERE p.pronamespace = ns.oid AND p.proowner = service LOOP
            EXECUTE format('ALTER ROUTINE %s OWNER TO %I', obj.name, owner_role);
        END LOOP;
        FOR obj IN SELECT t.oid::regtype AS name, t.typtype FROM pg_type t
                    WHERE t.typnamespace = ns.oid AND t.typowner = service
                      AND t.typtype IN ('e', 'd', 'r') LOOP
            EXECUTE format('ALTER %s %s OWNER TO %I', CASE obj.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                           obj.name, owner_role);
        END LOOP;
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', ns.nspname, owner_role);
        RAISE NOTICE 'schema % now owned by %', ns.nspname, owner_role;
    END LOOP;
END;
$$;
