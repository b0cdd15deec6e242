# common.sh — helpers shared by tests/e2e/run.sh and tests/conformance/run.sh (source it).
# Starts background services in their own process groups, remembers their ids, and stops
# exactly those on exit; picks free loopback ports at run time; waits for services to answer.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
PEERS="${PEERS_DIR:-$ROOT/.peers}"
export PEERS_DIR="$PEERS"
STARTED_PIDS=()

log() { printf '[%s] %s\n' "${LOG_TAG:-e2e}" "$*"; }

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_bg LOGFILE CMD...: run CMD in a new session (its own process group); sets LAST_PID.
start_bg() {
  local logfile="$1"; shift
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  LAST_PID=$!
  STARTED_PIDS+=("$LAST_PID")
}

# stop_all: TERM each started process group, then KILL what is left after 5 s.
stop_all() {
  local pid i
  for pid in "${STARTED_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for i in $(seq 50); do
    local alive=0
    for pid in "${STARTED_PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${STARTED_PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  STARTED_PIDS=()
}

# wait_tcp PORT PID LOGFILE [SECONDS]: until 127.0.0.1:PORT accepts connections; fails if PID dies.
wait_tcp() {
  local port="$1" pid="$2" logfile="$3" secs="${4:-30}" i
  for i in $(seq $((secs * 10))); do
    if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close()' "$port" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "process $pid exited before listening on $port; its log:"; tail -n 30 "$logfile" >&2; return 1
    fi
    sleep 0.1
  done
  log "nothing listens on 127.0.0.1:$port after ${secs}s; log:"; tail -n 30 "$logfile" >&2; return 1
}

# wait_mcp URL PID LOGFILE [SECONDS]: until a Streamable HTTP `initialize` POST to URL gets HTTP 200.
wait_mcp() {
  local url="$1" pid="$2" logfile="$3" secs="${4:-60}" i code
  local body='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"readiness-probe","version":"0"}}}'
  for i in $(seq $((secs * 5))); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST \
      -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
      --data "$body" "$url" || true)"
    [ "$code" = 200 ] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      log "process $pid exited before answering $url; its log:"; tail -n 30 "$logfile" >&2; return 1
    fi
    sleep 0.2
  done
  log "$url did not answer initialize with 200 after ${secs}s (last: $code); log:"; tail -n 30 "$logfile" >&2
  return 1
}

# gateway_bin: build mcpgate (release) unless MCPGATE_BIN points at one; prints its path.
gateway_bin() {
  if [ -n "${MCPGATE_BIN:-}" ]; then printf '%s\n' "$MCPGATE_BIN"; return 0; fi
  log "building mcpgate (cargo build --release -p mcpgate)" >&2
  (cd "$ROOT" && cargo build --release -p mcpgate >&2)
  printf '%s\n' "$ROOT/target/release/mcpgate"
}
