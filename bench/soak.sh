#!/usr/bin/env bash
# Soak: one `coil serve` (release) under steady load with churn for DURATION seconds (one hour
# by default), sampling the server's RSS and room tick p99 every SAMPLE_SECS, then a verdict:
# RSS flat (the last third of the run within RSS_GROWTH_LIMIT of the first third, after the
# warm-up) and tick p99 steady (the last third's median within TICK_GROWTH_LIMIT times the
# first third's, and under the 25 ms budget). Exits 1 when either fails. Not in CI.
#
#   bench/soak.sh                         # one hour
#   DURATION=900 bench/soak.sh            # 15 minutes
#   COIL_BIN=/tmp/a/coil ARTIFACTS=artifacts/soak-a bench/soak.sh   # a given binary, side by side
#
# Load: PLAYERS simulated players through the in-process matchmaker over real WebSockets, with
# 50% of them leaving and rejoining every minute (sessions, tokens, seats and snakes churn), bots
# topping rooms up, deaths writing scores; and every CHURN_SECS a burst of short-lived players in
# fresh rooms, which empty and are reaped (rooms churn). Samples go to artifacts/soak/samples.csv (or $ARTIFACTS/).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
DURATION="${DURATION:-3600}"
SAMPLE_SECS="${SAMPLE_SECS:-30}"
WARMUP_SECS="${WARMUP_SECS:-120}"
PLAYERS="${PLAYERS:-300}"
CHURN_SECS="${CHURN_SECS:-60}"
RSS_GROWTH_LIMIT="${RSS_GROWTH_LIMIT:-0.10}"
TICK_GROWTH_LIMIT="${TICK_GROWTH_LIMIT:-1.5}"
COIL_BIN="${COIL_BIN:-$repo/target/release/coil}"
artifacts="${ARTIFACTS:-$repo/artifacts/soak}"
mkdir -p "$artifacts"
artifacts="$(cd "$artifacts" && pwd)"

# The default binary is (re)built first; one given in COIL_BIN is used as it is.
if [ "$COIL_BIN" = "$repo/target/release/coil" ]; then
  cargo build --release -p coil >&2
