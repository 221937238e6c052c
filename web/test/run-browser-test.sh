#!/usr/bin/env bash
# Tests of the web client: the protocol unit tests (node --test, against fixtures the Rust
# server produced) and the browser test (headless Debian Chromium against a real `coil serve`
# on 127.0.0.1), plus the decode + render benchmark and the page's transfer size.
#
# Installs what is missing (Debian's chromium, the npm packages of web/test), builds `coil`
# (debug; set COIL_BIN to use another binary), starts it on a free port with
# ENABLE_DEBUG_COMMANDS=1 and a temporary data directory, and stops it on any exit.
# The arena's input rate under continuous pointer movement is web/test/input-rate.browser.mjs;
# breach's lobby browser (create, list, password and invite joins) is web/test/lobbies.browser.mjs.
# Artifacts: artifacts/web/{screenshot.png,death.png,results.json,server.log}
# (failure.png when a check fails), and breach's artifacts/web/{breach*.png,breach-results.json}.
# Breach's live test gets a second server with short matches (BREACH_KILL_LIMIT=5, ...):
# artifacts/web/{breach-live-*.png,breach-live-results.json,breach-server.log}.
# Exits non-zero on any failure.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
artifacts="$repo/artifacts/web"
chromium="${CHROMIUM:-/usr/bin/chromium}"

fail() {
  echo "web tests: FAILED: $*" >&2
  exit 1
}

command -v node >/dev/null || fail "node (20 or newer) is not installed"
command -v npm >/dev/null || fail "npm is not installed"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "node $node_major is too old; 20 or newer is needed"

if [ ! -x "$chromium" ]; then
  echo "web tests: installing Debian's chromium"
  command -v apt-get >/dev/null || fail "$chromium is missing and apt-get is not available"
  apt-get update -qq || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core \
    || fail "apt-get install chromium"
  [ -x "$chromium" ] || fail "chromium installed but $chromium does not exist"
fi

