#!/usr/bin/env bash
# End to end for a cross target: the target's dist `assent`, run under qemu-user, grants
# the required categories, collects from the Raspberry Pi fixture into its buffer, and
# syncs over TLS (mutual TLS) to an `assent-collector` running natively on this host.
# Usage: smoke-cross.sh "QEMU RUNNER" PATH/TO/TARGET/assent FIXTURE_ROOT
set -euo pipefail
runner=$1 binary=$2 root=$3
cd "$(dirname "$0")/.."
cargo build -q -p assent-collector
dir=$(mktemp -d)
collector_pid=
cleanup() { [ -n "$collector_pid" ] && kill "$collector_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
scripts/make-certs.sh "$dir/pki"
port=$((20000 + RANDOM % 20000))
. scripts/local-collector.sh
start_local_collector "$dir" "$port"
cat > "$dir/assent.toml" <<TOML
state_dir = "$dir/state"
[collector]
url = "https://localhost:$port"
ca_file = "$dir/pki/ca.pem"
client_cert_file = "$dir/pki/device.pem"
client_key_file = "$dir/pki/device.key"
[sync]
metered = "allow"
TOML
run="$runner $binary"
$run consent grant --all-required --config "$dir/assent.toml"
$run collect --root "$root" --config "$dir/assent.toml"
db="$dir/state/buffer.db"
failed=0
check() { if [ "$2" != "$3" ]; then echo "smoke FAILED: $1: got '$2', want '$3'"; failed=1; fi; }
check "integrity" "$(sqlite3 "$db" 'PRAGMA integrity_check')" ok
check "snapshots" "$(sqlite3 "$db" "SELECT group_concat(category, ',') FROM (SELECT category FROM records WHERE kind = 'snapshot' ORDER BY seq)")" "device_id,hardware,os,network"
$run sync --once --config "$dir/assent.toml"
check "events at the collector" "$(sqlite3 "$dir/collector.db" "SELECT group_concat(category, ',') FROM (SELECT category FROM events ORDER BY seq)")" "device_id,hardware,os,network"
check "board model arrived" "$(sqlite3 "$dir/collector.db" "SELECT count(*) FROM events WHERE category = 'hardware' AND payload_json LIKE '%Raspberry Pi 4 Model B Rev 1.4%'")" 1
check "queue drained" "$(sqlite3 "$db" "SELECT count(*) FROM records WHERE payload IS NOT NULL AND category <> 'consent'")" 0
leaks=$(grep -rlF 100000003a9b6c2d "$dir/state" "$dir/collector.db" || true)
check "raw serial number in state files or at the collector" "$leaks" ""
if [ "$failed" = 0 ]; then echo "smoke: 1 passed, 0 failed"; else echo "smoke: 0 passed, 1 failed"; exit 1; fi
