#!/usr/bin/env bash
# Starts the local PostgreSQL 15 cluster and creates the role and database
# the tests (and a local wsgate -config-db) use. Idempotent; needs root (or
# the postgres user). Prints the connection URL.
set -euo pipefail
db=${WSGATE_PG_DB:-wsgate_test}
user=${WSGATE_PG_USER:-wsgate}
pass=${WSGATE_PG_PASSWORD:-wsgate}
if ! command -v pg_ctlcluster >/dev/null; then
	echo "pg-up: PostgreSQL is not installed; installing postgresql-15" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi
if ! pg_lsclusters -h | awk '$1==15 && $2=="main" {found=1} END {exit !found}'; then
	pg_createcluster 15 main >/dev/null
fi
if ! pg_lsclusters -h | awk '$1==15 && $2=="main" && $4=="online" {ok=1} END {exit !ok}'; then
	pg_ctlcluster 15 main start
fi
for i in $(seq 1 50); do
	su postgres -c "pg_isready -q -p 5432" && break
	sleep 0.2
done
psql_su() { su postgres -c "psql -v ON_ERROR_STOP=1 -qAt -p 5432 $*"; }
if [ "$(psql_su "-c \"SELECT 1 FROM pg_roles WHERE rolname='$user'\"")" != "1" ]; then
	psql_su "-c \"CREATE ROLE $user LOGIN PASSWORD '$pass'\""
fi
if [ "$(psql_su "-c \"SELECT 1 FROM pg_database WHERE datname='$db'\"")" != "1" ]; then
	psql_su "-c \"CREATE DATABASE $db OWNER $user\""
fi
echo "postgres://$user:$pass@127.0.0.1:5432/$db?sslmode=disable"
