#!/usr/bin/env bash
# run.sh — the official MCP conformance suite (server scenarios) against our fixture server.
#
#   tests/conformance/run.sh [direct|gateway|direct-native|gateway-native|direct-2026|gateway-2026|
#                             direct-2026-native|gateway-2026-native]      (default: direct)
#
# Installs the pinned peers (scripts/peers.sh), starts tests/conformance/fixture_server.py (official
# Python SDK) on a loopback port chosen now, and runs `conformance server --url …`
# (@modelcontextprotocol/conformance@0.1.16 on Node 22):
#   direct   against the fixture itself;
#   gateway  through mcpgate (built, or $MCPGATE_BIN), with prefix mode `never` and one
#            Streamable HTTP target pointing at the fixture, so the scenario names still match;
#            `generation: session` (the fixture's tools ask for input the session-based way).
#   direct-native / gateway-native  the same session-based suite against the fixture started
#            with --native-2026, whose input-asking tools return 2026-07-28 input_required results:
#            alone (those tools fail: the SDK will not send input_required on a session), and
#            through mcpgate (`generation: auto`), which must speak 2026-07-28 to it (checked on
#            /readyz, as below) and relay those results as server->client requests.
#   direct-2026 / gateway-2026  the same with the conformance prerelease
#            (@modelcontextprotocol/conformance@0.2.0-alpha.12) running the 2026-07-28 requirement
#            set (`--requirements 2026-07-28`), the fixture started with --stateless-fixtures (the
#            2026 scenarios' tools, written the session-based way: the bridging case). gateway-2026
#            passes baseline-2026-07-28.yml as --expected-failures and ends with
#            `Total: P passed, F failed` over the scored scenarios, F counting only failures that
#            are not in the baseline (the expected ones are listed above it).
#   direct-2026-native / gateway-2026-native  the same requirement set with the fixture started
#            with --native-2026 (the 2026 scenarios' tools written the 2026-07-28 way: they return
#            input_required results themselves). gateway-2026-native puts mcpgate in front with
#            `generation: auto` and fails unless /readyz says it speaks `stateless` to the fixture
#            (the native hop is the point); its baseline is baseline-2026-07-28-native.yml.
# Output and per-scenario checks.json go to tests/conformance/.out/. Prints the suite's
# `Total: N passed, M failed` line last and exits non-zero when a check failed.
# Options: CONFORMANCE_SUITE=active|all|pending (default active: the 30 non-pending scenarios).
# Time: ~5 s warm (direct); gateway adds the release build; a first run adds ~75 s of installs.
set -euo pipefail

MODE="${1:-direct}"
case "$MODE" in direct|gateway|direct-native|gateway-native|direct-2026|gateway-2026|direct-2026-native|gateway-2026-native) ;;
  *) echo "usage: $0 [direct|gateway|direct-native|gateway-native|direct-2026|gateway-2026|direct-2026-native|gateway-2026-native]" >&2
     exit 2 ;;
esac
NEXT=""; FIXTURE_ARGS=(); BASELINE=""
case "$MODE" in
  *-2026) NEXT=1; FIXTURE_ARGS=(--stateless-fixtures); BASELINE=baseline-2026-07-28.yml ;;
  *-2026-native) NEXT=1; FIXTURE_ARGS=(--native-2026); BASELINE=baseline-2026-07-28-native.yml ;;
  direct-native|gateway-native) FIXTURE_ARGS=(--native-2026) ;;
esac
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
start_bg "$OUT/fixture.log" "$PEERS/venv/bin/python" "$HERE/fixture_server.py" --port "$FX_PORT" "${FIXTURE_ARGS[@]}"
wait_mcp "http://127.0.0.1:$FX_PORT/mcp" "$LAST_PID" "$OUT/fixture.log" 30
URL="http://127.0.0.1:$FX_PORT/mcp"
log "fixture server on $URL"

