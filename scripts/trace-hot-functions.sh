#!/usr/bin/env bash
# `make hot-functions`: writes scripts/hot-functions.txt, the functions the dist link puts
# first in .text (scripts/link-hot-first.sh; docs/performance.md, "Code layout").
# For each TARGET given (default: the static musl builds for x86_64 and aarch64), it runs
# that target's symbol-keeping first link (target/TARGET/dist/deps/assent-*.unordered,
# left by the dist link) under qemu-user, logging every translated block, through what
# a device does all day: start, collect every category, sync to a local collector over
# TLS, take events from local programs, answer status and sync requests, then idle
# through several collection and sync intervals. Functions are listed in the order they
# first ran, by name without the hash; each later target adds only new names.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
seconds=${TRACE_SECONDS:-40}
port=${TRACE_PORT:-18743}
out=scripts/hot-functions.txt

cargo build -q -p assent -p assent-collector
work=$(mktemp -d)
collector_pid=
agent=
notify_pid=
trap 'kill $collector_pid $agent $notify_pid 2>/dev/null; rm -rf "$work"' EXIT
scripts/make-certs.sh "$work/pki" >/dev/null
. scripts/local-collector.sh
start_local_collector "$work" "$port"

symbols=()
for target in "${targets[@]}"; do
    arch=${target%%-*}
    bin=$(ls -t target/"$target"/dist/deps/assent-*.unordered 2>/dev/null | head -n1 || true)
    [ -n "$bin" ] || { echo "no target/$target/dist/deps/assent-*.unordered: make cross-build TARGET=$target"; exit 1; }
    state=$work/$target
    mkdir -p "$state"
    chmod 700 "$state"
    cat >"$state/assent.toml" <<EOF
state_dir = "$state/state"
log_level = "info"
[categories.hardware]
interval_seconds = 10
[categories.os]
interval_seconds = 10
[categories.network]
interval_seconds = 10
[events]
socket = "$state/events.sock"
[control]
socket = "$state/control.sock"
[collector]
url = "https://localhost:$port"
ca_file = "$work/pki/ca.pem"
client_cert_file = "$work/pki/device.pem"
client_key_file = "$work/pki/device.key"
[sync]
interval_seconds = 10
metered = "allow"
EOF
    cli=(target/debug/assent)
    # A category this build does not offer is refused; the rest stay granted.
    for category in device_id hardware os network network_detail location software app_events; do
        "${cli[@]}" consent grant "$category" --by trace --config "$state/assent.toml" >/dev/null 2>&1 || true
    done
    echo "trace-hot-functions: $target, $seconds s under qemu-$arch"
    # As systemd starts it (configs/assent.service: Type=notify, WatchdogSec): READY=1 and
    # watchdog pings to a notification socket, here every 5 s.
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    s.recv(4096)' "$state/notify.sock" &
    notify_pid=$!
    # -cpu max: the CPU features a device has (AES, carry-less multiply), so that ring takes
    # the code paths it takes there, not its fallbacks.
    NOTIFY_SOCKET=$state/notify.sock WATCHDOG_USEC=10000000 \
        "qemu-$arch" -cpu max -d in_asm -D "$state/trace.log" "$bin" run --config "$state/assent.toml" \
        2>"$state/agent.log" &
    agent=$!
    for _ in $(seq 300); do
        "${cli[@]}" status --config "$state/assent.toml" >/dev/null 2>&1 && break
        sleep 0.2
    done
    for i in $(seq 20); do
        "${cli[@]}" emit --config "$state/assent.toml" app.trace "n=$i" ok=true >/dev/null
    done
    "${cli[@]}" sync --config "$state/assent.toml" >/dev/null
    sleep "$seconds"
    "${cli[@]}" status --config "$state/assent.toml" >/dev/null
    kill -TERM $agent
    wait $agent || true
    kill $notify_pid 2>/dev/null || true
    grep -q "first sync of this run" "$state/agent.log" ||
        { echo "the traced agent never synced:"; cat "$state/agent.log"; exit 1; }
    entry=$(readelf -h "$bin" | awk '/Entry point/ { print $4 }')
    nm -n -S -C --defined-only "$bin" | python3 -c '
import bisect, re, sys
entry, trace = int(sys.argv[1], 16), sys.argv[2]
starts, ends, names = [], [], []
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) >= 3 and len(parts[1]) == 1:
        # No size field: "address type name".
        parts = [parts[0], "0", parts[1], " ".join(parts[2:])]
    if len(parts) < 4 or parts[2] not in "tT":
        continue
    starts.append(int(parts[0], 16)); ends.append(starts[-1] + int(parts[1], 16))
    names.append(re.sub(r"::h[0-9a-f]{16}$", "", parts[3]))
# Assembly without .size (musl memcpy, memset, __set_thread_area) has size 0: it ends
# where the next symbol starts.
for i in range(len(starts)):
    if ends[i] == starts[i] and i + 1 < len(starts):
        ends[i] = starts[i + 1]
base, seen = None, set()
for line in open(trace, errors="replace"):
    if not line.startswith("0x"):
        continue
    address = int(line.split(":", 1)[0], 16)
    if base is None:
        base = address - entry  # the first block is the static binary entry point
    i = bisect.bisect_right(starts, address - base) - 1
    if i >= 0 and address - base < ends[i] and names[i] not in seen:
        seen.add(names[i]); print(names[i])
' "$entry" "$state/trace.log" >"$state/hot.txt"
    echo "trace-hot-functions: $target ran $(wc -l <"$state/hot.txt") functions"
    symbols+=("$state/hot.txt")
done

{
    echo "# Functions the agent runs through a day on a device, in the order they first ran:"
    echo "# the dist link puts them first in .text (scripts/link-hot-first.sh). Written by"
    echo "# \`make hot-functions\` (scripts/trace-hot-functions.sh); regenerate it when the"
    echo "# linker reports many of them missing (target/*/dist/deps/assent-*.order-summary)."
    # aarch64's OUTLINED_FUNCTION_N (the machine outliner's, shared tails of hot
    # functions) keep their numbers only while the code does not change: a stale one puts a
    # few small functions in the wrong place, nothing worse.
    # Then what devices run and qemu-user cannot (scripts/hot-functions-native.txt).
    awk '!seen[$0]++' "${symbols[@]}" <(grep -v '^#' scripts/hot-functions-native.txt)
} >"$out"
echo "trace-hot-functions: wrote $out ($(grep -vc '^#' "$out") functions)"
