#!/usr/bin/env bash
# stateless.sh — the official Python SDK (`mcp==2.3.0`) as a 2026-07-28 (stateless) client of
# mcpgate, which fronts the session-based example server over stdio (the bridging case).
#
#   tests/e2e/stateless.sh
#
# The SDK's Client (mode "auto") probes server/discover, must negotiate 2026-07-28, then lists,
# calls, reads, answers the example server's sampling/elicitation/roots requests through its
# multi-round-trip loop (mcpgate turns them into input_required results), and follows a
# subscriptions/listen stream (tests/e2e/stateless/check.py). Prints `N passed, M failed`.
# Time: ~5 s warm.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
LOG_TAG="e2e stateless"
OUT="$HERE/.out/stateless"
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
  - name: ex
    stdio: { command: "\${MCPGATE_EXE}", args: [example-server, --name, ex] }
YAML
start_bg "$OUT/gateway.log" "$BIN" run -c "$OUT/gateway.yaml"
wait_mcp "http://127.0.0.1:$PORT/mcp" "$LAST_PID" "$OUT/gateway.log" 30
rc=0
timeout 120 "$PEERS/venv/bin/python" "$HERE/stateless/check.py" "http://127.0.0.1:$PORT/mcp" >"$OUT/check.log" 2>&1 || rc=$?
sed 's/^/  /' "$OUT/check.log" | tail -n 40
summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT/check.log" | tail -n 1 || true)"
stop_all
DONE=1
if [ -z "$summary" ]; then echo "0 passed, 1 failed"; exit 1; fi
echo "$summary"
exit "$rc"
