#!/usr/bin/env bash
# Runs a release `coil` binary the way deploy/container/Dockerfile's image runs it, for machines
# without a container engine: as the image's USER, in its WORKDIR (an empty directory owned by
# that user, like the image's /var/lib/coil), with only the image's ENV, the default CMD; then
# runs the HEALTHCHECK command exactly as written and stops the process with the STOPSIGNAL.
# With REDIS_URL set it also runs `coil node` under AGONES=1 with no SDK server present (the
# Helm chart's command line, minus Kubernetes) and checks the node serves anyway.
#
# Usage (as root, so it can switch to the image's user):
#   cargo build --release --locked -p coil
#   strip --strip-debug -o /tmp/coil target/release/coil      # as the Dockerfile does
#   bash deploy/container/run-like-image.sh /tmp/coil
set -euo pipefail

BINARY=$(realpath "${1:?usage: run-like-image.sh PATH_TO_COIL_BINARY}")
DOCKERFILE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/Dockerfile"
WORK=$(mktemp -d /tmp/coil-like-image.XXXXXX)
chmod 0755 "$WORK"   # like / in the image: the user can reach its WORKDIR
CHILD=
cleanup() {
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then kill -KILL "$CHILD"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# What the Dockerfile says (its last stage).
user=$(sed -n 's/^USER \([0-9]*\):\([0-9]*\)$/\1 \2/p' "$DOCKERFILE" | tail -n1)
read -r uid gid <<<"$user"
workdir=$(sed -n 's/^WORKDIR //p' "$DOCKERFILE" | tail -n1)
mapfile -t image_env < <(awk '/^ENV /{on=1; sub(/^ENV /,"")} on{line=$0; sub(/ *\\$/,"",line); gsub(/^ +/,"",line); print line; if ($0 !~ /\\$/) on=0}' "$DOCKERFILE")
default_cmd=$(sed -n 's/^CMD \["\(.*\)"\]$/\1/p' "$DOCKERFILE" | tail -n1)
healthcheck=$(awk '/^HEALTHCHECK/{on=1} on{print; if ($0 !~ /\\$/) exit}' "$DOCKERFILE" |
  sed -n 's/.*CMD \["\/bin\/sh", "-c", "\(.*\)"\]$/\1/p')
stop_signal=$(sed -n 's/^STOPSIGNAL //p' "$DOCKERFILE" | tail -n1)
[ -n "$uid" ] && [ -n "$workdir" ] && [ -n "$default_cmd" ] && [ -n "$healthcheck" ] || {
  echo "could not read USER/WORKDIR/CMD/HEALTHCHECK from $DOCKERFILE" >&2; exit 1; }
echo "image: user $uid:$gid, workdir $workdir, env ${image_env[*]}, cmd $default_cmd, stop $stop_signal"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start NAME ARGS...: the binary as the image's user in a fresh WORKDIR, with the image's ENV
# plus extra VAR=VALUE words from $EXTRA_ENV.
start() {
  local name=$1; shift
  local dir="$WORK/$name$workdir"
  mkdir -p "$dir"
  chown -R "$uid:$gid" "$dir"
  (cd "$dir" && exec env -i PATH=/usr/bin:/bin "${image_env[@]}" $EXTRA_ENV \
    setpriv --reuid="$uid" --regid="$gid" --clear-groups "$BINARY" "$@") >"$WORK/$name.log" 2>&1 &
  CHILD=$!
}

wait_healthy() {
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/api/health" && return 0
    kill -0 "$CHILD" 2>/dev/null || { cat "$WORK/$2.log"; echo "exited early" >&2; return 1; }
    sleep 0.1
  done
  echo "no answer on $1" >&2; return 1
}

stop() {
  kill "-${stop_signal#SIG}" "$CHILD"
  local status=0
  wait "$CHILD" || status=$?
  CHILD=
  echo "  stopped by $stop_signal: exit $status"
  [ "$status" -eq 0 ]
}

echo "== default CMD ($default_cmd)"
port=$(free_port)
EXTRA_ENV="PORT=$port" start serve "$default_cmd"
wait_healthy "$port" serve
echo "  running as uid $(stat -c %u /proc/$CHILD)"
[ "$(stat -c %u /proc/$CHILD)" = "$uid" ]
env -i PATH=/usr/bin:/bin PORT="$port" /bin/sh -c "$healthcheck"
echo "  HEALTHCHECK: exit 0 (ready)"
ls "$WORK/serve$workdir/data" | sed 's/^/  data: /'
stop

if [ -n "${REDIS_URL:-}" ]; then
  echo "== coil node under AGONES=1, no SDK server"
  port=$(free_port)
  sdk_port=$(free_port)   # nothing listens there: the SDK server is absent
  key_dir="$WORK/key"; mkdir -p "$key_dir"
  public_key=$("$BINARY" matchmaker --print-public-key --join-token-key-file "$key_dir/k" 2>/dev/null | tail -n1)
  EXTRA_ENV="PORT=$port REDIS_URL=$REDIS_URL REDIS_KEY_PREFIX=coil-like-image-$$: JOIN_TOKEN_PUBLIC_KEY=$public_key NODE_ID=like-image-$$ AGONES=1 AGONES_SDK_HTTP_PORT=$sdk_port PUBLIC_URL=ws://127.0.0.1:$port" \
    start node node
  wait_healthy "$port" node
  env -i PATH=/usr/bin:/bin PORT="$port" /bin/sh -c "$healthcheck"
  echo "  HEALTHCHECK: exit 0 while the SDK is unreachable"
  sleep 3   # let the node try the SDK for a few seconds of samples and pings
  stop
  warnings=$(grep -c 'agones sdk call failed' "$WORK/node.log" || true)
  echo "  'agones sdk call failed' lines in the log: $warnings"
  grep -m1 'agones sdk call failed' "$WORK/node.log" | cut -c1-300 | sed 's/^/  /'
  # At most one first-failure line per kind of SDK call (six kinds) in a few seconds.
  [ "$warnings" -ge 1 ] && [ "$warnings" -le 6 ]
fi
echo "ok"
