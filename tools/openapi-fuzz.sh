#!/usr/bin/env bash
# Validates the OpenAPI document a real `coil serve` publishes and fuzzes the node against it
# with Schemathesis (property-based: requests generated from the document, every answer
# checked against it). Fails on any 5xx, any answer whose status, content type, headers or
# body the document does not allow, and any invalid document.
#
# What is fuzzed: every operation of `coil serve` (node, web client, matchmaker, accounts),
# with INTERNAL_SECRET set (the fuzzer does not know it, so /internal/* answer 401) and debug
# commands on. Excluded: nothing by path. The room WebSocket route is fuzzed as HTTP (a
# generated request is never a WebSocket handshake, so it answers 400/426/429); its binary
# protocol is fuzzed by `fuzz/` instead. See docs/http-api.md.
#
# Usage: tools/openapi-fuzz.sh [extra schemathesis args]. Env: FUZZ_MAX_EXAMPLES (default
# 30), FUZZ_SECONDS (time budget of the run, default 150).
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned so a new release cannot turn CI red by itself; raise them deliberately.
SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.7.2
venv=target/openapi-fuzz/venv
if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION" \
  || ! "$venv/bin/pip" show -q "openapi-spec-validator" 2>/dev/null; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$VALIDATOR_VERSION"
fi

cargo build -q -p coil
data_dir=$(mktemp -d)
log="$data_dir/coil.log"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Argon2 at its lowest cost: registrations with valid usernames are generated (the schema
# carries the rules), and the contract, not the hash cost, is what is under test here.
INTERNAL_SECRET=openapi-fuzz-internal-secret-0123456789 ARGON2_MEMORY_KIB=8 ARGON2_ITERATIONS=1 \
  ./target/debug/coil serve --host 127.0.0.1 --port "$port" --data-dir "$data_dir" \
  --enable-debug-commands true >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fsS "$base/api/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/api/health" >/dev/null

# The document itself first, against the OpenAPI 3.1 specification's own schema.
curl -fsS "$base/api/openapi.json" -o "$data_dir/openapi.json"
"$venv/bin/python" - "$data_dir/openapi.json" <<'PY'
import json, sys
from openapi_spec_validator import OpenAPIV31SpecValidator
document = json.load(open(sys.argv[1]))
assert document["openapi"].startswith("3.1"), document["openapi"]
errors = list(OpenAPIV31SpecValidator(document).iter_errors())
for error in errors:
    print(f"openapi.json: {error.message} at {'/'.join(map(str, error.absolute_path))}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"openapi.json: valid OpenAPI {document['openapi']}, {len(document['paths'])} paths")
PY

status=0
# One worker: with two, Hypothesis parses lambda sources from two threads at once, and CPython
# 3.11 can fail that with "AST constructor recursion depth mismatch" (seen once in .ci/run on
# GET /api/leaderboard, an error of the tool, not of the API).
# Run from the temporary directory: Schemathesis keeps a cache (.schemathesis/) in its working
# directory, and replays of old failures from it would make runs differ.
root=$PWD
(cd "$data_dir" && timeout "$(( ${FUZZ_SECONDS:-150} + 60 ))" "$root/$venv/bin/schemathesis" \
  --config-file "$root/tools/schemathesis.toml" \
  run "$base/api/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "${FUZZ_MAX_EXAMPLES:-30}" \
  --max-time "${FUZZ_SECONDS:-150}" \
  --workers 1 \
  --seed 1 \
  "$@") || status=$?

if grep -q "panicked" "$log"; then
  echo "coil serve panicked during the run:" >&2
  grep -A5 "panicked" "$log" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "openapi-fuzz: failed (exit $status); server log: last lines" >&2
  tail -n 30 "$log" >&2
fi
exit "$status"