case "$MODE" in gateway*) GATEWAY_MODE=1 ;; *) GATEWAY_MODE="" ;; esac
if [ -n "$GATEWAY_MODE" ]; then
  GATEWAY="$(gateway_bin)"
  # gateway and gateway-2026: the fixture's tools ask for input with session-based server->client
  # requests (ctx.session.elicit_form / create_message), so mcpgate must reach it session-based:
  # its SDK also answers server/discover, and as a 2026-07-28 server those tools have no
  # back-channel (`generation: auto` would fail tools-call-sampling, tools-call-elicitation and
  # the two elicitation-sep* scenarios of the session-based suite with "no back-channel").
  # gateway-2026 is the bridging case (stateless clients, session-based upstream).
  # gateway-2026-native: the fixture's tools return input_required themselves, so mcpgate must find
  # by discovery (server/discover) that it speaks 2026-07-28 and reach it statelessly.
  GENERATION="    generation: session"
  case "$MODE" in *-native) GENERATION="    generation: auto" ;; esac
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
$GENERATION
YAML
  start_bg "$OUT/gateway.log" "$GATEWAY" run -c "$OUT/gateway.yaml"
  wait_mcp "http://127.0.0.1:$GW_PORT/mcp" "$LAST_PID" "$OUT/gateway.log" 60
  URL="http://127.0.0.1:$GW_PORT/mcp"
  log "mcpgate on $URL (config $OUT/gateway.yaml)"
  if [ "$MODE" = gateway-2026-native ] || [ "$MODE" = gateway-native ]; then
    # The native hop or nothing: a gateway that fell back to initialize would be the bridging run.
    for _ in $(seq 1 60); do
      curl -fsS "http://127.0.0.1:$GW_PORT/readyz" >"$OUT/readyz.json" 2>/dev/null && break
      sleep 0.5
    done
    generation="$("$PEERS/venv/bin/python" -c '
import json, sys
targets = {t["name"]: t for t in json.load(open(sys.argv[1])).get("targets", [])}
print(targets.get("fixture", {}).get("generation", "(none)"))' "$OUT/readyz.json" 2>/dev/null || echo "(unreadable)")"
    if [ "$generation" != stateless ]; then
      log "mcpgate does not speak 2026-07-28 to the native fixture: /readyz says generation=$generation ($OUT/readyz.json)"
      exit 1
    fi
    log "/readyz: mcpgate speaks to the fixture with generation=$generation"
  fi
fi

if [ -n "$NEXT" ]; then
  args=(server --url "$URL" --requirements 2026-07-28 -o "$OUT/results")
  [ -n "$GATEWAY_MODE" ] && args+=(--expected-failures "$HERE/$BASELINE")
  log "conformance (prerelease) ${args[*]}"
  rc=0
  "$PEERS/node22-conformance-next/bin/conformance" "${args[@]}" >"$OUT/conformance.log" 2>&1 || rc=$?
  stop_all
  sed -n '/=== SUMMARY ===/,$p' "$OUT/conformance.log" | grep -v '^\s*$' || true
  # Scored checks only (the requirement file's not_scored scenarios are reported, not counted);
  # a failure is counted unless the baseline expects it.
  total="$("$PEERS/venv/bin/python" - "$OUT/results" "$HERE/$BASELINE" "$MODE" \
    "$PEERS/node22-conformance-next/node_modules/@modelcontextprotocol/conformance/requirements/2026-07-28.yaml" <<'PY'
import json, pathlib, re, sys
results, baseline, mode, reqs = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
not_scored = set(re.findall(r"- scenario: (\S+)\n\s+leg: server", open(reqs).read()))
expected = set()
if mode.startswith("gateway-"):
    expected = {l.strip()[2:].split(" #")[0].strip() for l in open(baseline) if l.strip().startswith("- ")}
passed = failed = known = 0
for checks in sorted(results.glob("server-*/checks.json")):
    scenario = re.sub(r"^server-(.*)-\d{4}-\d\d-\d\dT.*$", r"\1", checks.parent.name)
    if scenario in not_scored:
        continue
    for c in json.loads(checks.read_text()):
        if c["status"] == "SUCCESS":
            passed += 1
        elif c["status"] == "FAILURE":
            if scenario in expected or f"{scenario}:{c['id']}" in expected:
                known += 1
                print(f"expected failure: {scenario}:{c['id']}", file=sys.stderr)
            else:
                failed += 1
                print(f"FAILED: {scenario}:{c['id']}: {c.get('errorMessage', '')}", file=sys.stderr)
print(f"Total: {passed} passed, {failed} failed (scored; {known} expected failures in the baseline)")
PY
)"
  DONE=1
  echo "$total"
  if [ -n "$GATEWAY_MODE" ]; then exit "$rc"; fi
  exit 0
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
