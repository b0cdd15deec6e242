#!/usr/bin/env bash
# peers.sh — install the real MCP peers that the end-to-end and conformance suites run against,
# at pinned versions, into .peers/ (git-ignored). Idempotent: each component has a stamp file
# holding its pinned spec, and is reinstalled only when the spec changes or the stamp is gone.
#
#   scripts/peers.sh            install what is missing or outdated
#   PEERS_FORCE=1 scripts/peers.sh   reinstall everything
#   PEERS_DIR=/elsewhere scripts/peers.sh   install somewhere else than .peers/
#
# Components:
#   .peers/venv    Python venv: mcp (official SDK), markitdown-mcp, pytest, PyJWT, cryptography
#   .peers/node    npm folder for the machine's Node 20: @modelcontextprotocol/sdk (v1 client)
#                  and @modelcontextprotocol/server-everything
#   .peers/node22  npm folder with Node 22 (npm package `node`) and @modelcontextprotocol/conformance,
#                  which needs Node 22; run it as `.peers/node22/bin/conformance`
#   .peers/node22-conformance-next  the conformance prerelease line (2026-07-28 requirement set),
#                  run with the Node 22 above as `.peers/node22-conformance-next/bin/conformance`
#   .peers/node22-sdk2  the TypeScript SDK v2 (@modelcontextprotocol/client, server, core), a
#                  2026-07-28 client and server for tests/e2e/generations.sh; run its scripts with
#                  `.peers/node22-sdk2/bin/node` (the Node 22 above)
#
# Separate group, installed only when asked for (tests/e2e/prometheus.sh asks):
#   scripts/peers.sh prometheus   the Debian package `prometheus` (prometheus + promtool),
#                                 with apt-get when they are missing (needs root or sudo)
#
# Needs only python3 (3.11), node (20) and npm on PATH. Time: ~75 s from scratch (markitdown's
# onnxruntime dependency dominates), under a second when everything is up to date.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS_DIR:-$ROOT/.peers}"   # PEERS_DIR relocates the whole install
mkdir -p "$PEERS"

# ---- pinned versions (see /work/shared/PEERS.md) -----------------------------------------------
PY_PKGS=(
  "mcp==2.3.0"
  "markitdown-mcp==0.0.1a8"
  "pytest==9.2.0"
  "pytest-timeout==2.4.0"
  "PyJWT==2.15.1"
  "cryptography==50.0.2"
)
NODE_PKGS=(
  "@modelcontextprotocol/sdk@1.32.2"
  "@modelcontextprotocol/server-everything@2026.8.31"
)
NODE22_PKGS=(
  "node@22.23.3"
  "@modelcontextprotocol/conformance@0.1.16"
  "@modelcontextprotocol/inspector@2.12.0"
)

# The prerelease line of the conformance suite, for the 2026-07-28 requirement set; kept apart
# from the 0.1.x install so the session-based suite stays on its pinned release.
CONFORMANCE_NEXT="@modelcontextprotocol/conformance@0.2.0-alpha.12"

# The TypeScript SDK's v2 line (needs Node 22): its own folder, so the versions the inspector
# pulls into .peers/node22 do not decide which SDK the 2026-07-28 tests run.
SDK2_PKGS=(
  "@modelcontextprotocol/client@2.4.0"
  "@modelcontextprotocol/server@2.4.0"
  "@modelcontextprotocol/core@2.4.0"
)

log() { printf '[peers] %s\n' "$*"; }

# stamp_ok NAME SPEC: true when component NAME was installed with exactly SPEC.
stamp_ok() {
  [ -z "${PEERS_FORCE:-}" ] && [ -f "$PEERS/.stamp-$1" ] && [ "$(cat "$PEERS/.stamp-$1")" = "$2" ]
}
stamp_write() { printf '%s' "$2" >"$PEERS/.stamp-$1"; }

# ---- group `prometheus`: a real Prometheus server for the metrics end-to-end test ---------------
if [ "${1:-}" = prometheus ]; then
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    log "prometheus up to date: $(prometheus --version 2>&1 | head -n 1)"
    exit 0
  fi
  log "installing the Debian package prometheus (apt-get)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  # Only the binaries are wanted: no service is started (policy-rc.d or no init in containers;
  # the test runs its own instance on a run-time port either way).
  apt_install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; }
  if ! apt_install >/dev/null; then
    $SUDO apt-get update >/dev/null
    apt_install >/dev/null
  fi
  log "ready: $(prometheus --version 2>&1 | head -n 1)"
  exit 0
elif [ -n "${1:-}" ]; then
  log "unknown group '$1' (known: prometheus; no argument: the MCP peers)"
  exit 2
fi

# ---- Python venv -------------------------------------------------------------------------------
py_spec="$(python3 --version 2>&1) ${PY_PKGS[*]}"
if stamp_ok venv "$py_spec" && [ -x "$PEERS/venv/bin/python" ]; then
  log "venv up to date: ${PY_PKGS[*]}"
else
  log "installing Python venv $PEERS/venv: ${PY_PKGS[*]}"
  rm -rf "$PEERS/venv" "$PEERS/.stamp-venv"
  python3 -m venv "$PEERS/venv"
  "$PEERS/venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PKGS[@]}"
  stamp_write venv "$py_spec"
fi

