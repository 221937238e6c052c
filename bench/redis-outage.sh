#!/usr/bin/env bash
# Matchmakes at a steady rate through a Redis outage, as an operator would try it: a private
# redis-server (never the shared one), `coil matchmaker` and two `coil node`s on loopback; Redis
# is killed after WARM_SECS, restarted empty DOWN_SECS later, and the run goes on until
# placement works again (or AFTER_SECS pass). Prints how the requests sent during the outage
# were answered (at once, slowly, or not within 10 s) and how long after Redis returned the
# first matchmake succeeded.
#
#   bench/redis-outage.sh                      # target/release/coil, 10/s, Redis down 10 s
#   COIL_BIN=/path/to/old/coil DOWN_SECS=2 bench/redis-outage.sh
#
# Needs redis-server, redis-cli and curl. Not a test: it takes from ~30 s (a fixed build) to
# ~2.5 min (a build that reconnects slowly). Everything it starts is stopped on exit.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COIL_BIN="${COIL_BIN:-$repo/target/release/coil}"
RATE="${RATE:-10}"
WARM_SECS="${WARM_SECS:-5}"
DOWN_SECS="${DOWN_SECS:-10}"
AFTER_SECS="${AFTER_SECS:-150}"
[ -x "$COIL_BIN" ] || { echo "redis-outage: $COIL_BIN is not built (cargo build --release -p coil)" >&2; exit 1; }
for tool in redis-server redis-cli curl; do
  command -v "$tool" >/dev/null || { echo "redis-outage: $tool is not installed" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }


redis_port="$(free_port)"
start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
  redis_pid=$!
  disown "$redis_pid"
  for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis-outage: redis-server did not start" >&2; exit 1
}
start_redis
redis_url="redis://127.0.0.1:$redis_port"

key="$work/join-token.key"
public_key="$(REDIS_URL="$redis_url" JOIN_TOKEN_KEY_FILE="$key" "$COIL_BIN" matchmaker --print-public-key)"
mm_port="$(free_port)"
PORT="$mm_port" REDIS_URL="$redis_url" JOIN_TOKEN_KEY_FILE="$key" RUST_LOG=warn \
  "$COIL_BIN" matchmaker >"$work/matchmaker.log" 2>&1 &
pids+=($!)
for node in node-a node-b; do
  port="$(free_port)"
  mkdir -p "$work/$node"
  PORT="$port" NODE_ID="$node" REDIS_URL="$redis_url" JOIN_TOKEN_PUBLIC_KEY="$public_key" \
    DATA_DIR="$work/$node" DATABASE_URL="sqlite://$work/$node/lb.db" ROOM_POPULATION_TARGET=0 \
    RUST_LOG=warn "$COIL_BIN" node >"$work/$node.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 200); do
  code="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d '{"playerName":"probe"}' "http://127.0.0.1:$mm_port/api/matchmake" || true)"
  [ "$code" = 200 ] && break
  sleep 0.1
done
[ "$code" = 200 ] || { echo "redis-outage: the fleet never placed a player" >&2; exit 1; }


# The run: requests on their own threads at RATE per second; Redis killed after WARM_SECS and
# restarted (empty) DOWN_SECS later; stops 5 s after the first success sent after the restart.
python3 - "$mm_port" "$redis_port" "$redis_pid" "$work/redis.pid" "$RATE" "$WARM_SECS" "$DOWN_SECS" "$AFTER_SECS" "$COIL_BIN" <<'DRIVER'
import json, os, signal, subprocess, sys, threading, time, urllib.error, urllib.request

mm_port, redis_port, redis_pid, pid_file = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
rate, warm, down, after, binary = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8]), sys.argv[9]
url = f"http://127.0.0.1:{mm_port}/api/matchmake"
results, lock = [], threading.Lock()

def request():
    sent = time.monotonic()
    body = json.dumps({"playerName": "outage"}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except Exception:
        status = 0  # no answer within 10 s (or the connection failed)
    with lock:
        results.append((sent, status, time.monotonic() - sent))

def start_redis():
    process = subprocess.Popen(
        ["redis-server", "--port", redis_port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    open(pid_file, "w").write(str(process.pid))
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", redis_port, "ping"], capture_output=True).stdout.startswith(b"PONG"):
            return
        time.sleep(0.02)
    sys.exit("redis-server did not restart")

threads, started = [], time.monotonic()
killed = restarted = None
index = 0
while True:
    now = time.monotonic()
    if killed is None and now - started >= warm:
        os.kill(redis_pid, signal.SIGKILL)
        killed = time.monotonic()
    if killed is not None and restarted is None and now - killed >= down:
        start_redis()
        restarted = time.monotonic()
    if restarted is not None:
        with lock:
            ok = sorted(sent for sent, status, _ in results if sent >= restarted and status == 200)
        if (ok and now - ok[0] >= 5) or now - restarted >= after:
            break
    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    threads.append(thread)
    index += 1
    time.sleep(max(0.0, started + index / rate - time.monotonic()))
for thread in threads:
    thread.join()

def summary(name, group):
    if not group:
        print(f"{name}: no requests")
        return
    at_once = sum(1 for _, status, took in group if status and took <= 1.0)
    slow = sum(1 for _, status, took in group if status and took > 1.0)
    hung = sum(1 for _, status, _ in group if not status)
    took = sorted(took for _, status, took in group if status)
    statuses = {}
    for _, status, _ in group:
        statuses[status] = statuses.get(status, 0) + 1
    median = f"{took[len(took) // 2] * 1000:.0f} ms" if took else "-"
    slowest = f"{took[-1] * 1000:.0f} ms" if took else "-"
    print(f"{name}: {len(group)} requests: {at_once} answered within 1 s, {slow} answered later, "
          f"{hung} no answer within 10 s; median answer {median}, slowest {slowest}; statuses {statuses}")

print(f"binary {binary}; {rate:g} matchmakes/s; Redis down {down:g} s, restarted empty")
summary("during the outage", [row for row in results if killed <= row[0] < restarted])
after_rows = sorted(row for row in results if row[0] >= restarted)
first_ok = next((sent for sent, status, _ in after_rows if status == 200), None)
if first_ok is None:
    print(f"after Redis returned: no matchmake succeeded within {after:g} s")
    summary("after Redis returned", after_rows)
else:
    print(f"after Redis returned: the first successful matchmake was sent {first_ok - restarted:.1f} s after the restart")
    summary("after Redis returned, until then", [row for row in after_rows if row[0] < first_ok])
DRIVER
