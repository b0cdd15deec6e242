"""Traffic-management errors as the official Python SDK (mcp 2.3.0) sees them through mcpgate.

Usage: client.py TRANSPORT URL (TRANSPORT: streamable_http | sse). Prints one `ok NAME` or `FAIL NAME: why`
line per check; exit status 1 if any failed.
"""

import asyncio
import sys

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

TRANSPORT, URL = sys.argv[1], sys.argv[2]
failures = 0


def check(name, cond, why=""):
    global failures
    if cond:
        print(f"ok   python {TRANSPORT}: {name}")
    else:
        failures += 1
        print(f"FAIL python {TRANSPORT}: {name}: {why}")


async def error_of(coro):
    try:
        await coro
    except Exception as e:  # the SDK's MCPError carries the JSON-RPC error
        return getattr(e, "error", None)
    return None


async def main():
    cm = streamable_http_client(URL) if TRANSPORT == "streamable_http" else sse_client(URL)
    async with cm as streams:
        async with ClientSession(streams[0], streams[1]) as s:
            await s.initialize()
            r = await s.call_tool("lim_echo", {"message": "one"})
            check("a call under the limit succeeds", r.content[0].text == "one", repr(r))
            e = await error_of(s.call_tool("lim_echo", {"message": "two"}))
            data = (e.data or {}) if e else {}
            check(
                "a call over the tool limit fails with -32005 and retryAfterMs",
                e is not None and e.code == -32005 and data.get("scope") == "tool" and data.get("retryAfterMs", 0) > 0,
                repr(e),
            )
            e = await error_of(s.call_tool("slow_echo", {"message": "x"}))
            check(
                "a call past timeouts.call fails with -32003 naming the target",
                e is not None and e.code == -32003 and (e.data or {}).get("target") == "slow",
                repr(e),
            )
            r = await s.call_tool("lim_add", {"a": 1, "b": 2})
            check("the session is still usable", not r.is_error, repr(r))


asyncio.run(main())
sys.exit(1 if failures else 0)
