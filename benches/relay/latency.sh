#!/usr/bin/env bash
# Accept latency at 80 % of peak (docs/performance.md): starts mta-sink and our MTA (the
# configuration of benches/relay/mta-start.sh: durable spool, relays everything to the sink),
# measures the peak accept rate with mta-load (closed loop), then offers 80 % of it at a
# fixed rate (open loop, latency from when each message was due) RUNS times, and prints the
# reports and how many spool commits took longer than 25, 50 and 100 ms.
# Usage: benches/relay/latency.sh [SIZE] [MESSAGES] [RUNS]   (defaults 4096, 60000, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE="${1:-4096}"
MESSAGES="${2:-60000}"
RUNS="${3:-3}"
cargo build --release --quiet -p mta-core --bin mta -p benches --bin mta-load --bin mta-sink
BIN="${CARGO_TARGET_DIR:-target}/release"
RUN_DIR="$(mktemp -d /tmp/mta-latency.XXXXXX)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT_IN="$(port)"
PORT_OUT="$(port)"
cleanup() {
    kill "${MTA_PID:-}" "${SINK_PID:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
"$BIN/mta-sink" --listen "127.0.0.1:$PORT_OUT" --report-every 0 --max-seconds 1800 >"$RUN_DIR/sink.log" 2>&1 &
SINK_PID=$!
MTA_EXTRA_CONFIG="[admin]
socket = \"$RUN_DIR/admin.sock\"" \
RUN_DIR="$RUN_DIR" PORT_IN="$PORT_IN" PORT_OUT="$PORT_OUT" MTA_BIN="$BIN/mta" \
    benches/relay/mta-start.sh >"$RUN_DIR/mta.log" 2>&1 &
MTA_PID=$!
for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT_IN") 2>/dev/null && break
    sleep 0.05
done
load() {
    "$BIN/mta-load" --server "127.0.0.1:$PORT_IN" --size "$SIZE" --pipelining --seed 1 \
        --max-seconds 600 "$@"
}
echo "== peak (closed loop, 50 connections)"
PEAK_OUT="$(load --messages "$MESSAGES" --concurrency 50)"
echo "$PEAK_OUT"
PEAK="$(echo "$PEAK_OUT" | sed -n 's/.*accepted (\([0-9]*\) msg\/s).*/\1/p')"
RATE=$((PEAK * 8 / 10))
for run in $(seq 1 "$RUNS"); do
    echo "== 80 % of peak: $RATE msgs/s (open loop, 200 connections), run $run of $RUNS"
    load --messages "$MESSAGES" --concurrency 200 --rate "$RATE"
done
echo "== spool commits (all runs): total, and over 25 / 50 / 100 ms"
"$BIN/mta" ctl --socket "$RUN_DIR/admin.sock" metrics | awk '
    /^spool_commit_seconds_count/ { total = $2 }
    /^spool_commit_seconds_bucket\{le="0.025"\}/ { b25 = $2 }
    /^spool_commit_seconds_bucket\{le="0.05"\}/ { b50 = $2 }
    /^spool_commit_seconds_bucket\{le="0.1"\}/ { b100 = $2 }
    END { printf "commits %d, over 25 ms %d, over 50 ms %d, over 100 ms %d\n", total, total - b25, total - b50, total - b100 }'
