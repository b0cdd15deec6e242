"""server-everything through the official Python SDK, over Streamable HTTP and legacy SSE.

Tool names, arguments and outputs are those of @modelcontextprotocol/server-everything@2026.8.31
(read from its dist/tools/*.js). Each test runs once per transport (see conftest.py).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from typing import Any

import anyio
import pytest

import mcp.types as t
from mcp.types.version import LATEST_HANDSHAKE_VERSION

from conftest import Endpoint, texts

pytestmark = pytest.mark.anyio

# Tools registered for every session, and those registered once the client declared the matching
# capability (server-everything's registerConditionalTools runs on notifications/initialized).
BASE_TOOLS = {
    "echo", "get-annotated-message", "get-env", "get-resource-links", "get-resource-reference",
    "get-structured-content", "get-sum", "get-tiny-image", "gzip-file-as-resource",
    "toggle-simulated-logging", "toggle-subscriber-updates", "trigger-long-running-operation",
}
CONDITIONAL_TOOLS = {"get-roots-list", "trigger-sampling-request", "trigger-elicitation-request"}
PROMPTS = {"simple-prompt", "args-prompt", "completable-prompt", "resource-prompt"}
STATIC_DOCS = {
    f"demo://resource/static/document/{name}.md"
    for name in ("architecture", "extension", "features", "how-it-works", "instructions", "startup", "structure")
}
TEXT_TEMPLATE = "demo://resource/dynamic/text/{resourceId}"
BLOB_TEMPLATE = "demo://resource/dynamic/blob/{resourceId}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def _sample(ctx: Any, params: t.CreateMessageRequestParams) -> t.CreateMessageResult:
    return t.CreateMessageResult(
        role="assistant",
        content=t.TextContent(type="text", text="e2e sampler says: 42 is the answer"),
        model="e2e-model",
        stop_reason="endTurn",
    )


async def _roots(ctx: Any) -> t.ListRootsResult:
    return t.ListRootsResult(roots=[t.Root(uri="file:///tmp/mcpgate-e2e-root", name="e2e-root")])


async def _elicit(ctx: Any, params: t.ElicitRequestParams) -> t.ElicitResult:
    return t.ElicitResult(action="accept", content={"name": "Ada Lovelace", "check": True, "integer": 7})


# Declaring all three callbacks makes the server register its conditional tools.
ALL_CALLBACKS = {"sampling_callback": _sample, "list_roots_callback": _roots, "elicitation_callback": _elicit}


# --- lifecycle -----------------------------------------------------------------------------------


async def test_initialize(everything: Endpoint) -> None:
    async with everything.session() as (s, inbox):
        init = s.initialize_result
        assert init is not None
        assert init.protocol_version == LATEST_HANDSHAKE_VERSION
        assert init.server_info.name and init.server_info.version
        if everything.server_name:
            assert init.server_info.name == everything.server_name
        caps = init.capabilities
        assert caps.tools is not None
        assert caps.prompts is not None
        assert caps.resources is not None and caps.resources.subscribe is True
        assert caps.logging is not None
        assert caps.completions is not None
        assert (await s.send_ping()) is not None
        assert inbox.errors == []


# --- tools ---------------------------------------------------------------------------------------


async def test_list_tools(everything: Endpoint) -> None:
    async with everything.session(**ALL_CALLBACKS) as (s, _):
        tools: dict[str, t.Tool] = {}
        cursor = None
        for _page in range(50):
            page = await s.list_tools(params=t.PaginatedRequestParams(cursor=cursor) if cursor else None)
            for tool in page.tools:
                assert tool.name not in tools, f"duplicate tool {tool.name}"
                tools[tool.name] = tool
            cursor = page.next_cursor
            if not cursor:
                break
        expected = {everything.name(n) for n in BASE_TOOLS | CONDITIONAL_TOOLS}
        assert expected <= tools.keys(), f"missing: {sorted(expected - tools.keys())}"
        echo = tools[everything.name("echo")]
        assert echo.input_schema["properties"]["message"]["type"] == "string"
        assert echo.annotations is not None and echo.annotations.read_only_hint is True
        structured = tools[everything.name("get-structured-content")]
        assert structured.output_schema is not None
        assert {"temperature", "conditions", "humidity"} <= structured.output_schema["properties"].keys()
        # A field a typed proxy tends to drop: execution.taskSupport.
        research = tools.get(everything.name("simulate-research-query"))
        assert research is not None and research.execution is not None
        assert research.execution.task_support == "required"


async def test_call_echo_and_sum(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        r = await s.call_tool(everything.name("echo"), {"message": "héllo, gateway ✓"})
        assert not r.is_error
        assert texts(r) == ["Echo: héllo, gateway ✓"]
        r = await s.call_tool(everything.name("get-sum"), {"a": 19, "b": 23.5})
        assert texts(r) == ["The sum of 19 and 23.5 is 42.5."]


async def test_call_with_invalid_arguments_is_a_tool_error(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        r = await s.call_tool(everything.name("get-sum"), {"a": "not a number", "b": 1})
        assert r.is_error is True
        # The session survives a failed call.
        assert texts(await s.call_tool(everything.name("echo"), {"message": "still here"})) == ["Echo: still here"]


async def test_call_get_tiny_image(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        r = await s.call_tool(everything.name("get-tiny-image"), {})
        assert [block.type for block in r.content] == ["text", "image", "text"]
        image = r.content[1]
        assert image.mime_type == "image/png"
        assert base64.b64decode(image.data).startswith(PNG_MAGIC)


async def test_call_get_annotated_message(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        r = await s.call_tool(everything.name("get-annotated-message"), {"messageType": "error", "includeImage": True})
        text, image = r.content
        assert text.text == "Error: Operation failed"
        assert text.annotations.priority == 1.0
        assert set(text.annotations.audience) == {"user", "assistant"}
        assert image.type == "image" and image.annotations.priority == 0.5
        assert image.annotations.audience == ["user"]


async def test_call_get_structured_content(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        r = await s.call_tool(everything.name("get-structured-content"), {"location": "New York"})
        assert not r.is_error
        assert r.structured_content == {"temperature": 33, "conditions": "Cloudy", "humidity": 82}
        assert json.loads(texts(r)[0]) == r.structured_content


async def test_call_get_resource_links_and_follow_them(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        r = await s.call_tool(everything.name("get-resource-links"), {"count": 4})
        links = [block for block in r.content if block.type == "resource_link"]
        assert [link.uri for link in links] == [
            "demo://resource/dynamic/blob/1",
            "demo://resource/dynamic/text/2",
            "demo://resource/dynamic/blob/3",
            "demo://resource/dynamic/text/4",
        ]
        # A client follows a link it was given: the URI must route back to its server.
        read = await s.read_resource(links[1].uri)
        assert read.contents[0].text.startswith("Resource 2: This is a plaintext resource")


# --- prompts -------------------------------------------------------------------------------------


async def test_prompts_list_and_get(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        prompts = {p.name: p for p in (await s.list_prompts()).prompts}
        assert {everything.name(n) for n in PROMPTS} <= prompts.keys()
        args = {a.name: a for a in prompts[everything.name("args-prompt")].arguments}
        assert args["city"].required is True and not args["state"].required

        simple = await s.get_prompt(everything.name("simple-prompt"))
        assert simple.messages[0].content.text == "This is a simple prompt without arguments."

        withargs = await s.get_prompt(everything.name("args-prompt"), {"city": "Lyon", "state": "Rhône"})
        assert withargs.messages[0].role == "user"
        assert withargs.messages[0].content.text == "What's weather in Lyon, Rhône?"

        embedded = await s.get_prompt(everything.name("resource-prompt"), {"resourceType": "Text", "resourceId": "3"})
        resource = embedded.messages[1].content
        assert resource.type == "resource"
        assert resource.resource.uri == "demo://resource/dynamic/text/3"


async def test_prompt_get_unknown_is_an_error(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        with pytest.raises(Exception):
            await s.get_prompt(everything.name("no-such-prompt"))
        assert (await s.send_ping()) is not None


# --- resources -----------------------------------------------------------------------------------


async def test_resources_list_paginated(everything: Endpoint) -> None:
    copies_max = int(os.environ.get("RESOURCE_COPIES_MAX") or 1)
    async with everything.session() as (s, _):
        seen: Counter[str] = Counter()
        cursor, pages = None, 0
        while True:
            page = await s.list_resources(params=t.PaginatedRequestParams(cursor=cursor) if cursor else None)
            pages += 1
            seen.update(str(resource.uri) for resource in page.resources)
            cursor = page.next_cursor
            if not cursor:
                break
            assert pages < 100, "pagination never ends"
        assert STATIC_DOCS <= seen.keys()
        counts = {seen[uri] for uri in STATIC_DOCS}
        # A page served twice would make some URIs appear more often than others.
        assert len(counts) == 1 and counts.pop() <= copies_max, f"duplicates: {seen}"


async def test_resources_read(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        doc = await s.read_resource("demo://resource/static/document/features.md")
        assert doc.contents[0].mime_type == "text/markdown"
        assert "Everything Server" in doc.contents[0].text

        text = await s.read_resource("demo://resource/dynamic/text/7")
        assert text.contents[0].uri == "demo://resource/dynamic/text/7"
        assert text.contents[0].text.startswith("Resource 7: This is a plaintext resource")

        blob = await s.read_resource("demo://resource/dynamic/blob/8")
        assert base64.b64decode(blob.contents[0].blob).startswith(b"Resource 8: This is a base64 blob")


async def test_resource_templates(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        templates = set()
        cursor = None
        for _page in range(50):
            page = await s.list_resource_templates(params=t.PaginatedRequestParams(cursor=cursor) if cursor else None)
            templates.update(template.uri_template for template in page.resource_templates)
            cursor = page.next_cursor
            if not cursor:
                break
        assert {TEXT_TEMPLATE, BLOB_TEMPLATE} <= templates


def _updates(inbox: Any, uri: str) -> list[Any]:
    return [
        n for n in inbox.notifications
        if isinstance(n, t.ResourceUpdatedNotification) and str(n.params.uri) == uri
    ]


async def test_subscribe_and_unsubscribe(everything: Endpoint) -> None:
    uri = "demo://resource/static/document/features.md"
    toggle = everything.name("toggle-subscriber-updates")
    async with everything.session() as (s, inbox):
        await s.subscribe_resource(uri)
        # Turning the simulator on sends one update per subscribed URI at once, then every 5 s.
        assert "Started" in texts(await s.call_tool(toggle, {}))[0]
        try:
            await inbox.wait_for(lambda: _updates(inbox, uri), timeout=8)
        finally:
            assert "Stopped" in texts(await s.call_tool(toggle, {}))[0]

        await s.unsubscribe_resource(uri)
        inbox.notifications.clear()
        assert "Started" in texts(await s.call_tool(toggle, {}))[0]
        try:
            await anyio.sleep(1.5)
            assert _updates(inbox, uri) == [], "update delivered after unsubscribe"
        finally:
            assert "Stopped" in texts(await s.call_tool(toggle, {}))[0]


# --- utilities -----------------------------------------------------------------------------------


async def test_progress_notifications_in_order(everything: Endpoint) -> None:
    progress: list[tuple[float, float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))

    async with everything.session() as (s, _):
        r = await s.call_tool(
            everything.name("trigger-long-running-operation"),
            {"duration": 2, "steps": 4},
            progress_callback=on_progress,
        )
        assert texts(r) == ["Long running operation completed. Duration: 2 seconds, Steps: 4."]
        # Callbacks are spawned tasks: give the last one a moment to land.
        await anyio.sleep(0.2)
        assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]


async def test_logging(everything: Endpoint) -> None:
    toggle = everything.name("toggle-simulated-logging")
    levels = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}
    async with everything.session() as (s, inbox):
        await s.set_logging_level("debug")
        # The simulator sends one message at once, then one every 5 s.
        assert "Started" in texts(await s.call_tool(toggle, {}))[0]
        try:
            def simulated() -> list[Any]:
                return [log for log in inbox.logs if "message" in str(log.data) and "level" in str(log.data).lower()]

            logs = await inbox.wait_for(simulated, timeout=8)
            assert logs[0].level in levels
        finally:
            assert "Stopped" in texts(await s.call_tool(toggle, {}))[0]


async def test_sampling(everything: Endpoint) -> None:
    requests: list[t.CreateMessageRequestParams] = []

    async def sample(ctx: Any, params: t.CreateMessageRequestParams) -> t.CreateMessageResult:
        requests.append(params)
        return await _sample(ctx, params)

    async with everything.session(sampling_callback=sample) as (s, _):
        r = await s.call_tool(everything.name("trigger-sampling-request"), {"prompt": "ping from e2e", "maxTokens": 33})
        assert not r.is_error
        assert "e2e sampler says: 42 is the answer" in texts(r)[0]
        assert "e2e-model" in texts(r)[0]
        assert len(requests) == 1
        assert requests[0].max_tokens == 33
        assert "ping from e2e" in requests[0].messages[0].content.text


async def test_elicitation(everything: Endpoint) -> None:
    requests: list[Any] = []

    async def elicit(ctx: Any, params: Any) -> t.ElicitResult:
        requests.append(params)
        return await _elicit(ctx, params)

    async with everything.session(elicitation_callback=elicit) as (s, _):
        r = await s.call_tool(everything.name("trigger-elicitation-request"), {})
        assert not r.is_error
        out = "\n".join(texts(r))
        assert "- Name: Ada Lovelace" in out
        assert "- Agreed to terms: true" in out
        assert "- Favorite Integer: 7" in out
        schema = requests[0].requested_schema
        assert schema["required"] == ["name"]
        assert schema["properties"]["titledSingleSelectEnum"]["oneOf"][0] == {"const": "hero-1", "title": "Superman"}


async def test_roots(everything: Endpoint) -> None:
    async with everything.session(list_roots_callback=_roots) as (s, _):
        r = await s.call_tool(everything.name("get-roots-list"), {})
        out = texts(r)[0]
        assert "Current MCP Roots (1 total)" in out
        assert "file:///tmp/mcpgate-e2e-root" in out


async def test_completion(everything: Endpoint) -> None:
    async with everything.session() as (s, _):
        prompt = t.PromptReference(type="ref/prompt", name=everything.name("completable-prompt"))
        r = await s.complete(prompt, {"name": "department", "value": "Eng"})
        assert r.completion.values == ["Engineering"]
        r = await s.complete(prompt, {"name": "name", "value": ""}, context_arguments={"department": "Sales"})
        assert r.completion.values == ["David", "Eve", "Frank"]

        template = t.ResourceTemplateReference(type="ref/resource", uri=TEXT_TEMPLATE)
        r = await s.complete(template, {"name": "resourceId", "value": "12"})
        assert r.completion.values == ["12"]


async def test_cancellation(everything: Endpoint) -> None:
    started = anyio.Event()
    finished: list[Any] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    async with everything.session() as (s, inbox):
        began = time.monotonic()
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                finished.append(
                    await s.call_tool(
                        everything.name("trigger-long-running-operation"),
                        {"duration": 30, "steps": 60},
                        progress_callback=on_progress,
                    )
                )

            tg.start_soon(call)
            with anyio.fail_after(10):
                await started.wait()
            # Cancelling the caller sends notifications/cancelled for the request.
            tg.cancel_scope.cancel()
        assert finished == [], "the cancelled call returned a result"
        assert time.monotonic() - began < 15
        # The session is still usable, for calls and for progress.
        assert texts(await s.call_tool(everything.name("echo"), {"message": "after cancel"})) == ["Echo: after cancel"]
        r = await s.call_tool(everything.name("trigger-long-running-operation"), {"duration": 0.2, "steps": 2})
        assert not r.is_error
        assert inbox.errors == []
