#!/usr/bin/env bash
# `make run`: the agent in the foreground on this machine with configs/dev.toml, a local
# collector alongside, development certificates created on first run. State lives in
# ./dev-state; delete it to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p assent -p assent-collector
bin=target/debug
state=dev-state
pki=$state/pki
mkdir -p "$pki" "$state/agent"
chmod 700 "$state" "$state/agent"

if [ ! -f "$pki/ca.pem" ]; then
    echo "make run: creating development certificates in $pki"
    scripts/make-certs.sh "$pki"
fi

if [ ! -f "$state/agent/consent.toml" ]; then
    echo "make run: granting the required categories for development (\`assent consent show\`)"
    "$bin/assent" consent grant --all-required --by "developer (make run)" --config configs/dev.toml
fi

"$bin/assent-collector" serve --config configs/dev-collector.toml 2> "$state/collector.log" &
collector=$!
trap 'kill $collector 2>/dev/null; wait $collector 2>/dev/null' EXIT
# Wait (up to 10 s) until it listens, so the agent's first sync does not meet a refusal.
for _ in $(seq 100); do
    (: </dev/tcp/127.0.0.1/18443) 2>/dev/null && break
    kill -0 $collector 2>/dev/null || { echo "make run: the collector exited:"; cat "$state/collector.log"; exit 1; }
    sleep 0.1
done
echo "make run: collector on https://localhost:18443 (log: $state/collector.log)"
echo "make run: try in another shell:"
echo "  $bin/assent status --config configs/dev.toml"
echo "  $bin/assent-collector stats --config configs/dev-collector.toml"
"$bin/assent" run --config configs/dev.toml
