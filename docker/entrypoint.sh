#!/bin/sh
# The orderstream images' entrypoint: secrets from files, then the binary.
#
# For each secret-bearing variable below, NAME_FILE may name a file holding
# NAME's value (a Docker or Kubernetes secret), read without trailing
# newlines:
#   ORDERSTREAM_DATABASE_URL   carries the PostgreSQL password (DATABASE_URL,
#                              its documented alias, too)
#   ORDERSTREAM_KAFKA_OPTIONS  may carry SASL or TLS key passwords
# (orderstream-analytics reads ORDERSTREAM_METABASE_ADMIN_PASSWORD_FILE and
# ORDERSTREAM_ANALYST_PASSWORD_FILE itself.) The list is explicit: a generic
# "every *_FILE" would also swallow unrelated variables such as SSL_CERT_FILE.
# Setting both NAME and NAME_FILE is an error, as in the official PostgreSQL
# image: which one wins would otherwise be a guess.
set -eu

for name in ORDERSTREAM_DATABASE_URL DATABASE_URL ORDERSTREAM_KAFKA_OPTIONS; do
  eval "file=\${${name}_FILE:-}"
  [ -n "$file" ] || continue
  eval "value=\${${name}:-}"
  if [ -n "$value" ]; then
    echo "orderstream-entrypoint: both $name and ${name}_FILE are set; set only one" >&2
    exit 1
  fi
  if [ ! -r "$file" ]; then
    echo "orderstream-entrypoint: ${name}_FILE=$file is not a readable file" >&2
    exit 1
  fi
  value="$(cat "$file")"
  export "$name=$value"
done

exec "$@"
