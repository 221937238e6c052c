#!/usr/bin/env bash
# matchmake-burst: matchmaker + Redis directory + 3 node processes; the load generator joins
# through POST /api/matchmake with the token.
# Usage: cargo build --release -p coil && PLAYERS=1500 RAMP=3 bench/matchmake-burst.sh
# Needs Redis on 127.0.0.1:6379 and free ports 18788 and 18791-18793; stops everything it started.
set -u
B=${COIL:-$(cd "$(dirname "$0")/.." && pwd)/target/release/coil}
D=$(mktemp -d); cd "$D"
export REDIS_URL=redis://127.0.0.1:6379 REDIS_KEY_PREFIX="coil:burst:$RANDOM:" RUST_LOG=warn JOIN_TOKEN_KEY_FILE=$D/k
PK=$($B matchmaker --print-public-key)
PORT=18788 $B matchmaker > mm.log 2>&1 & MM=$!
PIDS="$MM"
for i in 1 2 3; do mkdir n$i; PORT=1879$i NODE_ID=node-$i JOIN_TOKEN_PUBLIC_KEY=$PK DATA_DIR=n$i DATABASE_URL=sqlite://n$i/l.db ROOM_POPULATION_TARGET=0 MAX_ROOMS=16 $B node > n$i.log 2>&1 & PIDS="$PIDS $!"; done
trap 'kill $PIDS 2>/dev/null' EXIT
sleep 2
$B loadtest --url http://127.0.0.1:18791 --matchmaker http://127.0.0.1:18788 --players ${PLAYERS:-1500} --rooms 1 --ramp ${RAMP:-3} --warmup 2 --duration 8 --leave-per-minute 0 --quiet --json $D/burst.json | grep -E "joins ok|join latency|join failures|CCU"
curl -s http://127.0.0.1:18788/metrics | grep -E "coil_matchmake_(requests_total|duration_seconds_(count|sum|bucket))" | grep -v 'le="0.000' | head -20
