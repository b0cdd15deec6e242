#!/usr/bin/env bash
# prometheus.sh — mcpgate's metrics scraped by a real Prometheus (Debian package `prometheus`).
#
#   tests/e2e/prometheus.sh
#
# Checks the shipped alert rules with promtool, starts mcpgate (the quickstart's two stdio
# targets) and Prometheus on run-time loopback ports, Prometheus scraping mcpgate every second
# with the alert rules loaded; makes a known number of tool calls with the official Python SDK
# (Streamable HTTP and legacy SSE), waits for a scrape, then checks with PromQL over the HTTP
# API that the tool-call counter and the latency histogram's _count show exactly those calls;
# also that the shipped alert rules evaluate healthily and the example dashboard's queries parse.
# Prints `N passed, M failed`. Time: ~20 s warm (plus the apt-get install the first time).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
LOG_TAG="e2e prometheus"
OUT="$HERE/.out/prometheus"
PASS=0
FAIL=0
DONE=0
on_exit() { stop_all; if [ "$DONE" = 0 ]; then echo "0 passed, 1 failed"; fi; }
trap on_exit EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/peers.sh" >/dev/null
"$ROOT/scripts/peers.sh" prometheus >/dev/null
rm -rf "$OUT" && mkdir -p "$OUT"
PY="$PEERS/venv/bin/python"

ok() { PASS=$((PASS + 1)); log "ok   $1"; }
ko() { FAIL=$((FAIL + 1)); log "FAIL $1"; }

# 1. The alert rules shipped in docs/ are valid.
if promtool check rules "$ROOT/docs/prometheus-alerts.yaml" >"$OUT/promtool.out" 2>&1; then
  ok "promtool check rules docs/prometheus-alerts.yaml"
else
  ko "promtool check rules docs/prometheus-alerts.yaml"; cat "$OUT/promtool.out"
fi

# 2. mcpgate and Prometheus.
BIN="$(gateway_bin)"
PORT="$(free_port)"
cat >"$OUT/gateway.yaml" <<YAML
listen: { address: "127.0.0.1:$PORT" }
targets:
  - name: tools
    stdio: { command: "\${MCPGATE_EXE}", args: [example-server, --name, tools] }
  - name: notes
    stdio: { command: "\${MCPGATE_EXE}", args: [example-server, --name, notes] }
YAML
start_bg "$OUT/gateway.log" "$BIN" run -c "$OUT/gateway.yaml"
wait_mcp "http://127.0.0.1:$PORT/mcp" "$LAST_PID" "$OUT/gateway.log" 30

PPORT="$(free_port)"
cp "$ROOT/docs/prometheus-alerts.yaml" "$OUT/alerts.yaml"
cat >"$OUT/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yaml]
scrape_configs:
  - job_name: mcpgate
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
YAML
if promtool check config "$OUT/prometheus.yml" >"$OUT/promtool-config.out" 2>&1; then
  ok "promtool check config (scrape config with the alert rules)"
else
  ko "promtool check config"; cat "$OUT/promtool-config.out"
fi
start_bg "$OUT/prometheus.log" prometheus \
  --config.file="$OUT/prometheus.yml" \
  --storage.tsdb.path="$OUT/data" \
  --web.listen-address="127.0.0.1:$PPORT" \
  --log.level=warn
wait_tcp "$PPORT" "$LAST_PID" "$OUT/prometheus.log" 30

# query PROMQL: the first sample's value ("" when the result is empty).
query() {
  curl -s --max-time 5 --get --data-urlencode "query=$1" "http://127.0.0.1:$PPORT/api/v1/query" |
    "$PY" -c 'import json, sys
d = json.load(sys.stdin)
r = d.get("data", {}).get("result", []) if d.get("status") == "success" else []
print(r[0]["value"][1] if r else "")'
}

# expect NAME PROMQL VALUE: polls (scrapes run every second) until PROMQL gives VALUE, 30 s at most.
expect() {
  local name="$1" promql="$2" want="$3" got="" i
  for i in $(seq 60); do
    got="$(query "$promql")"
    [ "$got" = "$want" ] && { ok "$name = $want"; return 0; }
    sleep 0.5
  done
  ko "$name: $promql gave '${got}', expected $want"
}

# 3. Known calls with the official Python SDK: 5 echo + 2 fail over Streamable HTTP, 3 echo over SSE.
cat >"$OUT/calls.py" <<'PY'
import asyncio, sys
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

base = sys.argv[1]

async def session(cm, echo, fail):
    async with cm as streams:
        async with ClientSession(streams[0], streams[1]) as s:
            await s.initialize()
            for i in range(echo):
                r = await s.call_tool("tools_echo", {"message": f"call {i}"})
                assert not r.is_error, r
            for i in range(fail):
                r = await s.call_tool("tools_fail", {"message": "expected"})
                assert r.is_error, r

