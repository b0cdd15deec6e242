#!/usr/bin/env bash
# run.sh — the official MCP conformance suite (server scenarios) against our fixture server.
#
#   tests/conformance/run.sh [direct|gateway]        (default: direct)
#
# Installs the pinned peers (scripts/peers.sh), starts tests/conformance/fixture_server.py (official
# Python SDK) on a loopback port chosen now, and runs `conformance server --url …`
# (@modelcontextprotocol/conformance@0.1.16 on Node 22):
#   direct   against the fixture itself;
#   gateway  through mcpgate (built, or $MCPGATE_BIN), with prefix mode `never` and one
#            Streamable HTTP target pointing at the fixture, so the scenario names still match.
# Output and per-scenario checks.json go to tests/conformance/.out/. Prints the suite's
# `Total: N passed, M failed` line last and exits non-zero when a check failed.
# Options: CONFORMANCE_SUITE=active|all|pending (default active: the 30 non-pending scenarios).
# Time: ~5 s warm (direct); gateway adds the release build; a first run adds ~75 s of installs.
set -euo pipefail

MODE="${1:-direct}"
case "$MODE" in direct|gateway) ;; *) echo "usage: $0 [direct|gateway]" >&2; exit 2 ;; esac
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../e2e/lib/common.sh
. "$HERE/../e2e/lib/common.sh"
LOG_TAG="conformance $MODE"
OUT="$HERE/.out"
# On any exit: stop what we started; an early failure still ends with a verdict line.
DONE=0
on_exit() { stop_all; if [ "$DONE" = 0 ]; then echo "Total: 0 passed, 1 failed"; fi; }
trap on_exit EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/peers.sh"
rm -rf "$OUT" && mkdir -p "$OUT"

FX_PORT="$(free_port)"
start_bg "$OUT/fixture.log" "$PEERS/venv/bin/python" "$HERE/fixture_server.py" --port "$FX_PORT"
wait_mcp "http://127.0.0.1:$FX_PORT/mcp" "$LAST_PID" "$OUT/fixture.log" 30
URL="http://127.0.0.1:$FX_PORT/mcp"
log "fixture server on $URL"

if [ "$MODE" = gateway ]; then
  GATEWAY="$(gateway_bin)"
  GW_PORT="$(free_port)"
  cat >"$OUT/gateway.yaml" <<YAML
listen:
  address: 127.0.0.1:$GW_PORT
naming:
  separator: "_"
  prefix: never
targets:
  - name: fixture
    streamable_http: { url: "$URL", headers: {} }
YAML
  start_bg "$OUT/gateway.log" "$GATEWAY" run -c "$OUT/gateway.yaml"
  wait_mcp "http://127.0.0.1:$GW_PORT/mcp" "$LAST_PID" "$OUT/gateway.log" 60
  URL="http://127.0.0.1:$GW_PORT/mcp"
  log "mcpgate on $URL (config $OUT/gateway.yaml)"
fi

log "conformance server --url $URL --suite ${CONFORMANCE_SUITE:-active}"
rc=0
"$PEERS/node22/bin/conformance" server --url "$URL" --suite "${CONFORMANCE_SUITE:-active}" -o "$OUT/results" \
  >"$OUT/conformance.log" 2>&1 || rc=$?
stop_all

# The per-scenario summary and the failed checks, then the suite's own total line.
sed -n '/=== SUMMARY ===/,$p' "$OUT/conformance.log" | grep -v '^Total:' | grep -v '^\s*$' || true
grep -h -B1 -A2 '"status": "FAILURE"' "$OUT"/results/*/checks.json 2>/dev/null | grep -E '"(id|errorMessage)"' || true
total="$(grep -E '^Total: [0-9]+ passed, [0-9]+ failed' "$OUT/conformance.log" || true)"
if [ -z "$total" ]; then
  log "the conformance run ended without a total (exit $rc); its log:"; tail -n 40 "$OUT/conformance.log"
  exit 1
fi
DONE=1
echo "$total"
exit "$rc"