# ---- npm folder for Node 20 --------------------------------------------------------------------
# npm_folder DIR PKG...: a private package.json so npm installs exactly PKGs into DIR/node_modules.
npm_folder() {
  local dir="$1"; shift
  rm -rf "$dir" && mkdir -p "$dir"
  printf '{ "name": "mcpgate-peers-%s", "private": true }\n' "$(basename "$dir")" >"$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error --save-exact "$@")
}

node_spec="$(node --version) ${NODE_PKGS[*]}"
if stamp_ok node "$node_spec" && [ -d "$PEERS/node/node_modules/@modelcontextprotocol/sdk" ]; then
  log "node up to date: ${NODE_PKGS[*]}"
else
  log "installing npm folder $PEERS/node (Node $(node --version)): ${NODE_PKGS[*]}"
  rm -f "$PEERS/.stamp-node"
  npm_folder "$PEERS/node" "${NODE_PKGS[@]}"
  stamp_write node "$node_spec"
fi

# ---- Node 22 + conformance ---------------------------------------------------------------------
node22_spec="${NODE22_PKGS[*]}"
if stamp_ok node22 "$node22_spec" && [ -x "$PEERS/node22/bin/conformance" ] && [ -x "$PEERS/node22/bin/mcp-inspector" ]; then
  log "node22 up to date: ${NODE22_PKGS[*]}"
else
  log "installing npm folder $PEERS/node22: ${NODE22_PKGS[*]}"
  rm -f "$PEERS/.stamp-node22"
  npm_folder "$PEERS/node22" "${NODE22_PKGS[@]}"
  node22="$PEERS/node22/node_modules/.bin/node"
  "$node22" --version | grep -q '^v22\.' || { log "expected Node 22, got $("$node22" --version)"; exit 1; }
  # A launcher that runs the conformance CLI with Node 22 whatever node is first on PATH.
  mkdir -p "$PEERS/node22/bin"
  cat >"$PEERS/node22/bin/conformance" <<'LAUNCH'
#!/usr/bin/env bash
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PATH="$here/node_modules/.bin:$PATH" exec "$here/node_modules/.bin/node" \
  "$here/node_modules/@modelcontextprotocol/conformance/dist/index.js" "$@"
LAUNCH
  chmod +x "$PEERS/node22/bin/conformance"
  # The same for MCP Inspector's CLI (2.x needs Node >= 22.19).
  cat >"$PEERS/node22/bin/mcp-inspector" <<'LAUNCH'
#!/usr/bin/env bash
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PATH="$here/node_modules/.bin:$PATH" exec "$here/node_modules/.bin/mcp-inspector" "$@"
LAUNCH
  chmod +x "$PEERS/node22/bin/mcp-inspector"
  stamp_write node22 "$node22_spec"
fi

# ---- the conformance prerelease (runs on the Node 22 above) ---------------------------------------
if stamp_ok node22-conformance-next "$CONFORMANCE_NEXT" && [ -x "$PEERS/node22-conformance-next/bin/conformance" ]; then
  log "node22-conformance-next up to date: $CONFORMANCE_NEXT"
else
  log "installing npm folder $PEERS/node22-conformance-next: $CONFORMANCE_NEXT"
  rm -f "$PEERS/.stamp-node22-conformance-next"
  npm_folder "$PEERS/node22-conformance-next" "$CONFORMANCE_NEXT"
  mkdir -p "$PEERS/node22-conformance-next/bin"
  cat >"$PEERS/node22-conformance-next/bin/conformance" <<'LAUNCH'
#!/usr/bin/env bash
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node22="$here/../node22/node_modules/.bin"
PATH="$node22:$PATH" exec "$node22/node" \
  "$here/node_modules/@modelcontextprotocol/conformance/dist/index.js" "$@"
LAUNCH
  chmod +x "$PEERS/node22-conformance-next/bin/conformance"
  stamp_write node22-conformance-next "$CONFORMANCE_NEXT"
fi

# ---- the TypeScript SDK v2 (runs on the Node 22 above) -------------------------------------------
sdk2_spec="${SDK2_PKGS[*]}"
if stamp_ok node22-sdk2 "$sdk2_spec" && [ -d "$PEERS/node22-sdk2/node_modules/@modelcontextprotocol/client" ]; then
  log "node22-sdk2 up to date: ${SDK2_PKGS[*]}"
else
  log "installing npm folder $PEERS/node22-sdk2: ${SDK2_PKGS[*]}"
  rm -f "$PEERS/.stamp-node22-sdk2"
  npm_folder "$PEERS/node22-sdk2" "${SDK2_PKGS[@]}"
  stamp_write node22-sdk2 "$sdk2_spec"
fi
# The Node 22 above, whatever node is first on PATH (the test scripts import the SDK from this
# folder by path: ES modules do not look at NODE_PATH).
mkdir -p "$PEERS/node22-sdk2/bin"
cat >"$PEERS/node22-sdk2/bin/node" <<'LAUNCH'
#!/usr/bin/env bash
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$here/../node22/node_modules/.bin/node" "$@"
LAUNCH
chmod +x "$PEERS/node22-sdk2/bin/node"

log "ready: $("$PEERS/venv/bin/python" -c 'import importlib.metadata as m; print("mcp", m.version("mcp"))'), \
node $(node --version), node22 $("$PEERS/node22/node_modules/.bin/node" --version)"
