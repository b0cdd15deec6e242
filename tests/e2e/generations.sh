#!/usr/bin/env bash
# generations.sh — both MCP generations behind ONE mcpgate, with real SDK peers on each side.
#
#   tests/e2e/generations.sh            mcpgate discovers each target's generation (the default)
#   tests/e2e/generations.sh session    every target configured `generation: session`, as a
#                                       gateway without the upstream side of 2026-07-28 behaves
#
# Servers (127.0.0.1, ports chosen now), one target each:
#   py     Python SDK `mcp==2.3.0` MCPServer over Streamable HTTP (2026-07-28 and session-based
#          on the same endpoint; its tools ask for input with Resolve/Elicit/Sample)
#          (tests/e2e/generations/py_server.py)
#   pyst   the same Python server with --stateless (`stateless_http=True`: no sessions on the
#          session-based side either)
#   ts     TypeScript SDK v2 `@modelcontextprotocol/server@2.4.0` over Streamable HTTP
#          (`createMcpHandler`; its ask_color tool returns `inputRequired(...)`)
#   tsio   the same TypeScript server over stdio (`serveStdio`)
#          (tests/e2e/generations/ts_server.mjs)
#   ev     server-everything 2026.8.31 over Streamable HTTP (session-based only: TypeScript SDK v1)
#   md     markitdown-mcp 0.0.1a8 over stdio (written session-based; on the venv's mcp 2.3.0 it
#          answers server/discover too)
#   ex     mcpgate's example server over stdio (session-based only)
# Clients through the gateway (each prints one `ok`/`FAIL`/`XFAIL` line per check):
#   py-2026   Python SDK `Client(mode="auto")`, must negotiate 2026-07-28 (generations/py_client.py)
#   py-2025   Python SDK `ClientSession` at 2025-11-25 (generations/py_client.py --legacy)
#   ts-2026   TypeScript SDK v2 `Client` with versionNegotiation auto (generations/ts_client.mjs)
#   ts-2025   TypeScript SDK v1 `Client` (session-based), the input-asking tools of the 2026-07-28
#             servers (generations/ts1_client.mjs)
# then minimal raw 2026-07-28 requests and the cache hints of merged lists against their
# 2026-07-28 contributors' (generations/raw.py), and the generation mcpgate speaks to each target
# according to /readyz (generations/eras.py).
#
# XFAIL lines are checks that fail because of a known gap in mcpgate (the reason is printed and
# listed in docs/protocol.md); they are counted apart and do not fail the run. A check is only
# marked so while the condition of the gap holds, read from the gateway itself: whether the
# build knows the target field `generation` (upstream era discovery), and which targets /readyz
# says it speaks to session-based; raw.py marks a cache-hint check only when the merged result
# shows the gap's exact symptom (the gateway's own defaults). A marked check that passes is
# `XPASS` and fails the run.
# The last line is `N passed, M failed` (expected failures not included in either).
# Time: ~45 s warm (markitdown-mcp's start, once per session-based client, dominates).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
LOG_TAG="e2e generations"
MODE="${1:-auto}"
case "$MODE" in auto | session) ;; *) echo "usage: $0 [auto|session]" >&2; exit 2 ;; esac
OUT="$HERE/.out/generations-$MODE"
DONE=0
on_exit() { stop_all; if [ "$DONE" = 0 ]; then echo "0 passed, 1 failed"; fi; }
trap on_exit EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/peers.sh" >/dev/null
rm -rf "$OUT" && mkdir -p "$OUT"
BIN="$(gateway_bin)"
PY="$PEERS/venv/bin/python"
NODE22="$PEERS/node22-sdk2/bin/node"
EVERYTHING_JS="$PEERS/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"

PY_PORT="$(free_port)"
start_bg "$OUT/py-server.log" "$PY" "$HERE/generations/py_server.py" --port "$PY_PORT"
wait_tcp "$PY_PORT" "$LAST_PID" "$OUT/py-server.log"
PYST_PORT="$(free_port)"
start_bg "$OUT/pyst-server.log" "$PY" "$HERE/generations/py_server.py" --port "$PYST_PORT" --stateless
wait_tcp "$PYST_PORT" "$LAST_PID" "$OUT/pyst-server.log"
TS_PORT="$(free_port)"
start_bg "$OUT/ts-server.log" "$NODE22" "$HERE/generations/ts_server.mjs" --http "$TS_PORT" --name ts
wait_tcp "$TS_PORT" "$LAST_PID" "$OUT/ts-server.log"
EV_PORT="$(free_port)"
start_bg "$OUT/everything-http.log" env PORT="$EV_PORT" node --require "$HERE/lib/loopback.cjs" "$EVERYTHING_JS" streamableHttp
wait_tcp "$EV_PORT" "$LAST_PID" "$OUT/everything-http.log"
log "python servers :$PY_PORT :$PYST_PORT, typescript server :$TS_PORT, server-everything :$EV_PORT"

