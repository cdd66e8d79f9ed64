#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster for the tests and prints the connection string
# the tests read from ASSENT_TEST_PG. Usage: scripts/pg-test-cluster.sh DIR [PORT]
# The cluster listens only on a Unix socket in DIR (no TCP), runs as the system user
# assent-pg when started by root (initdb refuses root), trusts local connections and
# runs with fsync off (it holds test data only) unless ASSENT_PG_FSYNC=on, as the
# benchmarks set it, so that their figures are for a durable server. Idempotent: a running cluster in DIR is
# reused. Stop it with: pg_ctl -D DIR/data stop (as that user).
set -euo pipefail
dir=${1:?usage: pg-test-cluster.sh DIR [PORT]}
port=${2:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bin/initdb" ] || { echo "postgresql is not installed (apt-get install postgresql)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
as_owner=()
if [ "$(id -u)" = 0 ]; then
    id assent-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin assent-pg
    chown assent-pg "$dir"
    as_owner=(runuser -u assent-pg --)
fi
if [ ! -f "$dir/data/PG_VERSION" ]; then
    "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U assent --auth=trust --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
fi
if ! "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/server.log" \
        -o "-k $dir -p $port -c listen_addresses= -c fsync=${ASSENT_PG_FSYNC:-off} -c max_connections=300" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
fi
echo "host=$dir port=$port user=assent"
