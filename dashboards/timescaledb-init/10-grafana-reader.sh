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
  -v reader_password="$GRAFANA_DB_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE grafana_reader LOGIN'
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader') \gexec
ALTER ROLE grafana_reader WITH LOGIN PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
-- Dashboard queries are interactive: a runaway query stops instead of loading the database,
-- and a transaction left open (Explore) lets go of the locks it holds, which would queue the
-- retention and compression jobs and every insert behind them.
ALTER ROLE grafana_reader SET statement_timeout = '30s';
ALTER ROLE grafana_reader SET idle_in_transaction_session_timeout = '60s';
-- Any role may take advisory locks and NOTIFY, unless told otherwise. The server serialises
-- operators' actions (downlink order) and its gateway watch with advisory locks, and its
-- instances talk over NOTIFY: a dashboard login holding one of those locks stalled every
-- acknowledgement, and one NOTIFYing could put forged changes on the operators' consoles.
-- Only the owner keeps them (a superuser owner needs no grant; one that is not, has it).
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'pg_catalog' AND (p.proname LIKE 'pg\_%advisory\_%lock%' OR p.proname = 'pg_notify')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, current_user);
  END LOOP;
END $$;
SQL
