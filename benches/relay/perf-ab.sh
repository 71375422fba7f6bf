#!/usr/bin/env bash
# One A/B sample for docs/performance.md ("Hand-offs and the allocator"): a fresh MTA (the
# binary given) relays MESSAGES 4 KiB messages from mta-load (50 pipelining connections) to
# mta-sink, under `perf stat`; prints the accept and end-to-end rates, futex calls, context
# switches and CPU time of the MTA. Run it alternately for two binaries, several times.
# Usage: benches/relay/perf-ab.sh PATH/TO/mta [MESSAGES]   (needs perf; default 60000)
set -euo pipefail
MTA="$(realpath "$1")"
MESSAGES="${2:-60000}"
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p benches --bin mta-load --bin mta-sink
BIN="$(realpath "${CARGO_TARGET_DIR:-target}/release")"
RUN_DIR="$(mktemp -d /tmp/mta-ab.XXXXXX)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT_IN="$(port)"
PORT_OUT="$(port)"
cleanup() {
    kill "${MTA_PID:-}" "${SINK_PID:-}" "${PERF_PID:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
"$BIN/mta-sink" --listen "127.0.0.1:$PORT_OUT" --report-every 0 --max-seconds 600 \
    --max-messages "$MESSAGES" >"$RUN_DIR/sink.log" 2>&1 &
SINK_PID=$!
MTA_EXTRA_CONFIG="[admin]
socket = \"$RUN_DIR/admin.sock\"" RUN_DIR="$RUN_DIR" PORT_IN="$PORT_IN" PORT_OUT="$PORT_OUT" \
    MTA_BIN="$MTA" benches/relay/mta-start.sh >"$RUN_DIR/mta.log" 2>&1 &
MTA_PID=$!
for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT_IN") 2>/dev/null && break
    sleep 0.05
done
perf stat -e syscalls:sys_enter_futex -e context-switches -e task-clock -p "$MTA_PID" \
    -o "$RUN_DIR/perf.txt" &
PERF_PID=$!
sleep 0.5
T0=$(date +%s.%N)
"$BIN/mta-load" --server "127.0.0.1:$PORT_IN" --pipelining --seed 1 --messages "$MESSAGES" \
    --concurrency 50 --max-seconds 300 | sed -n 's/.*accepted (\([0-9]*\) msg\/s).*/accept:     \1 msgs\/s/p'
wait "$SINK_PID"
T1=$(date +%s.%N)
kill -INT "$PERF_PID"
wait "$PERF_PID" 2>/dev/null || true
python3 - "$MESSAGES" "$T0" "$T1" "$RUN_DIR/perf.txt" <<'PY'
import sys
n, t0, t1, path = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"end to end: {n / (t1 - t0):.0f} msgs/s")
for line in open(path):
    parts = line.split()
    if len(parts) >= 2 and parts[1] in ("syscalls:sys_enter_futex", "context-switches", "msec"):
        value = float(parts[0].replace(",", ""))
        if parts[1] == "msec":
            print(f"CPU:        {value * 1000 / n:.0f} µs per message")
        else:
            print(f"{parts[1]}: {value / n:.2f} per message")
PY
