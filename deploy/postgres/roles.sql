-- The database and its two roles (deploy/setup.sh runs this as a superuser, connected to
-- the "postgres" database, with psql variables: s/sp the service role and its password,
-- o/op the owner role and its password, d the database). Idempotent; ownership.sql then
-- hands what the service role owned in d to the owner.
--
-- The owner (o) owns the database, the schemas and everything in them, and runs the
-- migrations; the service role (s) is what the services connect as, and gets from the
-- migrations (shared.migrations) its share of each schema: no DDL, and the audit trail
-- read-only. So a compromised or buggy service cannot rewrite its audit trail.
SELECT format('CREATE ROLE %I LOGIN%s', :'s',
              CASE WHEN :'sp' = '' THEN '' ELSE format(' PASSWORD %L', :'sp') END)
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'s')
\gexec
SELECT format('CREATE ROLE %I LOGIN CREATEDB%s', :'o',
              CASE WHEN :'op' = '' THEN '' ELSE format(' PASSWORD %L', :'op') END)
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'o')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'d', :'o')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'d')
\gexec
-- A database made before the split belongs to the service role: it passes to the owner.
-- One owned by anybody else is left alone (not ours to take).
SELECT format('ALTER DATABASE %I OWNER TO %I', :'d', :'o')
  FROM pg_database WHERE datname = :'d' AND datdba = (SELECT oid FROM pg_roles WHERE rolname = :'s')
\gexec
-- The service role connects and may use temporary tables; it may not create schemas
-- (the older set-up granted it ALL); nobody else is let in by default.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC, %I', :'d', :'s')
\gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'d', :'s')
\gexec