fi
[ -x "$COIL_BIN" ] || { echo "soak: $COIL_BIN is missing" >&2; exit 1; }
command -v python3 >/dev/null || { echo "soak: python3 is needed for the sampler" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# The database is named explicitly: binaries before the DATA_DIR default fix put it in
# ./data, where another `coil serve` in the checkout would share it.
PORT="$port" DATA_DIR="$work/data" DATABASE_URL="sqlite://$work/data/leaderboard.db" \
  ROOM_IDLE_SECS=5 RUST_LOG=warn \
  "$COIL_BIN" serve >"$artifacts/server.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/api/health" >/dev/null || { echo "soak: the server did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"

# Steady load with session churn, for the whole run.
# The generator bounds ramp + warm-up + duration to an hour, so the ramp comes out of DURATION.
"$COIL_BIN" loadtest --url "$base" --matchmaker "$base" --players "$PLAYERS" \
  --ramp 20 --warmup 0 --duration "$((DURATION - 20))" --leave-per-minute 0.5 --quiet \
  --json "$artifacts/loadtest.json" >"$artifacts/loadtest.log" 2>&1 &
pids+=($!)

# Room churn: short-lived players in fresh rooms (joined directly by room name), which then
# empty and are reaped after ROOM_IDLE_SECS.
(
  round=0
  while :; do
    round=$((round + 1))
    "$COIL_BIN" loadtest --url "$base" --players 40 --rooms 4 --room-prefix "churn$round-" \
      --ramp 2 --warmup 0 --duration 20 --leave-per-minute 0 --quiet >/dev/null 2>&1 || true
    sleep "$CHURN_SECS"
  done
) &
pids+=($!)

echo "soak: $DURATION s against $base (server pid $server), samples every $SAMPLE_SECS s -> $artifacts/samples.csv" >&2
python3 - "$server" "$base" "$DURATION" "$SAMPLE_SECS" "$WARMUP_SECS" "$RSS_GROWTH_LIMIT" \
  "$TICK_GROWTH_LIMIT" "$artifacts/samples.csv" "$PLAYERS" <<'SAMPLER'
import re, statistics, sys, time, urllib.request

pid, base, duration, every, warmup = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
rss_limit, tick_limit, csv_path = float(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
players = int(sys.argv[9])
# Every mode's tick histogram counts (labels such as mode="arena" come before or after `le`).
bucket_line = re.compile(r'^coil_tick_duration_seconds_bucket\{(?:[^}]*,)?le="([^"]+)"[^}]*\} (\S+)$')

def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("the server is gone")

scrape_failures = 0

def scrape():
    """The server's metrics; a failed scrape is retried (and counted) three times before the
    soak gives up on a server that stopped answering."""
    global scrape_failures
    for attempt in range(4):
        try:
            text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
            break
        except OSError as error:
            scrape_failures += 1
            print(f"  scrape failed ({error}); retrying", file=sys.stderr, flush=True)
            if attempt == 3:
                raise SystemExit(f"soak: {base}/metrics did not answer four times in a row")
            time.sleep(1)
    buckets, gauges = {}, {}
    for line in text.splitlines():
        match = bucket_line.match(line)
        if match:
            bound = float("inf") if match.group(1) == "+Inf" else float(match.group(1))
            buckets[bound] = buckets.get(bound, 0.0) + float(match.group(2))
        elif line.startswith("coil_connections_open "):
            gauges["connections"] = float(line.split()[1])
        elif line.startswith("coil_rooms{"):
            gauges["rooms"] = gauges.get("rooms", 0.0) + float(line.split()[-1])
    return buckets, gauges

def p99(before, after):
    """p99 of the ticks between two scrapes, interpolated inside its bucket (as Prometheus'
    histogram_quantile does)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    rank, lower, below = 0.99 * total, 0.0, 0.0
    for bound, cumulative in zip(bounds, counts):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower

started = time.monotonic()
previous, _ = scrape()
rows = []
with open(csv_path, "w") as csv:
    csv.write("seconds,rss_kib,tick_p99_ms,connections,rooms\n")
    # No sample lands after the generator's end (its duration is the run's, less the ramp).
    while time.monotonic() - started + every < duration:
        time.sleep(every)
        buckets, gauges = scrape()
        tick = p99(previous, buckets)
        previous = buckets
        row = (time.monotonic() - started, rss_kib(), None if tick is None else tick * 1000,
               gauges.get("connections", 0), gauges.get("rooms", 0))
        rows.append(row)
        tick_text = "-" if row[2] is None else f"{row[2]:.3f}"
        csv.write(f"{row[0]:.0f},{row[1]},{tick_text},{row[3]:.0f},{row[4]:.0f}\n")
        csv.flush()
        print(f"  t={row[0]:6.0f} s  RSS {row[1] / 1024:7.1f} MiB  tick p99 {tick_text:>7} ms  "
              f"connections {row[3]:4.0f}  rooms {row[4]:3.0f}", file=sys.stderr, flush=True)
        # A soak without its load proves nothing: half the players gone after the warm-up
        # means the generator stopped (its log says why).
        if row[0] >= warmup and row[3] < players / 2:
            raise SystemExit(f"soak: only {row[3]:.0f} of {players} players connected at "
                             f"t={row[0]:.0f} s: the load stopped (see the loadtest.log beside samples.csv)")

measured = [row for row in rows if row[0] >= warmup]
if len(measured) < 6:
    raise SystemExit("soak: too few samples after the warm-up for a verdict (run longer)")
third = len(measured) // 3
first, last = measured[:third], measured[-third:]
rss_first = statistics.median(row[1] for row in first)
rss_last = statistics.median(row[1] for row in last)
growth = rss_last / rss_first - 1
ticks_first = [row[2] for row in first if row[2] is not None]
ticks_last = [row[2] for row in last if row[2] is not None]
tick_first, tick_last = statistics.median(ticks_first), statistics.median(ticks_last)
rss_flat = growth <= rss_limit
tick_steady = tick_last <= tick_limit * tick_first and tick_last < 25.0
print(f"soak: {duration:.0f} s, {len(rows)} samples ({len(measured)} after the {warmup:.0f} s warm-up)")
print(f"  RSS: first third median {rss_first / 1024:.1f} MiB, last third {rss_last / 1024:.1f} MiB "
      f"({growth * 100:+.1f}%; limit +{rss_limit * 100:.0f}%), max {max(r[1] for r in measured) / 1024:.1f} MiB")
print(f"  tick p99: first third median {tick_first:.3f} ms, last third {tick_last:.3f} ms "
      f"(limit x{tick_limit:g} and < 25 ms), worst sample {max(ticks_first + ticks_last):.3f} ms")
print(f"  failed scrapes (retried): {scrape_failures}")
print(f"  verdict: RSS {'flat' if rss_flat else 'GROWING'}, tick p99 {'steady' if tick_steady else 'NOT STEADY'}")
sys.exit(0 if rss_flat and tick_steady else 1)
SAMPLER
