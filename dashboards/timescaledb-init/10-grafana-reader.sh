#!/bin/sh
# Runs once, when the TimescaleDB volume is first initialised (docker-entrypoint-initdb.d).
# Grafana reads through its own login that can only SELECT: a dashboard or a provisioned query
# can never change alert data. Default privileges cover the tables, views and continuous
# aggregates that the server's migrations create later as the owner role.
set -eu
: "${GRAFANA_DB_PASSWORD:?set GRAFANA_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v reader_password="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
-- Dashboard queries are interactive: a runaway query stops instead of loading the database.
ALTER ROLE grafana_reader SET statement_timeout = '30s';
SQL
