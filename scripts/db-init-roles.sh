#!/bin/sh
# Create PneumoWeb's two database roles and its database. Run once by a superuser: docker-compose mounts it in
# the postgres image's /docker-entrypoint-initdb.d; elsewhere run it with PG* variables pointing at the server.
#   pneumoweb_owner  owns the database and every table; runs `migrate` and then `setup_db_roles`.
#   pneumoweb_app    what web and workers connect as; `setup_db_roles` grants it its privileges, none of which let
#                    it UPDATE, DELETE, TRUNCATE, ALTER or disable triggers on the audit tables.
set -eu
: "${PNEUMO_DB_OWNER_PASSWORD:?set PNEUMO_DB_OWNER_PASSWORD}"
: "${PNEUMO_DB_APP_PASSWORD:?set PNEUMO_DB_APP_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v owner_password="$PNEUMO_DB_OWNER_PASSWORD" -v app_password="$PNEUMO_DB_APP_PASSWORD" <<'SQL'
CREATE ROLE pneumoweb_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE pneumoweb_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'app_password';
CREATE DATABASE pneumoweb OWNER pneumoweb_owner;
-- Nobody but the two roles connects; the app role also gets no TEMPORARY privilege.
REVOKE ALL ON DATABASE pneumoweb FROM PUBLIC;
GRANT CONNECT ON DATABASE pneumoweb TO pneumoweb_app;
SQL
