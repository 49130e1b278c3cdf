#!/bin/sh
# Grafana's read-only database login. Runs by itself when the TimescaleDB volume is first
# initialised (docker-entrypoint-initdb.d); safe to run again, e.g. on an older volume:
#   docker compose exec timescaledb sh /docker-entrypoint-initdb.d/10-grafana-reader.sh
# A dashboard or a provisioned query can then never change alert data. Default privileges
# cover the tables, views and continuous aggregates that the server's migrations create later
# as the owner role.
set -eu
: "${GRAFANA_DB_PASSWORD:?set GRAFANA_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v reader_password="$GRAFANA_DB_PASSWORD" -v server_role="${SOS_SERVER_DB_ROLE:-}" <<'SQL'
SELECT 'CREATE ROLE grafana_reader LOGIN'
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader') \gexec
ALTER ROLE grafana_reader WITH LOGIN PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
-- Tables the server's migrations create later belong to the role that runs them: the database's
-- owner, or SOS_SERVER_DB_ROLE, when that is not the role running this (run as a superuser then).
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader', r)
  FROM (SELECT DISTINCT r FROM unnest(ARRAY[(SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()),
        NULLIF(:'server_role', '')]) AS r WHERE r IS NOT NULL AND r <> current_user) AS keepers \gexec
-- But the key the server instances sign their bus messages with (their migration 11 takes it
-- back too, when the table comes after this).
SELECT 'REVOKE ALL ON TABLE public.sos_secrets FROM grafana_reader'
  WHERE to_regclass('public.sos_secrets') IS NOT NULL \gexec
-- Dashboard queries are interactive: a runaway query stops instead of loading the database,
-- and a transaction left open (Explore) lets go of the locks it holds, which would queue the
-- retention and compression jobs and every insert behind them.
ALTER ROLE grafana_reader SET statement_timeout = '30s';
ALTER ROLE grafana_reader SET idle_in_transaction_session_timeout = '60s';
-- Any role may take advisory locks unless told otherwise. The server serialises operators'
-- actions (downlink order), its migrations and its gateway watch with advisory locks: a
-- dashboard login holding one stalled every acknowledgement. They are kept for the database's
-- owner, the role running this, and SOS_SERVER_DB_ROLE when the server logs in as another
-- (a superuser needs no grant). (NOTIFY cannot be taken away from anyone: the server's
-- instances sign what they send each other, server/bus-bridge.ts.)
SELECT set_config('sos.server_role', :'server_role', false);
DO $$
DECLARE
  f regprocedure;
  keeper text;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'pg_catalog' AND p.proname LIKE 'pg\_%advisory\_%lock%'
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    FOR keeper IN SELECT DISTINCT r FROM unnest(ARRAY[current_user::text,
        (SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()),
        NULLIF(current_setting('sos.server_role'), '')]) AS r WHERE r IS NOT NULL
    LOOP
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, keeper);
    END LOOP;
  END LOOP;
  -- Run by a role that may not revoke from pg_catalog (a hosted database's owner), the above
  -- only warns: say plainly what that leaves open.
  IF has_function_privilege('grafana_reader', 'pg_catalog.pg_advisory_lock(bigint)', 'EXECUTE') THEN
    RAISE WARNING 'grafana_reader can still take advisory locks (run this as a superuser to take them away): a dashboard user could stall operators'' acknowledgements';
  END IF;
END $$;
SQL
