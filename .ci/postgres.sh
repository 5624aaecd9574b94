#!/usr/bin/env bash
# Start a local PostgreSQL for the case-store tests (idempotent; run as root).
#
#   eval "$(bash .ci/postgres.sh)"     # exports TEST_POSTGRES_URL
#
# Installs Debian's postgresql if it is missing, creates/starts a cluster that
# listens on 127.0.0.1, gives the postgres role a password (TCP logins use
# scram-sha-256 on Debian) and creates the test database. Progress goes to
# stderr; the only thing printed on stdout is the export line.
set -euo pipefail

PORT="${PGPORT:-5432}"
DB="${PG_TEST_DB:-triage_test}"
PASSWORD="${PG_TEST_PASSWORD:-postgres}"

log() { echo "postgres.sh: $*" >&2; }

if [[ "$(id -u)" != 0 ]]; then
  log "must run as root (it installs packages and manages the cluster)"
  exit 1
fi

if ! command -v pg_lsclusters >/dev/null 2>&1 || [[ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]]; then
  log "installing PostgreSQL from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
CLUSTER=main

# Containers often lack the socket directory that systemd-tmpfiles would create.
install -d -o postgres -g postgres -m 2775 /var/run/postgresql

if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {found = 1} END {exit !found}'; then
  log "creating cluster $VERSION/$CLUSTER on port $PORT"
  pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" >&2
fi

status="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}')"
if [[ "$status" != online* ]]; then
  log "starting cluster $VERSION/$CLUSTER"
  pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi

for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$PORT" && break
  sleep 0.5
done
if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
  log "server did not become ready on 127.0.0.1:$PORT"
  exit 1
fi

psql_admin() { runuser -u postgres -- psql -p "$PORT" -v ON_ERROR_STOP=1 -qAt "$@"; }

psql_admin -c "ALTER ROLE postgres PASSWORD '${PASSWORD}'" >&2
if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '${DB}'")" != 1 ]]; then
  log "creating database $DB"
  runuser -u postgres -- createdb -p "$PORT" "$DB" >&2
fi

log "ready: database $DB on 127.0.0.1:$PORT"
echo "export TEST_POSTGRES_URL=postgresql+psycopg://postgres:${PASSWORD}@127.0.0.1:${PORT}/${DB}"
