#!/bin/bash
# PostgreSQL init script of the Compose stack: the warehouse's login roles.
#
# The official postgres image runs it once, on an empty data volume, after it
# created the database $POSTGRES_DB (orderstream). It creates (or, run again
# by hand, re-passwords) three roles:
#
#   orderstream_owner    owns the database and so its public schema: the
#                        migrations run as it and create every table
#   orderstream_writer   the consumer's role: reads and writes the tables
#   orderstream_analyst  read-only (Metabase, the report, the lag exporter)
#
# Table privileges are not granted here: the migrations grant them, so that
# a database migrated any other way ends up the same.
#
# Passwords come from ORDERSTREAM_{OWNER,WRITER,ANALYST}_PASSWORD, or from a
# file named by the same variable with _FILE appended (Docker secrets). They
# reach psql through its environment, read by `\getenv` (psql 15+), never on
# its command line (any user sees a process's argv in `ps`, only the same
# user its environment), and are quoted by psql (:'name'), never spliced
# into SQL text.
#
# The image sources this file when it is not executable: so no `exit` and no
# `set -u` at the top level, only functions that fail.
set -eo pipefail

orderstream_secret() {
  local name="$1" file_name="${1}_FILE"
  local value="${!name:-}" file="${!file_name:-}"
  if [[ -n "$value" && -n "$file" ]]; then
    echo "10-orderstream-roles: both $name and $file_name are set; set only one" >&2
    return 1
  fi
  if [[ -n "$file" ]]; then
    value="$(<"$file")"
  fi
  if [[ -z "$value" ]]; then
    echo "10-orderstream-roles: $name is empty; run \`make secrets\` (it writes compose/.env)" >&2
    return 1
  fi
  printf '%s' "$value"
}

orderstream_roles() {
  local owner writer analyst
  owner="$(orderstream_secret ORDERSTREAM_OWNER_PASSWORD)"
  writer="$(orderstream_secret ORDERSTREAM_WRITER_PASSWORD)"
  analyst="$(orderstream_secret ORDERSTREAM_ANALYST_PASSWORD)"
  ORDERSTREAM_ROLES_OWNER="$owner" ORDERSTREAM_ROLES_WRITER="$writer" ORDERSTREAM_ROLES_ANALYST="$analyst" \
    psql -v ON_ERROR_STOP=1 -X -q --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-orderstream}" <<'SQL'
\getenv owner_password ORDERSTREAM_ROLES_OWNER
\getenv writer_password ORDERSTREAM_ROLES_WRITER
\getenv analyst_password ORDERSTREAM_ROLES_ANALYST
SELECT format('CREATE ROLE %I LOGIN', name)
  FROM unnest(ARRAY['orderstream_owner', 'orderstream_writer', 'orderstream_analyst']) AS name
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec
ALTER ROLE orderstream_owner   WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
ALTER ROLE orderstream_writer  WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'writer_password';
ALTER ROLE orderstream_analyst WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'analyst_password';
-- Whatever SQL someone types into Metabase, the analyst's sessions cannot write.
ALTER ROLE orderstream_analyst SET default_transaction_read_only = on;
SELECT format('ALTER DATABASE %I OWNER TO orderstream_owner', current_database()) \gexec
-- Only orderstream's roles (and the superuser) may connect to the warehouse.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO orderstream_owner, orderstream_writer, orderstream_analyst',
              current_database()) \gexec
SQL
  echo "10-orderstream-roles: roles orderstream_owner, orderstream_writer, orderstream_analyst ready"
}

orderstream_roles
