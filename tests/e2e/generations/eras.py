"""Which protocol generation mcpgate speaks to each target of tests/e2e/generations.sh.

Reads the gateway's `/readyz` (per target: `protocol_version`, and the generation where the
gateway reports one, as `generation` or `era`). The 2026-07-28 servers (py, pyst, ts, tsio: the Python and TypeScript SDKs, which answer
`server/discover`; so does markitdown-mcp, which runs on the same `mcp==2.3.0`) should be spoken to
natively in 2026-07-28; the session-only ones (ev: server-everything on the v1 TypeScript SDK,
ex: the example server) with `initialize` at a session-based version.

The first argument says whether this mcpgate build has upstream era discovery at all (its
configuration knows the target field `generation`; generations.sh asks `mcpgate check`).
Without it, the 2026-07-28 expectations are known gaps (XFAIL). `session`: every target is
configured `generation: session`, so every one must be spoken to session-based. Same output contract as
py_client.py: `ok`/`FAIL`/`XFAIL`/`XPASS` lines, then `N passed, M failed`.

usage: python eras.py yes|no|session GATEWAY_BASE_URL   (e.g. no http://127.0.0.1:8080)
"""

from __future__ import annotations

import json
import sys
import urllib.request

SESSION_BASED = {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}
MODERN_TARGETS = ("py", "pyst", "ts", "tsio", "md")
SESSION_TARGETS = ("ev", "ex")
GAP = (
    "this mcpgate has no upstream era discovery (server/discover first, then initialize; no "
    "`generation` target field): every target is initialized session-based"
)

RESULTS: list[str] = []


def check(name: str, ok: bool, detail: object, gap: str | None = None) -> None:
    status = ("XPASS" if ok else "XFAIL") if gap else ("ok  " if ok else "FAIL")
    RESULTS.append(status.strip())
    line = f"{status} {name}"
    if status == "FAIL":
        line += f": {detail}"
    elif status == "XFAIL":
        line += f" (known gap: {gap}; got: {detail})"
    elif status == "XPASS":
        line += f": passes, so the gap mark is wrong ({gap})"
    print(line, flush=True)


def era_of(target: dict) -> object:
    """The generation the gateway reports for a target, if it reports one."""
    return target.get("generation", target.get("era"))


def main(discovery: str, base: str) -> int:
    gap = None if discovery == "yes" else GAP
    modern_targets, session_targets = MODERN_TARGETS, SESSION_TARGETS
    if discovery == "session":
        modern_targets, session_targets = (), MODERN_TARGETS + SESSION_TARGETS
    with urllib.request.urlopen(f"{base}/readyz", timeout=10) as response:
        ready = json.load(response)
    targets = {t["name"]: t for t in ready.get("targets", [])}
    print(f"# /readyz targets: { {n: (t.get('protocol_version'), era_of(t)) for n, t in targets.items()} }")
    for name in MODERN_TARGETS + SESSION_TARGETS:
        check(f"{name}: up", targets.get(name, {}).get("state") == "up", targets.get(name))
    for name in modern_targets:
        t = targets.get(name, {})
        version, era = t.get("protocol_version"), era_of(t)
        ok = version == "2026-07-28" and era in (None, "modern", "stateless", "2026-07-28")
        check(f"{name}: mcpgate speaks 2026-07-28 to it", ok, f"protocol_version={version} era={era}", gap)
    for name in session_targets:
        t = targets.get(name, {})
        version, era = t.get("protocol_version"), era_of(t)
        ok = version in SESSION_BASED and era in (None, "legacy", "session", "session-based", "session_based")
        check(f"{name}: mcpgate speaks session-based to it", ok, f"protocol_version={version} era={era}")
    failed = sum(1 for r in RESULTS if r in ("FAIL", "XPASS"))
    passed = sum(1 for r in RESULTS if r == "ok")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
