#!/usr/bin/env bash
# run.sh — end-to-end suite against real MCP peers, directly or through mcpgate.
#
#   tests/e2e/run.sh [direct|gateway]        (default: direct)
#
# Installs the pinned peers (scripts/peers.sh), starts @modelcontextprotocol/server-everything
# and markitdown-mcp on loopback ports chosen now, then runs the Python (official SDK, pytest) and
# Node (TS SDK v1, node --test) suites over Streamable HTTP and legacy SSE:
#   direct   against the servers themselves (everything in `streamableHttp` and `sse` modes);
#   gateway  builds mcpgate (or uses $MCPGATE_BIN), fronts targets ev (everything over stdio),
#            evhttp (everything over Streamable HTTP), md (markitdown over SSE) and mdhttp
#            (markitdown over Streamable HTTP), and runs every suite through it once per target
#            prefix (ev_, evhttp_, md_, mdhttp_).
# Reports land in tests/e2e/.out/. The last line is `N passed, M failed`; exit 1 on any failure.
# Options: E2E_SUITES="python node" (default both).
# Time: direct ~35 s warm; gateway about twice that plus the release build; a first run adds
# ~75 s of installs.
set -euo pipefail

MODE="${1:-direct}"
case "$MODE" in direct|gateway) ;; *) echo "usage: $0 [direct|gateway]" >&2; exit 2 ;; esac
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
LOG_TAG="e2e $MODE"
OUT="$HERE/.out"
SUITES="${E2E_SUITES:-python node}"
# On any exit: stop what we started; an early failure still ends with a verdict line.
DONE=0
on_exit() { stop_all; if [ "$DONE" = 0 ]; then echo "0 passed, 1 failed"; fi; }
trap on_exit EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/peers.sh"
rm -rf "$OUT" && mkdir -p "$OUT"
EVERYTHING_JS="$PEERS/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
LOOPBACK="$HERE/lib/loopback.cjs"

# ---- upstream servers ---------------------------------------------------------------------------
EV_PORT="$(free_port)"
start_bg "$OUT/everything-http.log" env PORT="$EV_PORT" node --require "$LOOPBACK" "$EVERYTHING_JS" streamableHttp
wait_tcp "$EV_PORT" "$LAST_PID" "$OUT/everything-http.log"
MD_PORT="$(free_port)"
start_bg "$OUT/markitdown.log" "$PEERS/venv/bin/markitdown-mcp" --http --host 127.0.0.1 --port "$MD_PORT"
wait_tcp "$MD_PORT" "$LAST_PID" "$OUT/markitdown.log" 60
log "server-everything (Streamable HTTP) on :$EV_PORT, markitdown-mcp on :$MD_PORT"

# ---- the runs: label, then the environment each suite sees ---------------------------------------
RUNS=()
if [ "$MODE" = direct ]; then
  EV_SSE_PORT="$(free_port)"
  start_bg "$OUT/everything-sse.log" env PORT="$EV_SSE_PORT" node --require "$LOOPBACK" "$EVERYTHING_JS" sse
  wait_tcp "$EV_SSE_PORT" "$LAST_PID" "$OUT/everything-sse.log"
  log "server-everything (legacy SSE) on :$EV_SSE_PORT"
  RUNS+=("everything|MCP_URL=http://127.0.0.1:$EV_PORT/mcp MCP_SSE_URL=http://127.0.0.1:$EV_SSE_PORT/sse TOOL_PREFIX= EXPECT_SERVER_NAME=mcp-servers/everything")
  RUNS+=("markitdown|MD_URL=http://127.0.0.1:$MD_PORT/mcp MD_SSE_URL=http://127.0.0.1:$MD_PORT/sse MD_PREFIX= EXPECT_MD_SERVER_NAME=markitdown")
else
  GATEWAY="$(gateway_bin)"
  GW_PORT="$(free_port)"
  cat >"$OUT/gateway.yaml" <<YAML
listen:
  address: 127.0.0.1:$GW_PORT
naming:
  separator: "_"
  prefix: auto
targets:
  - name: ev
    stdio: { command: "$PEERS/node/node_modules/.bin/mcp-server-everything", args: [stdio], env: {}, cwd: null }
  - name: evhttp
    streamable_http: { url: "http://127.0.0.1:$EV_PORT/mcp", headers: {} }
  - name: md
    sse: { url: "http://127.0.0.1:$MD_PORT/sse" }
  - name: mdhttp
    streamable_http: { url: "http://127.0.0.1:$MD_PORT/mcp", headers: {} }
YAML
  start_bg "$OUT/gateway.log" "$GATEWAY" run -c "$OUT/gateway.yaml"
  wait_mcp "http://127.0.0.1:$GW_PORT/mcp" "$LAST_PID" "$OUT/gateway.log" 60
  log "mcpgate on :$GW_PORT (config $OUT/gateway.yaml)"
  GW="MCP_URL=http://127.0.0.1:$GW_PORT/mcp MCP_SSE_URL=http://127.0.0.1:$GW_PORT/sse RESOURCE_COPIES_MAX=2"
  MDGW="MD_URL=http://127.0.0.1:$GW_PORT/mcp MD_SSE_URL=http://127.0.0.1:$GW_PORT/sse"
  RUNS+=("ev|$GW TOOL_PREFIX=ev_")
  RUNS+=("evhttp|$GW TOOL_PREFIX=evhttp_")
  RUNS+=("md|$MDGW MD_PREFIX=md_")
  RUNS+=("mdhttp|$MDGW MD_PREFIX=mdhttp_")
fi

# ---- suites -------------------------------------------------------------------------------------
REPORTS=()
for run in "${RUNS[@]}"; do
  label="${run%%|*}"
  read -r -a vars <<<"${run#*|}"
  case "$label" in ev*) kind=everything ;; *) kind=markitdown ;; esac
  for suite in $SUITES; do
    report="$OUT/$suite-$label.xml"
    REPORTS+=("$suite/$label=$report")
    log "$suite suite, $label: ${vars[*]}"
    if [ "$suite" = python ]; then
      (cd "$HERE/python" && env "${vars[@]}" PYTHONDONTWRITEBYTECODE=1 \
        "$PEERS/venv/bin/python" -m pytest -q "test_$kind.py" --junitxml="$report") || true
    else
      env "${vars[@]}" PEERS_DIR="$PEERS" node --test --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=junit --test-reporter-destination="$report" "$HERE/node/$kind.test.mjs" || true
    fi
  done
done

stop_all
log "summary ($MODE):"
DONE=1
python3 "$HERE/lib/junit_summary.py" "${REPORTS[@]}"
