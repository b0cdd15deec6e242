"""The official Python SDK (`mcp==2.3.0`) as a 2026-07-28 client of mcpgate, calling tools whose
parameters are mirrored into `Mcp-Param-*` headers (`x-mcp-header`).

The gateway fronts the example server with `--xheader-tools` (session-based). The SDK builds the
headers itself from the tool's `inputSchema` as mcpgate lists it; mcpgate checks them against the
arguments (a mismatch would be HTTP 400 / -32020) before forwarding. Also compares which of the
fixture's tools the SDK keeps when it talks to a 2026-07-28 example server directly (it drops the
ones with invalid annotations itself) with the tools mcpgate lists: both must agree. Finally sends
one raw request with a mismatched header, which must be refused.

Prints one line per check (`ok` or `FAIL`), then `N passed, M failed`.

With a third URL (mcpgate in front of the 2026-07-28 example server) the gateway checks run
there too: then mcpgate also builds the headers of its own hop from the upstream's schemas (the
upstream refuses a call without them).

usage: python py_client.py GATEWAY_MCP_URL DIRECT_2026_MCP_URL [GATEWAY_TO_2026_MCP_URL]
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any

import anyio

from mcp.client import Client

RESULTS: list[bool] = []


def check(name: str, ok: bool, detail: Any = "") -> None:
    RESULTS.append(ok)
    print(f"ok   {name}" if ok else f"FAIL {name}: {detail}", flush=True)


async def xh_tools(url: str) -> tuple[str, set[str]]:
    async with Client(url, mode="auto") as c:
        return c.protocol_version, {t.name for t in (await c.list_tools()).tools if t.name.startswith("xh_")}


CALLS: list[dict[str, Any]] = [
    {"region": "us-west1", "tenant": {"id": 42}, "verbose": True, "query": "SELECT 1"},
    # Non-ASCII and a negative integer at the edge of the safe range; a null argument sends no header.
    {"region": "Zürich 世界", "tenant": {"id": -9007199254740991}, "verbose": False, "note": None},
    # Leading/trailing spaces and a control character travel Base64-encoded.
    {"region": " padded ", "note": "line1\nline2"},
    # A plain value that looks like the sentinel is encoded too.
    {"region": "=?base64?literal?="},
    # Nothing mirrored.
    {"query": "no header"},
]


def raw_mismatch(url: str) -> tuple[int, Any]:
    """A hand-made stateless tools/call whose Mcp-Param-Region disagrees with the body."""
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "xh_route",
            "arguments": {"region": "us-west1"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": "xh_route",
            "Mcp-Param-Region": "eu-west1",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


async def main(gateway: str, direct: str, gateway2: str | None = None) -> int:
    direct_version, kept_by_sdk = await xh_tools(direct)
    check("the 2026-07-28 example server is spoken to in 2026-07-28", direct_version == "2026-07-28", direct_version)
    check("the SDK itself keeps only xh_route of the fixture's x-mcp-header tools", kept_by_sdk == {"xh_route"}, kept_by_sdk)

    gateways = [("session-based upstream", gateway)] + ([("2026-07-28 upstream", gateway2)] if gateway2 else [])
    for where, url in gateways:
        async with Client(url, mode="auto") as c:
            check(f"[{where}] negotiated 2026-07-28 with mcpgate", c.protocol_version == "2026-07-28", c.protocol_version)
            listed = {t.name for t in (await c.list_tools()).tools if t.name.startswith("xh_")}
            check(f"[{where}] mcpgate lists exactly the x-mcp-header tools the SDK keeps", listed == kept_by_sdk, (listed, kept_by_sdk))
            for args in CALLS:
                try:
                    r = await c.call_tool("xh_route", args)
                    got = (r.structured_content or {}).get("arguments")
                    check(f"[{where}] xh_route {args!r}: headers accepted, arguments arrive unchanged", not r.is_error and got == args, r)
                except Exception as exc:  # noqa: BLE001 - reported as a failed check
                    check(f"[{where}] xh_route {args!r}", False, repr(exc))

    status, reply = raw_mismatch(gateway)
    code = (reply.get("error") or {}).get("code")
    check("a mismatched Mcp-Param-Region is refused with 400 / -32020", (status, code) == (400, -32020), (status, reply))

    failed = RESULTS.count(False)
    print(f"{RESULTS.count(True)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, *sys.argv[1:4]))