GW_PORT="$(free_port)"
cat >"$OUT/gateway.yaml" <<YAML
listen: { address: "127.0.0.1:$GW_PORT" }
targets:
  - name: py
    streamable_http: { url: "http://127.0.0.1:$PY_PORT/mcp" }
  - name: pyst
    streamable_http: { url: "http://127.0.0.1:$PYST_PORT/mcp" }
  - name: ts
    streamable_http: { url: "http://127.0.0.1:$TS_PORT/mcp" }
  - name: tsio
    stdio: { command: "$NODE22", args: ["$HERE/generations/ts_server.mjs", --stdio, --name, tsio] }
  - name: ev
    streamable_http: { url: "http://127.0.0.1:$EV_PORT/mcp" }
  - name: md
    stdio: { command: "$PEERS/venv/bin/markitdown-mcp" }
  - name: ex
    stdio: { command: "\${MCPGATE_EXE}", args: [example-server, --name, ex] }
YAML
if [ "$MODE" = session ]; then
  sed -i 's/^  - name: \(.*\)$/  - name: \1\n    generation: session/' "$OUT/gateway.yaml"
fi
start_bg "$OUT/gateway.log" "$BIN" run -c "$OUT/gateway.yaml"
wait_mcp "http://127.0.0.1:$GW_PORT/mcp" "$LAST_PID" "$OUT/gateway.log" 60
URL="http://127.0.0.1:$GW_PORT/mcp"
log "mcpgate on :$GW_PORT (config $OUT/gateway.yaml)"

# wait_targets: until /readyz says all seven targets are up (markitdown's stdio start takes seconds).
wait_targets() {
  local i
  for i in $(seq 300); do
    if curl -sf "http://127.0.0.1:$GW_PORT/readyz" | "$PY" -c '
import json, sys
targets = json.load(sys.stdin).get("targets", [])
sys.exit(0 if len(targets) == 7 and all(t.get("state") == "up" for t in targets) else 1)
' 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "not every target came up after 60 s; /readyz:"; curl -s "http://127.0.0.1:$GW_PORT/readyz" >&2 || true
}
wait_targets

# Does this mcpgate build discover its targets' generation? (Its configuration then has the
# target field `generation`; an older build rejects the field as unknown.)
cat >"$OUT/probe.yaml" <<YAML
targets:
  - name: probe
    stdio: { command: "true" }
    generation: auto
YAML
if "$BIN" check -c "$OUT/probe.yaml" >"$OUT/probe.log" 2>&1; then DISCOVERY=yes; else DISCOVERY=no; fi
[ "$MODE" = session ] && DISCOVERY=session
# The targets mcpgate speaks to session-based now: the clients treat the input-asking tools of
# SDK servers that are stateless on their session-based side (ts, pyst) as known gaps only there.
GEN_SESSION_SPOKEN="$(curl -s "http://127.0.0.1:$GW_PORT/readyz" | "$PY" -c '
import json, sys
print(" ".join(t["name"] for t in json.load(sys.stdin).get("targets", []) if t.get("protocol_version") != "2026-07-28"))
')"
export GEN_SESSION_SPOKEN
log "era discovery in this build: $DISCOVERY; spoken to session-based: $GEN_SESSION_SPOKEN"

rc=0
run_client() {
  local name=$1; shift
  local out="$OUT/client-$name.log" t0=$SECONDS
  timeout 120 "$@" >"$out" 2>&1 || rc=1
  echo "-- $name ($((SECONDS - t0)) s)"
  grep -E '^(ok  |FAIL|XFAIL|XPASS)' "$out" | sed 's/^/  /' || true
  if ! grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$out"; then
    echo "  FAIL $name did not finish; its log:"; tail -n 20 "$out" | sed 's/^/    /'
    echo "FAIL $name did not finish" >>"$out"
  fi
}
run_client py-2026 "$PY" "$HERE/generations/py_client.py" "$URL"
run_client py-2025 "$PY" "$HERE/generations/py_client.py" --legacy "$URL"
run_client ts-2026 "$NODE22" "$HERE/generations/ts_client.mjs" "$URL"
run_client ts-2025 node "$HERE/generations/ts1_client.mjs" "$URL"
run_client raw "$PY" "$HERE/generations/raw.py" "$URL" \
  py="http://127.0.0.1:$PY_PORT/mcp" pyst="http://127.0.0.1:$PYST_PORT/mcp" ts="http://127.0.0.1:$TS_PORT/mcp"
run_client eras "$PY" "$HERE/generations/eras.py" "$DISCOVERY" "http://127.0.0.1:$GW_PORT"

stop_all
passed=$(cat "$OUT"/client-*.log | grep -cE '^ok  ' || true)
failed=$(cat "$OUT"/client-*.log | grep -cE '^(FAIL|XPASS)' || true)
xfail=$(cat "$OUT"/client-*.log | grep -cE '^XFAIL' || true)
echo "expected failures (known gaps, not counted): $xfail"
DONE=1
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$rc" = 0 ]
