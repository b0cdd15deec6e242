#!/usr/bin/env bash
# seed.sh — the seed walkthrough (shared/seed/kgateway-mcp-gateway-guide.txt) end to end.
#
#   tests/e2e/seed.sh
#
# markitdown-mcp (PyPI, pinned by scripts/peers.sh) over SSE behind mcpgate, with an SSE
# listener on a port chosen now and JWT authentication from the seed's own jwks.json (a single
# JWK); the official Python SDK client with the seed's token (valid until 2030). See
# tests/e2e/seed/test_seed.py for the steps; then MCP Inspector's CLI (the guide's client) lists
# and calls the tool with the seed token. Uses $MCPGATE_BIN, else builds the debug binary.
# The last line is `N passed, M failed`; exit 1 on any failure. Time: ~15 s warm.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
LOG_TAG="e2e seed"
OUT="$HERE/.out/seed"
DONE=0
on_exit() { stop_all; if [ "$DONE" = 0 ]; then echo "0 passed, 1 failed"; fi; }
trap on_exit EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/peers.sh"
rm -rf "$OUT" && mkdir -p "$OUT"
if [ -z "${MCPGATE_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -p mcpgate --quiet)
  MCPGATE_BIN="$ROOT/target/debug/mcpgate"
fi

MD_PORT="$(free_port)"
start_bg "$OUT/markitdown.log" "$PEERS/venv/bin/markitdown-mcp" --http --host 127.0.0.1 --port "$MD_PORT"
wait_tcp "$MD_PORT" "$LAST_PID" "$OUT/markitdown.log" 60

# The seed's jwks.json, exactly as in the guide (a single JWK object).
cat >"$OUT/seed-jwk.json" <<'JSON'
{ "use": "sig", "kty": "EC", "kid": "XhO06x8JjWH1wwkWkyeEUxsooGEWoEdidEpwyd_hmuI", "crv": "P-256", "alg": "ES256", "x": "XZHF8Em5LbpqfgewAalpSEH4Ka2I2xjcxxUt2j6-lCo", "y": "g3DFz45A7EOUMgmsNXatrXw1t-PG5xsbkxUs851RxSE" }
JSON
cp "$OUT/seed-jwk.json" "$OUT/jwks.json"
SEED_TOKEN="eyJhbGciOiJFUzI1NiIsImtpZCI6IlhoTzA2eDhKaldIMXd3a1dreWVFVXhzb29HRVdvRWRpZEVwd3lkX2htdUkiLCJ0eXAiOiJKV1QifQ.eyJhdWQiOiJtZS5jb20iLCJleHAiOjE5MDA2NTAyOTQsImlhdCI6MTc0MzYyNDc4NywiaXNzIjoibWUiLCJqdGkiOiJlM2MzNjhkYzBmNGUyODdiYzhkYmM2OTIyOTU5ZTA3M2YzMThkNTliYTlhZjdhY2Q0N2ViMWUzZGIyOTZlYTQwIiwibmJmIjoxNzQzNjI0Nzg3LCJzdWIiOiJtZSJ9.IshAKo62yWHwfnt62vR1nfa4SQmpSB-4ceAMXWs1P_rREl2gYj6nJ7HwLM5avv_eyOFbI-3rRZzCMCuNVLAF5w"
# A second subject, signed by a key minted here (`mcpgate token`), added to the JWKS later.
"$MCPGATE_BIN" token keygen --key "$OUT/you.pem" --jwks "$OUT/you-jwk.json" --single 2>/dev/null
YOU_TOKEN="$("$MCPGATE_BIN" token sign --key "$OUT/you.pem" --sub you --iss me --aud me.com --ttl 1h)"

GW_PORT="$(free_port)"
cat >"$OUT/config.yaml" <<YAML
# The seed's gateway: an SSE listener with JWT authentication from a local JWKS file.
listen:
  address: 127.0.0.1:$GW_PORT
targets:
  - name: markitdown
    sse: { url: "http://127.0.0.1:$MD_PORT/sse" }
auth:
  # The guide lists the tool and refuses the call: show denied tools in lists.
  hide_denied: false
  jwt:
    issuers: [me]
    audiences: [me.com]
    jwks: { file: jwks.json }
  resource:
    authorization_servers: ["https://idp.example.com"]
YAML
start_bg "$OUT/gateway.log" "$MCPGATE_BIN" run -c "$OUT/config.yaml"
wait_tcp "$GW_PORT" "$LAST_PID" "$OUT/gateway.log" 30
log "markitdown-mcp on :$MD_PORT, mcpgate on :$GW_PORT ($OUT/config.yaml)"

set +e
(cd "$HERE/seed" && GW="http://127.0.0.1:$GW_PORT" CONFIG="$OUT/config.yaml" JWKS="$OUT/jwks.json" \
  SEED_TOKEN="$SEED_TOKEN" YOU_TOKEN="$YOU_TOKEN" SEED_JWK="$OUT/seed-jwk.json" YOU_JWK="$OUT/you-jwk.json" GW_LOG="$OUT/gateway.log" \
  "$PEERS/venv/bin/python" -m pytest -q test_seed.py --junitxml="$OUT/seed.xml")
rc=$?
set -e
[ "$rc" = 0 ] || { log "gateway log tail:"; tail -n 40 "$OUT/gateway.log" >&2; }

# The guide's own client: MCP Inspector (CLI mode) over SSE with the seed's bearer token. The
# walkthrough above left the seed policy in the file, so the call now succeeds.
INSPECTOR="$PEERS/node22/bin/mcp-inspector"
IPASS=0; IFAIL=0
icheck() {
  local name="$1" expect="$2"; shift 2
  # Judged by the output (a refused call exits non-zero by design).
  timeout 60 "$INSPECTOR" --cli "http://127.0.0.1:$GW_PORT/sse" --transport sse "$@" >"$OUT/$name.out" 2>&1 || true
  if grep -Eq "$expect" "$OUT/$name.out"; then
    IPASS=$((IPASS + 1)); log "ok   inspector $name"
  else
    IFAIL=$((IFAIL + 1)); log "FAIL inspector $name (expected /$expect/):"; tail -n 20 "$OUT/$name.out"
  fi
}
icheck list '"name": "convert_to_markdown"' --header "Authorization: Bearer $SEED_TOKEN" --method tools/list
icheck call 'Hello \*world\*' --header "Authorization: Bearer $SEED_TOKEN" \
  --method tools/call --tool-name convert_to_markdown --tool-arg "uri=data:text/plain;base64,SGVsbG8gKndvcmxkKg=="
icheck denied-for-you 'Unknown tool: convert_to_markdown' --header "Authorization: Bearer $YOU_TOKEN" \
  --method tools/call --tool-name convert_to_markdown --tool-arg "uri=data:text/plain;base64,SGVsbG8gKndvcmxkKg=="

DONE=1
python3 "$HERE/lib/junit_summary.py" "seed=$OUT/seed.xml" >"$OUT/summary.txt" || rc=1
head -n -1 "$OUT/summary.txt"
read -r p f < <(tail -n 1 "$OUT/summary.txt" | awk '{ print $1 + 0, $3 + 0 }')
echo "  inspector: $IPASS passed, $IFAIL failed"
[ "$IFAIL" = 0 ] || rc=1
echo "$((p + IPASS)) passed, $((f + IFAIL)) failed"
[ "$rc" = 0 ]
