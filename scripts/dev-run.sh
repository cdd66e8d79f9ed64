#!/usr/bin/env bash
# `make run`: the agent in the foreground on this machine with configs/dev.toml, a local
# collector alongside, development certificates created on first run. State lives in
# ./dev-state; delete it to start over. Nothing here needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug
state=dev-state
pki=$state/pki
if [ ! -x "$bin/assent" ] || [ ! -x "$bin/assent-collector" ]; then
    echo "make run: building assent and assent-collector (the first build takes a minute or two)"
else
    echo "make run: building (up to date in seconds unless the sources changed)"
fi
# The same packages in one call as `make preview`, so the two share one build.
"${CARGO:-cargo}" build -q -p assent -p assent-collector
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
trap '{ kill $collector; wait $collector; } 2>/dev/null || true' EXIT
# Wait (up to 10 s) until it listens, so the agent's first sync does not meet a refusal.
for _ in $(seq 100); do
    (: </dev/tcp/127.0.0.1/18443) 2>/dev/null && break
    kill -0 $collector 2>/dev/null || { echo "make run: the collector exited:"; cat "$state/collector.log"; exit 1; }
    sleep 0.1
done
echo "make run: collector up on https://localhost:18443 (log: $state/collector.log)"
echo "make run: starting the agent; its log follows (Ctrl-C stops both). In another shell:"
echo "  $bin/assent status --config configs/dev.toml                  # last sync, queue"
echo "  $bin/assent consent show --config configs/dev.toml            # what is granted"
echo "  $bin/assent-collector stats --config configs/dev-collector.toml  # what arrived"
# Ctrl-C reaches the agent too; it stops cleanly and exits 0. An interrupted agent that
# still exits 130 (128 + SIGINT) is a stop the user asked for, not a failure.
status=0
"$bin/assent" run --config configs/dev.toml || status=$?
if [ "$status" -eq 130 ] || [ "$status" -eq 0 ]; then
    echo "make run: stopped"
    exit 0
fi
exit "$status"
