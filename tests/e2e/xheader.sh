#!/usr/bin/env bash
# xheader.sh — tool parameters mirrored into `Mcp-Param-*` headers (`x-mcp-header`, MCP
# 2026-07-28) between the official SDKs as 2026-07-28 clients (Python `mcp==2.3.0`, TypeScript
# `@modelcontextprotocol/client@2.4.0` on Node 22) and mcpgate.
#
#   tests/e2e/xheader.sh
#
# mcpgate fronts the example server with --xheader-tools (session-based, Streamable HTTP): the
# valid tool xh_route and six xh_bad_* tools whose annotations break one constraint each. Each
# SDK lists tools through mcpgate (only xh_route must be there), calls it with arguments whose
# headers it builds itself (plain, Base64-encoded, nested, integers, booleans, null), and checks
# the arguments arrive unchanged; a hand-made request with a mismatched header must get 400 and
# -32020 (py_client.py). A second example server speaks 2026-07-28 itself (--era modern), so
# each SDK's own filtering of the fixture's tools can be compared with mcpgate's; a second mcpgate
# fronts that server, so the same calls also cross a hop where mcpgate itself must add the
# headers (tests/e2e/xheader/py_client.py, ts_client.mjs). Finally the gateway log must name
# each tool it left out. Prints `N passed, M failed`. Time: ~5 s warm.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
LOG_TAG="e2e xheader"
OUT="$HERE/.out/xheader"
DONE=0
on_exit() { stop_all; if [ "$DONE" = 0 ]; then echo "0 passed, 1 failed"; fi; }
trap on_exit EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/peers.sh" >/dev/null
rm -rf "$OUT" && mkdir -p "$OUT"
BIN="$(gateway_bin)"
EXAMPLE="${MCPGATE_EXAMPLE_BIN:-}"
if [ -z "$EXAMPLE" ]; then
  log "building the example server (cargo build -p mcpgate-example-server)"
  (cd "$ROOT" && cargo build -p mcpgate-example-server --quiet)
  EXAMPLE="$ROOT/target/debug/mcpgate-example-server"
fi

FX_PORT="$(free_port)"
start_bg "$OUT/fixture.log" "$EXAMPLE" --http "127.0.0.1:$FX_PORT" --xheader-tools --name ex
wait_mcp "http://127.0.0.1:$FX_PORT/mcp" "$LAST_PID" "$OUT/fixture.log" 30
MODERN_PORT="$(free_port)"
start_bg "$OUT/fixture-2026.log" "$EXAMPLE" --http "127.0.0.1:$MODERN_PORT" --xheader-tools --era modern --name ex26
wait_tcp "$MODERN_PORT" "$LAST_PID" "$OUT/fixture-2026.log" 30

PORT="$(free_port)"
cat >"$OUT/gateway.yaml" <<YAML
listen: { address: "127.0.0.1:$PORT" }
targets:
  - name: ex
    streamable_http: { url: "http://127.0.0.1:$FX_PORT/mcp" }
YAML
start_bg "$OUT/gateway.log" "$BIN" run -c "$OUT/gateway.yaml"
wait_mcp "http://127.0.0.1:$PORT/mcp" "$LAST_PID" "$OUT/gateway.log" 30
# A second gateway in front of the 2026-07-28 example server: mcpgate speaks 2026-07-28 to it
# and must put Mcp-Param-* on its own calls (the server refuses a call without them).
PORT2="$(free_port)"
cat >"$OUT/gateway-2026.yaml" <<YAML
listen: { address: "127.0.0.1:$PORT2" }
targets:
  - name: ex26
    streamable_http: { url: "http://127.0.0.1:$MODERN_PORT/mcp" }
YAML
start_bg "$OUT/gateway-2026.log" "$BIN" run -c "$OUT/gateway-2026.yaml"
wait_mcp "http://127.0.0.1:$PORT2/mcp" "$LAST_PID" "$OUT/gateway-2026.log" 30

rc=0
passed=0
failed=0
# run_client NAME COMMAND...: runs one client, shows its lines, adds its `N passed, M failed`.
run_client() {
  local name="$1"; shift
  local crc=0
  timeout 120 "$@" >"$OUT/$name.log" 2>"$OUT/$name.err" || crc=$?
  echo "  [$name]"
  sed 's/^/  /' "$OUT/$name.log" | tail -n 40
  local summary
  summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT/$name.log" | tail -n 1 || true)"
  if [ -z "$summary" ]; then
    tail -n 20 "$OUT/$name.err" | sed 's/^/  /'
    failed=$((failed + 1)); rc=1; return
  fi
  local p f
  read -r p _ f _ <<<"$summary"
  passed=$((passed + p)); failed=$((failed + f))
  [ "$crc" = 0 ] || rc=1
}
GW_URL="http://127.0.0.1:$PORT/mcp"
DIRECT_URL="http://127.0.0.1:$MODERN_PORT/mcp"
GW2_URL="http://127.0.0.1:$PORT2/mcp"
run_client python "$PEERS/venv/bin/python" "$HERE/xheader/py_client.py" "$GW_URL" "$DIRECT_URL" "$GW2_URL"
run_client typescript "$PEERS/node22-sdk2/bin/node" "$HERE/xheader/ts_client.mjs" "$GW_URL" "$DIRECT_URL" "$GW2_URL"
stop_all
DONE=1
# One more check: mcpgate logged a warning naming each tool it left out.
missing=""
for t in xh_bad_number xh_bad_items xh_bad_dup xh_bad_token xh_bad_ref xh_bad_oneof; do
  grep 'Left out a tool whose x-mcp-header annotations are invalid' "$OUT/gateway.log" | grep -q "\"$t\"" || missing="$missing $t"
done
if [ -z "$missing" ]; then
  echo "  ok   mcpgate logged a warning naming each tool it left out"; passed=$((passed + 1))
else
  echo "  FAIL no warning in the gateway log for:$missing"; failed=$((failed + 1)); rc=1
fi
echo "$passed passed, $failed failed"
exit "$rc"