async def main():
    await session(streamable_http_client(f"{base}/mcp"), 5, 2)
    await session(sse_client(f"{base}/sse"), 3, 0)
    print("calls done")

asyncio.run(main())
PY
if timeout 120 "$PY" "$OUT/calls.py" "http://127.0.0.1:$PORT" >"$OUT/calls.out" 2>&1; then
  ok "10 tool calls with the Python SDK (Streamable HTTP and SSE)"
else
  ko "tool calls with the Python SDK"; tail -n 30 "$OUT/calls.out"
fi

# 4. What Prometheus scraped.
expect "up{job=mcpgate}" 'up{job="mcpgate"}' 1
expect "echo calls ok" 'mcpgate_tool_calls_total{target="tools",tool="echo",outcome="ok"}' 8
expect "fail calls tool_error" 'mcpgate_tool_calls_total{target="tools",tool="fail",outcome="tool_error"}' 2
expect "all tool calls" 'sum(mcpgate_tool_calls_total)' 10
expect "echo latency histogram _count" 'mcpgate_tool_call_duration_seconds_count{target="tools",tool="echo"}' 8
expect "echo latency histogram +Inf bucket" 'mcpgate_tool_call_duration_seconds_bucket{target="tools",tool="echo",le="+Inf"}' 8
expect "upstream latency histogram _count" 'mcpgate_upstream_request_duration_seconds_count{target="tools",method="tools/call"}' 10
expect "tools/call requests by outcome" 'sum by (method) (mcpgate_mcp_requests_total{method="tools/call"})' 10
expect "sessions over SSE" 'mcpgate_downstream_sessions_started_total{transport="sse"}' 1
expect "targets up" 'sum(mcpgate_target_up)' 2
p99="$(query 'histogram_quantile(0.99, sum by (le) (mcpgate_tool_call_duration_seconds_bucket{tool="echo"}))')"
if "$PY" -c 'import sys; v = float(sys.argv[1]); sys.exit(0 if 0 < v <= 1 else 1)' "$p99" 2>/dev/null; then
  ok "histogram_quantile(0.99) of echo from the buckets: ${p99}s"
else
  ko "histogram_quantile(0.99) of echo: '$p99' (expected between 0 and 1 s)"
fi

# 5. The alert rules evaluate against real series without errors, and none fires.
sleep 2  # a few evaluation rounds with the calls' series present
rules="$(curl -s --max-time 5 "http://127.0.0.1:$PPORT/api/v1/rules")"
shipped="$(grep -c -- '- alert:' "$ROOT/docs/prometheus-alerts.yaml")"
if printf '%s' "$rules" | SHIPPED="$shipped" "$PY" -c 'import json, os, sys
d = json.load(sys.stdin)
rules = [r for g in d["data"]["groups"] for r in g["rules"]]
bad = [(r["name"], r.get("lastError")) for r in rules if r.get("health") != "ok"]
firing = [r["name"] for r in rules if r.get("state") == "firing"]
print(len(rules), "rules; unhealthy:", bad, "firing:", firing)
sys.exit(1 if bad or firing or len(rules) != int(os.environ["SHIPPED"]) else 0)' >"$OUT/rules.out" 2>&1; then
  ok "alert rules loaded and healthy: $(cat "$OUT/rules.out")"
else
  ko "alert rules: $(cat "$OUT/rules.out")"
fi

# 6. Every query of the example Grafana dashboard is valid PromQL (dashboard variables filled in).
if "$PY" - "$ROOT/docs/grafana-dashboard.json" "http://127.0.0.1:$PPORT" >"$OUT/dashboard.out" 2>&1 <<'PY'
import json, sys, urllib.parse, urllib.request
dash, base = json.load(open(sys.argv[1])), sys.argv[2]
bad, n = [], 0
for p in dash["panels"]:
    for t in p["targets"]:
        q = t["expr"].replace("$instance", ".*").replace("$target", ".*").replace("$__rate_interval", "1m")
        n += 1
        try:
            url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
            if json.load(urllib.request.urlopen(url, timeout=5))["status"] != "success":
                bad.append(q)
        except Exception as e:
            bad.append(f"{q}: {e}")
print(n, "queries;", "invalid:", bad)
sys.exit(1 if bad or n == 0 else 0)
PY
then
  ok "Grafana dashboard queries: $(cat "$OUT/dashboard.out")"
else
  ko "Grafana dashboard queries: $(cat "$OUT/dashboard.out")"
fi

DONE=1
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
