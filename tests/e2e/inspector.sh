#!/usr/bin/env bash
# inspector.sh — MCP Inspector's CLI (@modelcontextprotocol/inspector 2.x, Node 22) through mcpgate.
#
#   tests/e2e/inspector.sh
#
# Starts mcpgate on a run-time loopback port with the built-in example server as two stdio
# targets (the quickstart setup), then drives it with `mcp-inspector --cli` over Streamable HTTP
# and legacy SSE: tools/list, tools/call, prompts/get, resources/read. Prints `N passed, M failed`.
# Time: ~15 s warm.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
LOG_TAG="e2e inspector"
OUT="$HERE/.out/inspector"
PASS=0
FAIL=0
DONE=0
on_exit() { stop_all; if [ "$DONE" = 0 ]; then echo "0 passed, 1 failed"; fi; }
trap on_exit EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/peers.sh" >/dev/null
rm -rf "$OUT" && mkdir -p "$OUT"
BIN="$(gateway_bin)"
PORT="$(free_port)"
cat >"$OUT/gateway.yaml" <<YAML
listen: { address: "127.0.0.1:$PORT" }
targets:
  - name: tools
    stdio: { command: "\${MCPGATE_EXE}", args: [example-server, --name, tools] }
  - name: notes
    stdio: { command: "\${MCPGATE_EXE}", args: [example-server, --name, notes, --page-size, "2"] }
YAML
start_bg "$OUT/gateway.log" "$BIN" run -c "$OUT/gateway.yaml"
wait_mcp "http://127.0.0.1:$PORT/mcp" "$LAST_PID" "$OUT/gateway.log" 30
INSPECTOR="$PEERS/node22/bin/mcp-inspector"

# check NAME EXPECTED-REGEX ARGS...: run the inspector CLI and match its output.
check() {
  local name="$1" expect="$2"; shift 2
  local out="$OUT/$name.out"
  if timeout 60 "$INSPECTOR" --cli "$@" >"$out" 2>&1 && grep -Eq "$expect" "$out"; then
    PASS=$((PASS + 1)); log "ok   $name"
  else
    FAIL=$((FAIL + 1)); log "FAIL $name (expected /$expect/):"; tail -n 20 "$out"
  fi
}

for transport in http sse; do
  if [ "$transport" = http ]; then URL="http://127.0.0.1:$PORT/mcp"; else URL="http://127.0.0.1:$PORT/sse"; fi
  check "$transport-tools-list" '"name": "notes_convert_to_markdown"' "$URL" --transport "$transport" --method tools/list
  check "$transport-echo" '"text": "hello through mcpgate"' "$URL" --transport "$transport" \
    --method tools/call --tool-name tools_echo --tool-arg "message=hello through mcpgate"
  check "$transport-markdown" '# Shopping.*- milk.*<https://example.com>' "$URL" --transport "$transport" \
    --method tools/call --tool-name tools_convert_to_markdown \
    --tool-arg "text=$(printf 'Shopping\n\n- milk\n- eggs\n\nsee https://example.com')"
  check "$transport-prompt" '"role": "user"' "$URL" --transport "$transport" \
    --method prompts/get --prompt-name notes_greeting
  check "$transport-resource" 'example://readme' "$URL" --transport "$transport" \
    --method resources/read --uri example://readme
done

DONE=1
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
