#!/usr/bin/env bash
# agones-overhead: what the node's Agones SDK integration (AGONES=1) costs the node itself, in
# CPU. One idle `coil node` (Redis directory heartbeats as in production) is run for SECS seconds
# in each of three settings, ROUNDS times alternated, and its CPU time (the sum over its threads
# of /proc/<pid>/task/*/schedstat, nanoseconds; /proc/<pid>/stat's 10 ms ticks are too coarse for
# an idle node) is read over the window after a warm-up:
#   off      AGONES=0
#   samples  AGONES=1, AGONES_SYNC_MS=100, AGONES_HEALTH_SECS=1: 10 samples + 1 ping a second
#   calls    the same, but the SDK answers POST /ready with 503, so every sample also makes one
#            HTTP call (the node retries Ready): 10 samples + 10 calls + 1 ping a second
# The SDK server is a minimal stand-in in Python (200 {} to everything; another process, so its
# CPU is not counted). Cost per sample = (samples - off) / 10 s, per call = (calls - samples) / 10.
#
# Usage: cargo build --release -p coil && SECS=60 ROUNDS=2 bench/agones-overhead.sh
# Needs Redis on 127.0.0.1:6379 (REDIS_URL to change). Stops everything it started.
set -euo pipefail
BIN=${COIL:-$(cd "$(dirname "$0")/.." && pwd)/target/release/coil}
SECS=${SECS:-60}
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-5}
OUT=${OUT:-$(mktemp -d)}
[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release -p coil first" >&2; exit 64; }
mkdir -p "$OUT"; cd "$OUT"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} REDIS_KEY_PREFIX="coil:agones-bench:$$:"
export RUST_LOG=warn JOIN_TOKEN_KEY_FILE=$OUT/join-token.key
PUBLIC_KEY=$("$BIN" matchmaker --print-public-key)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() {
    kill "${PIDS[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_KEY_PREFIX}*" | xargs -r redis-cli -u "$REDIS_URL" del > /dev/null || true
}
trap cleanup EXIT

SDK_PORT=$(free_port)
cat > sdk.py <<'PYEOF'
import http.server, json, sys
fail_ready = sys.argv[2] == "fail-ready"
class SDK(http.server.BaseHTTPRequestHandler):
    # Keep-alive, like the SDK server's Go gateway: the node reuses its connection.
    protocol_version = "HTTP/1.1"
    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if fail_ready and self.path == "/ready":
            status, reply = 503, {"code": 14, "message": "unavailable"}
        elif self.path.startswith("/v1beta1/counters/"):
            status, reply = 200, {"name": self.path.rsplit("/", 1)[1], **body}
        else:
            status, reply = 200, {}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_POST = do_PATCH = do_GET = answer
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), SDK).serve_forever()
PYEOF

cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%d", ns}'; }
run() {  # run MODE ROUND: appends the node's CPU seconds over SECS to results.csv
    local mode=$1 round=$2 port sdk_mode=ok agones=1
    port=$(free_port)
    [ "$mode" = off ] && agones=0
    [ "$mode" = calls ] && sdk_mode=fail-ready
    python3 sdk.py "$SDK_PORT" "$sdk_mode" & local sdk=$!; PIDS+=($sdk)
    env PORT=$port NODE_ID="bench-$$-$mode" JOIN_TOKEN_PUBLIC_KEY="$PUBLIC_KEY" PUBLIC_URL="ws://127.0.0.1:$port" \
        AGONES=$agones AGONES_SDK_HTTP_PORT="$SDK_PORT" AGONES_SYNC_MS=100 AGONES_HEALTH_SECS=1 AGONES_SDK_TIMEOUT_MS=500 \
        "$BIN" node > "node-$mode.log" 2>&1 & local node=$!; PIDS+=($node)
    sleep "$WARMUP"
    local before after
    before=$(cpu_ns "$node")
    sleep "$SECS"
    after=$(cpu_ns "$node")
    # The node first: it drains and says Shutdown to the SDK, which must still be there.
    kill "$node"; wait "$node" 2>/dev/null || true
    kill "$sdk"; wait "$sdk" 2>/dev/null || true
    PIDS=()
    local cpu
    cpu=$(python3 -c "print(f'{($after - $before) / 1e9:.6f}')")
    echo "$mode,$round,$cpu,$SECS" | tee -a results.csv
}

echo "mode,round,cpu_seconds,secs" > results.csv
for round in $(seq 1 "$ROUNDS"); do
    for mode in off samples calls; do
        run "$mode" "$round"
    done
done
python3 - results.csv <<'PYEOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
secs = float(rows[0]["secs"])
per = {m: statistics.median(float(r["cpu_seconds"]) / secs for r in rows if r["mode"] == m) for m in ("off", "samples", "calls")}
sample = (per["samples"] - per["off"]) / 10
call = (per["calls"] - per["samples"]) / 10
print(f"node CPU, median of rounds, seconds per second: off {per['off']*1e3:.3f} ms/s, "
      f"samples {per['samples']*1e3:.3f} ms/s, calls {per['calls']*1e3:.3f} ms/s")
print(f"per sample (+1/10 ping): {sample*1e6:.0f} us; per SDK HTTP call: {call*1e6:.0f} us")
# Defaults: 1 sample/s, 1 ping per 2 s, and at most 2 counter updates per sample.
idle = sample + 0.5 * call
busy = sample + 2.5 * call
print(f"at the defaults: idle {idle*1e6:.0f} us/s ({idle*100:.4f}% of a core); "
      f"counters changing every second {busy*1e6:.0f} us/s ({busy*100:.4f}% of a core)")
PYEOF
echo "report in $OUT"
