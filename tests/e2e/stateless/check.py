"""The official Python SDK (`mcp==2.3.0`) as a 2026-07-28 client of mcpgate.

mcpgate fronts the session-based example server (`mcpgate example-server`, stdio). The SDK's
`Client` in `mode="auto"` probes `server/discover` and must end up stateless (2026-07-28),
then lists, calls, reads, answers the example server's sampling/elicitation/roots requests
through its own multi-round-trip loop (the gateway turns them into `input_required`), and
follows a `subscriptions/listen` stream. Prints one `ok`/`FAIL` line per check and the total.

usage: python check.py URL
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import anyio

import mcp.types as types
from mcp.client import Client
from mcp.shared.exceptions import MCPDeprecationWarning

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: Any = "") -> None:
    RESULTS.append((name, bool(ok), str(detail)))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"), flush=True)


async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    question = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"answer to {question}"), model="e2e"
    )


async def elicitation(context: Any, params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"answer": "Ada"})


async def roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///e2e/project", name="project")])


def text(result: types.CallToolResult) -> str:
    return " ".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def main(url: str) -> int:
    async with Client(
        url,
        mode="auto",
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        list_roots_callback=roots,
    ) as client:
        check("negotiated the stateless generation", client.protocol_version == "2026-07-28", client.protocol_version)
        info = client.server_info
        check("serverInfo from server/discover is mcpgate", info is not None and info.name == "mcpgate", info)

        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        check("tools/list", {"echo", "sample", "elicit", "list_roots"} <= names, sorted(names))

        r = await client.call_tool("echo", {"message": "hello 2026"})
        check("tools/call echo", text(r) == "hello 2026" and not r.is_error, r)

        r = await client.call_tool("sample", {"prompt": "2+2?"})
        check("sampling bridged to input_required and back", "answer to 2+2?" in text(r) and not r.is_error, r)

        r = await client.call_tool("elicit", {"question": "Your name?"})
        check("elicitation bridged", "Ada" in str(r.structured_content) and not r.is_error, r)

        r = await client.call_tool("list_roots", {})
        check("roots bridged", "file:///e2e/project" in str(r.structured_content) and not r.is_error, r)

        resources = await client.list_resources()
        check("resources/list", len(resources.resources) > 0, resources)
        uri = str(resources.resources[0].uri)
        read = await client.read_resource(uri)
        check("resources/read", len(read.contents) > 0, read)

        async with client.listen(tools_list_changed=True) as sub:
            check("listen acknowledged", bool(sub.honored.tools_list_changed), sub.honored)
            await client.call_tool("add_tool", {"name": "added_by_e2e"})
            with anyio.fail_after(10):
                async for _event in sub:
                    break
            tools = await client.list_tools()
            check(
                "tools/list_changed on the listen stream, then the new tool listed",
                "added_by_e2e" in {t.name for t in tools.tools},
                sorted(t.name for t in tools.tools),
            )

    failed = sum(1 for _, ok, _ in RESULTS if not ok)
    print(f"{len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1]))