if [ ! -f web/test/node_modules/playwright-core/package.json ] \
  || [ web/test/package-lock.json -nt web/test/node_modules/.package-lock.json ]; then
  echo "web tests: npm ci in web/test"
  (cd web/test && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in web/test"
fi

echo "web tests: unit tests (protocol against server fixtures, connection logic)"
node --test web/test/protocol.test.mjs web/test/net.test.mjs \
  || fail "unit tests (node --test web/test/protocol.test.mjs web/test/net.test.mjs)"

echo "web tests: lobby browser unit tests (request bodies, feed events, filters, messages)"
node --test web/test/lobbies.test.mjs || fail "lobby browser unit tests (node --test web/test/lobbies.test.mjs)"

echo "web tests: breach unit tests (decoder and mirror against coil-breach fixtures, movement, prediction, connection)"
node --test web/test/breach.test.mjs web/test/breach-client.test.mjs web/test/breach-net.test.mjs web/test/breach-lobby.test.mjs \
  || fail "breach unit tests (node --test web/test/breach.test.mjs web/test/breach-client.test.mjs web/test/breach-net.test.mjs web/test/breach-lobby.test.mjs)"

echo "web tests: breach browser test (recorded matches replayed into the client, no server)"
ARTIFACT_DIR="$artifacts" CHROMIUM="$chromium" timeout 120 node web/test/breach.browser.mjs \
  || fail "breach browser test (node web/test/breach.browser.mjs)"

echo "web tests: breach lobby browser test (the custom lobby's waiting room from a recorded lobby, no server)"
ARTIFACT_DIR="$artifacts" CHROMIUM="$chromium" timeout 120 node web/test/breach-lobby.browser.mjs \
  || fail "breach lobby browser test (node web/test/breach-lobby.browser.mjs)"

if [ -z "${COIL_BIN:-}" ]; then
  echo "web tests: cargo build -p coil"
  cargo build -p coil || fail "cargo build -p coil"
  COIL_BIN="$(cargo metadata --format-version 1 --no-deps | node -e '
    let text = ""; process.stdin.on("data", (d) => (text += d));
    process.stdin.on("end", () => console.log(JSON.parse(text).target_directory));
  ')/debug/coil"
fi
[ -x "$COIL_BIN" ] || fail "no coil binary at $COIL_BIN"

port="$(node -e '
  const server = require("node:net").createServer();
  server.listen(0, "127.0.0.1", () => { console.log(server.address().port); server.close(); });
')"
data="$(mktemp -d)"
mkdir -p "$artifacts"
server_pid=""
breach_pid=""
cleanup() {
  for pid in "$server_pid" "$breach_pid"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  [ -f "$data/server.log" ] && cp "$data/server.log" "$artifacts/server.log"
  [ -f "$data/breach-server.log" ] && cp "$data/breach-server.log" "$artifacts/breach-server.log"
  rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "web tests: starting $COIL_BIN serve on 127.0.0.1:$port"
# The internal secret lets the browser test drain the node at the end (a drain notice reaching
# the page); a short drain timeout keeps the shutdown in the trap bounded. Sixteen snakes, not
# 120: the test steers and boosts in straight lines for seconds, and in a full room a bot
# sometimes ended the own snake before the boost was measured (CI 2026-12-03).
internal_secret="web-test-$RANDOM$RANDOM$RANDOM"
ENABLE_DEBUG_COMMANDS=1 INTERNAL_SECRET="$internal_secret" DRAIN_TIMEOUT_SECS=5 ROOM_POPULATION_TARGET=16 \
  DATA_DIR="$data/data" DATABASE_URL="sqlite://$data/data/leaderboard.db" \
  RUST_LOG="${RUST_LOG:-warn}" "$COIL_BIN" serve --host 127.0.0.1 --port "$port" >"$data/server.log" 2>&1 &
server_pid=$!

# wait_ready PID PORT LOG: until the server answers /api/health (20 s at most).
wait_ready() {
  for _ in $(seq 1 100); do
    if ! kill -0 "$1" 2>/dev/null; then
      cat "$3" >&2
      fail "coil serve on port $2 exited at startup"
    fi
    if node -e "fetch('http://127.0.0.1:$2/api/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"; then
      return 0
    fi
    sleep 0.2
  done
  fail "coil serve on port $2 did not answer /api/health within 20 s"
}
wait_ready "$server_pid" "$port" "$data/server.log"

# Accounts first: the browser test ends by draining the node.
echo "web tests: account browser test"
if ! COIL_URL="http://127.0.0.1:$port" ARTIFACT_DIR="$artifacts" CHROMIUM="$chromium" \
  timeout 90 node web/test/account.browser.mjs; then
  echo "--- server log (last 40 lines) ---" >&2
  tail -n 40 "$data/server.log" >&2 || true
  fail "account browser test"
fi
echo "web tests: lobby browser test (create a private lobby, the live list, password and invite joins, the waiting room)"
if ! COIL_URL="http://127.0.0.1:$port" ARTIFACT_DIR="$artifacts" CHROMIUM="$chromium" \
  timeout 120 node web/test/lobbies.browser.mjs; then
  echo "--- server log (last 40 lines) ---" >&2
  tail -n 40 "$data/server.log" >&2 || true
  fail "lobby browser test (node web/test/lobbies.browser.mjs)"
fi
echo "web tests: input rate browser test (continuous pointer movement: at most one input per tick)"
if ! COIL_URL="http://127.0.0.1:$port" CHROMIUM="$chromium" timeout 60 node web/test/input-rate.browser.mjs; then
  echo "--- server log (last 40 lines) ---" >&2
  tail -n 40 "$data/server.log" >&2 || true
  fail "input rate browser test (node web/test/input-rate.browser.mjs)"
fi
echo "web tests: browser test"
if ! COIL_URL="http://127.0.0.1:$port" ARTIFACT_DIR="$artifacts" CHROMIUM="$chromium" INTERNAL_SECRET="$internal_secret" \
  timeout 90 node web/test/browser.mjs; then
  echo "--- server log (last 40 lines) ---" >&2
  tail -n 40 "$data/server.log" >&2 || true
  fail "browser test"
fi
# Breach end to end on a server of its own with short matches: a kill limit of 5, a match as
# soon as one player is in, a 1 s countdown and a 3 s scoreboard.
breach_port="$(node -e '
  const server = require("node:net").createServer();
  server.listen(0, "127.0.0.1", () => { console.log(server.address().port); server.close(); });
')"
echo "web tests: starting a breach server (short matches) on 127.0.0.1:$breach_port"
mkdir -p "$data/breach-data"
BREACH_KILL_LIMIT=5 BREACH_MIN_PLAYERS=1 BREACH_COUNTDOWN_SECS=1 BREACH_SCOREBOARD_SECS=3 \
  DATA_DIR="$data/breach-data" DATABASE_URL="sqlite://$data/breach-data/leaderboard.db" \
  RUST_LOG="${RUST_LOG:-warn}" "$COIL_BIN" serve --host 127.0.0.1 --port "$breach_port" >"$data/breach-server.log" 2>&1 &
breach_pid=$!
wait_ready "$breach_pid" "$breach_port" "$data/breach-server.log"
echo "web tests: breach live browser test (join, move, shoot a wall open, kill and die, kill limit, vote, restart, spectator, resume)"
if ! COIL_URL="http://127.0.0.1:$breach_port" ARTIFACT_DIR="$artifacts" CHROMIUM="$chromium" \
  timeout 150 node web/test/breach-live.browser.mjs; then
  echo "--- breach server log (last 40 lines) ---" >&2
  tail -n 40 "$data/breach-server.log" >&2 || true
  fail "breach live browser test (node web/test/breach-live.browser.mjs)"
fi
echo "web tests: passed"
