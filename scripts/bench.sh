#!/usr/bin/env bash
# mcpgate's benchmark suite: builds the release binaries, then runs every scenario of
# docs/benchmarks.md direct to the upstream and through the gateway, alternating, on
# 127.0.0.1 ports chosen at run time. Results: .bench/latest.json and .bench/latest.md
# (plus a copy of each named after the mode, commit and time).
#
#   scripts/bench.sh            # quick: about two minutes
#   scripts/bench.sh full       # longer windows and more rounds, for release notes
#   scripts/bench.sh smoke      # seconds: checks that the harness works
#   scripts/bench.sh quick --only 1,3   # extra arguments go to `mcpgate-bench suite`
#
# Everything the suite starts is stopped when it ends, is interrupted, or dies.
set -euo pipefail

mode="${1:-quick}"
shift || true
case "$mode" in
  quick | full | smoke) ;;
  *) echo "usage: $0 [quick|full|smoke] [suite options]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
cargo build --release -p mcpgate -p mcpgate-bench -p mcpgate-example-server
bin_dir="${CARGO_TARGET_DIR:-target}/release"

# Scenario 4 holds 10,000 connections in the gateway and as many in the load generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open-file limit: $(ulimit -n)" >&2

"$bin_dir/mcpgate-bench" suite "$mode" --bin-dir "$bin_dir" --out .bench "$@" &
suite=$!
trap 'kill -TERM "$suite" 2>/dev/null || true; wait "$suite" 2>/dev/null || true' INT TERM
trap 'kill -TERM "$suite" 2>/dev/null || true' EXIT
wait "$suite"
