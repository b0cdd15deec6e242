#!/usr/bin/env bash
# traffic.sh — traffic-management errors as real MCP clients see them through mcpgate.
#
#   tests/e2e/traffic.sh
#
# Starts mcpgate (MCPGATE_BIN, or a release build) on a run-time loopback port with two stdio
# example-server targets: `lim` under a per-tool rate limit (1 call of `echo` a minute) and
# `slow`, which never answers a call, with a 1 s call timeout. The official Python SDK (2.3.0)
# and TypeScript SDK v1 (1.32.2) clients, over Streamable HTTP and legacy SSE, each check that a
# call over the limit fails as JSON-RPC -32005 with data.scope/retryAfterMs, a timed-out call
# as -32003 naming the target, and that the session stays usable. Each client gets a fresh
# gateway (the limit is per gateway). Prints `N passed, M failed`. Time: ~15 s warm.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
LOG_TAG="e2e traffic"
OUT="$HERE/.out/traffic"
PASS=0
FAIL=0
DONE=0
on_exit() { stop_all; if [ "$DONE" = 0 ]; then echo "0 passed, 1 failed"; fi; }
trap on_exit EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/peers.sh" >/dev/null
rm -rf "$OUT" && mkdir -p "$OUT"
GATEWAY="$(gateway_bin)"

run_client() {
  local label="$1"; shift
  local port; port="$(free_port)"
  cat >"$OUT/$label.yaml" <<YAML
listen: { address: 127.0.0.1:$port }
traffic:
  rate_limits:
    - { scope: tool, match: "lim:echo", rate: 1/m, burst: 1 }
targets:
  - name: lim
    stdio: { command: "$GATEWAY", args: [example-server] }
  - name: slow
    stdio: { command: "$GATEWAY", args: [example-server, --fault, hang] }
    timeouts: { call: 1s }
YAML
  start_bg "$OUT/$label.gateway.log" "$GATEWAY" run -c "$OUT/$label.yaml"
  wait_mcp "http://127.0.0.1:$port/mcp" "$LAST_PID" "$OUT/$label.gateway.log" 60
  local url="http://127.0.0.1:$port/mcp"
  case "$label" in *sse) url="http://127.0.0.1:$port/sse" ;; esac
  "$@" "$url" 2>"$OUT/$label.client.err" | tee "$OUT/$label.client.out" || true
  PASS=$((PASS + $(grep -c '^ok ' "$OUT/$label.client.out" || true)))
  local failed; failed="$(grep -c '^FAIL ' "$OUT/$label.client.out" || true)"
  # A client that died before its four checks counts as failing the missing ones.
  local seen=$(( $(grep -c '^ok ' "$OUT/$label.client.out" || true) + failed ))
  if [ "$seen" -lt 4 ]; then
    failed=$((failed + 4 - seen)); log "$label: client ended early:"; tail -n 20 "$OUT/$label.client.err" >&2
  fi
  FAIL=$((FAIL + failed))
  stop_all
}

for transport in streamable_http sse; do
  run_client "python-$transport" "$PEERS/venv/bin/python" "$HERE/traffic/client.py" "$transport"
  run_client "node-$transport" node "$HERE/traffic/client.mjs" "$transport"
done

DONE=1
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
