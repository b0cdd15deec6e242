"""markitdown-mcp through the official Python SDK, over Streamable HTTP and legacy SSE."""

from __future__ import annotations

import pytest

from mcp.types.version import LATEST_HANDSHAKE_VERSION

from conftest import Endpoint, texts

pytestmark = pytest.mark.anyio

HELLO = "data:text/plain;base64,SGVsbG8gKndvcmxkKg=="  # "Hello *world*"


async def test_initialize_and_list(markitdown: Endpoint) -> None:
    async with markitdown.session() as (s, _):
        init = s.initialize_result
        assert init.protocol_version == LATEST_HANDSHAKE_VERSION
        if markitdown.server_name:
            assert init.server_info.name == markitdown.server_name
        tools = {tool.name: tool for tool in (await s.list_tools()).tools}
        tool = tools[markitdown.name("convert_to_markdown")]
        assert tool.input_schema["required"] == ["uri"]


async def test_convert_data_uri(markitdown: Endpoint) -> None:
    async with markitdown.session() as (s, _):
        r = await s.call_tool(markitdown.name("convert_to_markdown"), {"uri": HELLO})
        assert not r.is_error
        assert texts(r)[0].strip() == "Hello *world*"


async def test_convert_unsupported_uri_is_a_tool_error(markitdown: Endpoint) -> None:
    async with markitdown.session() as (s, _):
        r = await s.call_tool(markitdown.name("convert_to_markdown"), {"uri": "gopher://127.0.0.1/nothing"})
        assert r.is_error is True
        r = await s.call_tool(markitdown.name("convert_to_markdown"), {"uri": HELLO})
        assert texts(r)[0].strip() == "Hello *world*"
