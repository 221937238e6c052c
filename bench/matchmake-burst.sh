#!/usr/bin/env bash
# matchmake-burst: one `coil matchmaker` on the Redis directory and three `coil node`s on this
# machine; `coil loadtest --scenario matchmake-burst` sends placements at RATE per second for
# SECS seconds (open loop). With JOIN=1 each placed player also joins its room with the token,
# waits for the first frame and leaves (end to end); without it the seats stay reserved until
# they expire, so the nodes offer MAX_ROOMS=256 room slots each to hold them.
#
# Usage: cargo build --release -p coil && RATE=5000 SECS=10 bench/matchmake-burst.sh
#        RATE=1000 SECS=10 JOIN=1 bench/matchmake-burst.sh
# Needs Redis on 127.0.0.1:6379 (REDIS_URL to change) and free ports 18788 and 18791-18793.
# Stops everything it started; the report is left in $OUT (default: a temporary directory).
set -euo pipefail
BIN=${COIL:-$(cd "$(dirname "$0")/.." && pwd)/target/release/coil}
RATE=${RATE:-5000}
SECS=${SECS:-10}
JOIN=${JOIN:-0}
OUT=${OUT:-$(mktemp -d)}
[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release -p coil first" >&2; exit 64; }
mkdir -p "$OUT"; cd "$OUT"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} REDIS_KEY_PREFIX="coil:burst:$$:$RANDOM:"
export RUST_LOG=warn JOIN_TOKEN_KEY_FILE=$OUT/join-token.key
PUBLIC_KEY=$("$BIN" matchmaker --print-public-key)
PIDS=()
cleanup() {
    kill "${PIDS[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_KEY_PREFIX}*" | xargs -r redis-cli -u "$REDIS_URL" del > /dev/null || true
}
trap cleanup EXIT
env ${MATCHMAKER_THREADS:+TOKIO_WORKER_THREADS=$MATCHMAKER_THREADS} PORT=18788 "$BIN" matchmaker > matchmaker.log 2>&1 & PIDS+=($!)
for i in 1 2 3; do
    mkdir -p "node-$i"
    PORT=1879$i NODE_ID=node-$i JOIN_TOKEN_PUBLIC_KEY=$PUBLIC_KEY DATA_DIR=node-$i \
        DATABASE_URL=sqlite://node-$i/leaderboard.db ROOM_POPULATION_TARGET=0 MAX_ROOMS=256 \
        "$BIN" node > "node-$i.log" 2>&1 & PIDS+=($!)
done
for port in 18788 18791 18792 18793; do
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/api/health" > /dev/null && break; sleep 0.1; done
done
sleep 1.5 # every node has heartbeated into the directory
FLAGS=()
[ "$JOIN" = 1 ] && FLAGS+=(--join)
PLACEMENTS=$(awk "BEGIN { printf \"%d\", $RATE * $SECS }")
cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
REDIS_PID=$(pgrep -o redis-server || echo self)
MM_BEFORE=$(cpu "${PIDS[0]}"); REDIS_BEFORE=$(cpu "$REDIS_PID")
"$BIN" loadtest --scenario matchmake-burst --url http://127.0.0.1:18791 \
    --matchmaker http://127.0.0.1:18788 --players "$PLACEMENTS" --ramp "$SECS" \
    "${FLAGS[@]}" --quiet --json "$OUT/burst.json"
echo "CPU seconds during the burst: matchmaker $(awk "BEGIN { print $(cpu "${PIDS[0]}") - $MM_BEFORE }"), redis-server $(awk "BEGIN { print $(cpu "$REDIS_PID") - $REDIS_BEFORE }")"
echo "the matchmaker's own view (coil_matchmake_duration_seconds, cumulative buckets):"
curl -s http://127.0.0.1:18788/metrics | grep -E '^coil_matchmake_(requests_total|duration_seconds_(bucket|count|sum))' || true
echo "report: $OUT/burst.json"
