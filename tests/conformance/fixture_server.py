"""MCP server exposing what the official conformance suite's server scenarios call for.

Built with the official Python SDK (`mcp==2.3.0`, `MCPServer`) and served over Streamable HTTP on
127.0.0.1, with an in-memory event store so SSE streams carry event ids and can be resumed
(SEP-1699). Every fixture is named and shaped as @modelcontextprotocol/conformance@0.1.16's
scenario descriptions and the 2025-11-25 specification say:

  tools      test_simple_text, test_image_content, test_audio_content, test_embedded_resource,
             test_multiple_content_types, test_tool_with_logging, test_tool_with_progress,
             test_error_handling, test_sampling, test_elicitation,
             test_elicitation_sep1034_defaults, test_elicitation_sep1330_enums,
             test_reconnection, json_schema_2020_12_tool
  resources  test://static-text, test://static-binary, test://watched-resource,
             template test://template/{id}/data
  prompts    test_simple_prompt, test_prompt_with_arguments, test_prompt_with_embedded_resource,
             test_prompt_with_image
  also       logging/setLevel (per-session level, filters this server's log notifications),
             resources/subscribe + unsubscribe (per-session), completion/complete, ping.

With --stateless-fixtures it also serves, as an ordinary session-based server, the tools that
@modelcontextprotocol/conformance@0.2.0-alpha.12's 2026-07-28 server scenarios call
(test_input_required_result_*, test_missing_capability, test_streaming_elicitation,
test_logging_tool, test_trigger_tool_change, test_trigger_prompt_change, and the prompt
test_input_required_result_prompt). They ask for input the session-based way (server→client
sampling/createMessage, elicitation/create, roots/list on the request's stream) so that the
gateway in front of this fixture has to bridge them to 2026-07-28 multi-round-trip results.

With --native-2026 it serves the same 2026-07-28 scenario tools and prompt written the 2026-07-28
way instead (for `tests/conformance/run.sh direct-2026-native|gateway-2026-native`): they return
`resultType: "input_required"` results themselves, with the inputRequests keys the scenario
descriptions name (user_name, capital_question, client_roots, confirm, step1/step2, greeting,
user_context), read the client's answers from the retry's `inputResponses`, and keep their
progress in `requestState`, which the SDK's RequestStateBoundary seals (AES-256-GCM under a
per-process key) so a tampered echo is refused with -32602. test_missing_capability and
test_streaming_elicitation use the SDK's resolvers (`Resolve` + `Sample`/`Elicit`), which answer
-32021 MissingRequiredClientCapability when the request's `_meta` does not declare the capability.
The 2025-11-25 suite's input-asking tools (test_sampling, test_elicitation,
test_elicitation_sep1034_defaults, test_elicitation_sep1330_enums) are replaced by 2026-07-28
versions too: the same sampling/elicitation requests and result texts, as input_required results
(`run.sh gateway-native`: mcpgate relays them to a session-based client as server→client requests).
These tools are written for 2026-07-28 callers only: on a 2025-11-25 session the SDK refuses
their input_required results ("Handler returned an invalid result"), so a gateway in front must
reach this fixture statelessly (`generation: auto`, which discovers it by `server/discover`).

usage: python fixture_server.py --port PORT [--stateless-fixtures | --native-2026]
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import struct
import warnings
import wave
import zlib
from collections import defaultdict
from typing import Annotated, Any

import anyio
import uvicorn
from pydantic import BaseModel

import mcp.types as types
from mcp.server.mcpserver import Context, MCPServer, UserMessage
from mcp.server.mcpserver.resolve import Elicit, Resolve, Sample
from mcp.server.mcpserver.prompts import Prompt
from mcp.shared.message import ServerMessageMetadata
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.shared.exceptions import MCPDeprecationWarning

# The scenarios exercise the 2025-11-25 generation on purpose (logging, sampling, subscribe).
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)


# ---- media made here, so the fixture ships no binary files ---------------------------------------


def _png_1x1_red() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 800)  # 0.1 s of 8-bit silence
    return buffer.getvalue()


PNG = _png_1x1_red()
PNG_B64 = base64.b64encode(PNG).decode()
WAV_B64 = base64.b64encode(_wav_silence()).decode()


# ---- per-session state: log level and resource subscriptions ------------------------------------

LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
log_level: dict[str, str] = {}
subscriptions: dict[str, set[str]] = defaultdict(set)


def session_key(request: Any) -> str:
    """The Streamable HTTP session a request belongs to (one key for session-less requests)."""
    headers = getattr(request, "headers", None)
    return (headers.get("mcp-session-id") if headers is not None else None) or "-"


async def log(ctx: Context, level: str, message: str) -> None:
    """Send a log notification on the request's stream unless the session's level filters it."""
    threshold = log_level.get(session_key(ctx.request_context.request))
    if threshold is not None and LOG_LEVELS.index(level) < LOG_LEVELS.index(threshold):
        return
    await ctx.session.send_log_message(
        level=level, data=message, logger="conformance-fixture", related_request_id=ctx.request_id
    )


mcp = MCPServer(
    "mcpgate-conformance-fixture",
    version="1.0.0",
    instructions="Fixture server for the MCP conformance suite's server scenarios.",
)


# ---- tools ---------------------------------------------------------------------------------------


@mcp.tool(description="Returns a simple text response")
def test_simple_text() -> list[types.ContentBlock]:
    return [types.TextContent(type="text", text="This is a simple text response for testing.")]


@mcp.tool(description="Returns a 1x1 red PNG image")
def test_image_content() -> list[types.ContentBlock]:
    return [types.ImageContent(type="image", data=PNG_B64, mime_type="image/png")]


@mcp.tool(description="Returns a short WAV audio clip")
def test_audio_content() -> list[types.ContentBlock]:
    return [types.AudioContent(type="audio", data=WAV_B64, mime_type="audio/wav")]


@mcp.tool(description="Returns an embedded text resource")
def test_embedded_resource() -> list[types.ContentBlock]:
    return [
        types.EmbeddedResource(
            type="resource",
            resource=types.TextResourceContents(
                uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
            ),
        )
    ]


@mcp.tool(description="Returns text, image and embedded resource content together")
def test_multiple_content_types() -> list[types.ContentBlock]:
    return [
        types.TextContent(type="text", text="Multiple content types test:"),
        types.ImageContent(type="image", data=PNG_B64, mime_type="image/png"),
        types.EmbeddedResource(
            type="resource",
            resource=types.TextResourceContents(
                uri="test://mixed-content-resource",
                mime_type="application/json",
                text=json.dumps({"test": "data", "value": 123}, separators=(",", ":")),
            ),
        ),
    ]


@mcp.tool(description="Sends three info log notifications while it runs")
async def test_tool_with_logging(ctx: Context) -> str:
    await log(ctx, "info", "Tool execution started")
    await anyio.sleep(0.05)
    await log(ctx, "info", "Tool processing data")
    await anyio.sleep(0.05)
    await log(ctx, "info", "Tool execution completed")
    return "Tool with logging executed successfully"


@mcp.tool(description="Reports progress 0, 50 and 100 out of 100 when given a progress token")
async def test_tool_with_progress(ctx: Context) -> str:
    await ctx.report_progress(0, 100)
    await anyio.sleep(0.05)
    await ctx.report_progress(50, 100)
    await anyio.sleep(0.05)
    await ctx.report_progress(100, 100)
    return "Tool with progress executed successfully"


@mcp.tool(description="Always fails, reporting the failure as a tool error")
def test_error_handling() -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text="This tool intentionally returns an error for testing")],
        is_error=True,
    )


@mcp.tool(description="Asks the client's LLM to answer a prompt (sampling/createMessage)")
async def test_sampling(prompt: str, ctx: Context) -> types.CallToolResult:
    if not ctx.session.check_client_capability(types.ClientCapabilities(sampling=types.SamplingCapability())):
        return types.CallToolResult(
            content=[types.TextContent(type="text", text="The client does not support sampling")], is_error=True
        )
    result = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
        max_tokens=100,
        related_request_id=ctx.request_id,
    )
    blocks = result.content if isinstance(result.content, list) else [result.content]
    answer = " ".join(block.text for block in blocks if isinstance(block, types.TextContent))
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"LLM response: {answer}")])


async def _elicit(ctx: Context, message: str, schema: dict[str, Any], label: str) -> types.CallToolResult:
    if not ctx.session.check_client_capability(types.ClientCapabilities(elicitation=types.ElicitationCapability())):
        return types.CallToolResult(
            content=[types.TextContent(type="text", text="The client does not support elicitation")], is_error=True
        )
    result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    content = json.dumps(result.content) if result.content is not None else "null"
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{label}: action={result.action}, content={content}")]
    )


ELICITATION_SCHEMA = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

SEP1034_MESSAGE = "Please review and update the form fields with defaults"
SEP1034_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
}

SEP1330_MESSAGE = "Please choose from the enum fields"
SEP1330_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Untitled single-select",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Titled single-select",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Legacy titled single-select (deprecated enumNames)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Untitled multi-select",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Titled multi-select",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}


@mcp.tool(description="Asks the user for a username and an email (elicitation/create)")
async def test_elicitation(message: str, ctx: Context) -> types.CallToolResult:
    return await _elicit(ctx, message, ELICITATION_SCHEMA, "User response")


@mcp.tool(description="Elicitation whose schema carries a default for every primitive type (SEP-1034)")
async def test_elicitation_sep1034_defaults(ctx: Context) -> types.CallToolResult:
    return await _elicit(ctx, SEP1034_MESSAGE, SEP1034_SCHEMA, "Elicitation completed")


@mcp.tool(description="Elicitation using all five enum schema variants (SEP-1330)")
async def test_elicitation_sep1330_enums(ctx: Context) -> types.CallToolResult:
    return await _elicit(ctx, SEP1330_MESSAGE, SEP1330_SCHEMA, "Elicitation completed")


@mcp.tool(description="Closes its SSE stream mid-call; the result arrives after the client resumes (SEP-1699)")
async def test_reconnection(ctx: Context) -> str:
    await anyio.sleep(0.1)
    # Only effective for clients at 2025-11-25 or later: the SDK hands out the close callback only
    # when the client can resume (it got a priming event with an id). Otherwise this is a no-op
    # and the result comes on the open stream.
    await ctx.close_sse_stream()
    await anyio.sleep(0.2)
    return "Reconnection test completed: the result was delivered after the stream closed"


JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}


@mcp.tool(description="Tool with JSON Schema 2020-12 features")
def json_schema_2020_12_tool(name: str | None = None, address: dict[str, Any] | None = None) -> str:
    return f"Received name={name!r}, address={json.dumps(address)}"


# MCPServer derives inputSchema from the signature; the scenario wants these exact keywords
# ($schema, $defs, additionalProperties) advertised, so publish the hand-written schema.
mcp._tool_manager.get_tool("json_schema_2020_12_tool").parameters = JSON_SCHEMA_2020_12


# ---- resources -----------------------------------------------------------------------------------


@mcp.resource("test://static-text", name="static-text", description="A static text resource", mime_type="text/plain")
def static_text() -> str:
    return "This is the content of the static text resource."


@mcp.resource("test://static-binary", name="static-binary", description="A static PNG image", mime_type="image/png")
def static_binary() -> bytes:
    return PNG


@mcp.resource(
    "test://watched-resource",
    name="watched-resource",
    description="A resource clients may subscribe to",
    mime_type="text/plain",
)
def watched_resource() -> str:
    return "This resource can be watched with resources/subscribe."


@mcp.resource(
    "test://template/{id}/data",
    name="template-data",
    description="Data for the id in the URI",
    mime_type="application/json",
)
def template_data(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"}, separators=(",", ":"))


# ---- prompts -------------------------------------------------------------------------------------


@mcp.prompt(description="A prompt without arguments")
def test_simple_prompt() -> list[UserMessage]:
    return [UserMessage("This is a simple prompt for testing.")]


@mcp.prompt(description="A prompt with two required arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]


@mcp.prompt(description="A prompt that embeds the resource named by resourceUri")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:  # noqa: N803 (wire name)
    return [
        UserMessage(
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(
                    uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
                ),
            )
        ),
        UserMessage("Please process the embedded resource above."),
    ]


@mcp.prompt(description="A prompt with an image")
def test_prompt_with_image() -> list[UserMessage]:
    return [
        UserMessage(types.ImageContent(type="image", data=PNG_B64, mime_type="image/png")),
        UserMessage("Please analyze the image above."),
    ]


# ---- completion, logging level, subscriptions ----------------------------------------------------

ARGUMENT_SUGGESTIONS = {"arg1": ["paris", "park", "party"], "arg2": ["world", "word", "work"]}


@mcp.completion()
async def complete(ref: Any, argument: types.CompletionArgument, context: Any) -> types.Completion:
    if isinstance(ref, types.PromptReference) and ref.name == "test_prompt_with_arguments":
        pool = ARGUMENT_SUGGESTIONS.get(argument.name, [])
    elif isinstance(ref, types.ResourceTemplateReference) and argument.name == "id":
        pool = [str(n) for n in itertools.chain(range(1, 10), (123,))]
    else:
        pool = []
    values = [value for value in pool if value.startswith(argument.value)]
    return types.Completion(values=values, total=len(values), has_more=False)


# MCPServer 2.3.0 has no decorator for these three 2025-11-25 methods; register them on the
# low-level server it wraps.
async def set_logging_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
    log_level[session_key(ctx.request)] = params.level
    return types.EmptyResult()


async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
    subscriptions[session_key(ctx.request)].add(str(params.uri))
    return types.EmptyResult()


async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    subscriptions[session_key(ctx.request)].discard(str(params.uri))
    return types.EmptyResult()


_lowlevel = mcp._lowlevel_server
_lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_logging_level)
_lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
_lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)


# ---- resumable streams ---------------------------------------------------------------------------


class MemoryEventStore(EventStore):
    """Keeps every SSE event so a client reconnecting with Last-Event-ID gets what it missed."""

    def __init__(self) -> None:
        self._events: list[tuple[EventId, StreamId, types.JSONRPCMessage | None]] = []
        self._index: dict[EventId, int] = {}
        self._next = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: types.JSONRPCMessage | None) -> EventId:
        event_id = f"{stream_id}:{next(self._next)}"
        self._index[event_id] = len(self._events)
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        position = self._index.get(last_event_id)
        if position is None:
            return None
        stream_id = self._events[position][1]
        for event_id, stream, message in self._events[position + 1 :]:
            if stream == stream_id and message is not None:  # priming events carry no message
                await send_callback(EventMessage(message, event_id))
        return stream_id


# ---- session-based implementations of the 2026-07-28 scenarios' tools (--stateless-fixtures) -----


def _text(text: str, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=is_error)


async def _ask_name(ctx: Context, message: str, field: str) -> Any:
    schema = {"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}
    result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    return (result.content or {}).get(field)


async def _sample(ctx: Context, question: str) -> str:
    result = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=question))],
        max_tokens=100,
        related_request_id=ctx.request_id,
    )
    blocks = result.content if isinstance(result.content, list) else [result.content]
    return " ".join(block.text for block in blocks if isinstance(block, types.TextContent))


async def _roots(ctx: Context) -> list[str]:
    result = await ctx.session.send_request(
        types.ListRootsRequest(),
        types.ListRootsResult,
        metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
    )
    return [str(root.uri) for root in result.roots]


def register_stateless_fixtures() -> None:
    @mcp.tool(description="Asks the user's name (elicitation), then greets them")
    async def test_input_required_result_elicitation(ctx: Context) -> types.CallToolResult:
        return _text(f"Hello, {await _ask_name(ctx, 'What is your name?', 'name')}!")

    @mcp.tool(description="Asks the client's LLM a question (sampling)")
    async def test_input_required_result_sampling(ctx: Context) -> types.CallToolResult:
        return _text(f"LLM response: {await _sample(ctx, 'What is the capital of France?')}")

    @mcp.tool(description="Asks the client for its roots")
    async def test_input_required_result_list_roots(ctx: Context) -> types.CallToolResult:
        return _text(f"Roots: {', '.join(await _roots(ctx))}")

    @mcp.tool(description="Asks for a confirmation (elicitation)")
    async def test_input_required_result_request_state(ctx: Context) -> types.CallToolResult:
        return _text(f"Confirmed: {await _ask_name(ctx, 'Please confirm', 'ok')}")

    @mcp.tool(description="Asks for a confirmation (elicitation)")
    async def test_input_required_result_tampered_state(ctx: Context) -> types.CallToolResult:
        return _text(f"Confirmed: {await _ask_name(ctx, 'Please confirm', 'ok')}")

    @mcp.tool(description="Asks for elicitation, sampling and roots at once")
    async def test_input_required_result_multiple_inputs(ctx: Context) -> types.CallToolResult:
        results: dict[str, Any] = {}

        async def run(key: str, coro: Any) -> None:
            results[key] = await coro

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "name", _ask_name(ctx, "What is your name?", "name"))
            tg.start_soon(run, "answer", _sample(ctx, "Say hello"))
            tg.start_soon(run, "roots", _roots(ctx))
        return _text(f"name={results['name']}, answer={results['answer']}, roots={results['roots']}")

    @mcp.tool(description="Asks two questions one after the other (two rounds of elicitation)")
    async def test_input_required_result_multi_round(ctx: Context) -> types.CallToolResult:
        name = await _ask_name(ctx, "What is your name?", "name")
        color = await _ask_name(ctx, f"{name}, what is your favourite colour?", "color")
        return _text(f"{name} likes {color}")

    @mcp.tool(description="Uses sampling if the client can, and elicitation if it can")
    async def test_input_required_result_capabilities(ctx: Context) -> types.CallToolResult:
        answers: list[str] = []

        async def sample() -> None:
            answers.append(await _sample(ctx, "Say hello"))

        async def elicit() -> None:
            try:
                answers.append(str(await _ask_name(ctx, "What is your name?", "name")))
            except Exception as exc:  # the client cannot elicit: go on without it
                answers.append(f"no elicitation ({exc})")

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            tg.start_soon(elicit)
        return _text("; ".join(answers))

    @mcp.tool(description="Needs sampling: fails without it")
    async def test_missing_capability(ctx: Context) -> types.CallToolResult:
        return _text(f"LLM response: {await _sample(ctx, 'Say hello')}")

    @mcp.tool(description="Asks a question by elicitation while it runs")
    async def test_streaming_elicitation(ctx: Context) -> types.CallToolResult:
        return _text(f"Hello, {await _ask_name(ctx, 'What is your name?', 'name')}!")

    @mcp.tool(description="Logs at info while it runs")
    async def test_logging_tool(ctx: Context) -> str:
        await ctx.info("Logging tool ran")
        return "Logged"

    changes = itertools.count(1)

    @mcp.tool(description="Adds a tool and announces tools/list_changed")
    async def test_trigger_tool_change(ctx: Context) -> str:
        n = next(changes)
        mcp.add_tool(lambda: "added", name=f"added_tool_{n}", description="Added at run time")
        await ctx.session.send_tool_list_changed()
        return f"added added_tool_{n}"

    @mcp.tool(description="Adds a prompt and announces prompts/list_changed")
    async def test_trigger_prompt_change(ctx: Context) -> str:
        n = next(changes)
        mcp.add_prompt(Prompt.from_function(lambda: "added", name=f"added_prompt_{n}", description="Added"))
        await ctx.session.send_prompt_list_changed()
        return f"added added_prompt_{n}"

    @mcp.prompt(description="Asks for context (elicitation) before building the prompt")
    async def test_input_required_result_prompt(ctx: Context) -> list[UserMessage]:
        context = await _ask_name(ctx, "What context should the prompt use?", "context")
        return [UserMessage(f"Prompt built with context: {context}")]


# ---- 2026-07-28 implementations of the same scenarios' tools (--native-2026) --------------------


def _elicit_request(message: str, field: str, kind: str = "string") -> types.ElicitRequest:
    schema = {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}
    return types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample_request(question: str, max_tokens: int = 100) -> types.CreateMessageRequest:
    message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text=question))
    params = types.CreateMessageRequestParams(messages=[message], max_tokens=max_tokens)
    return types.CreateMessageRequest(params=params)


def _ask(requests: dict[str, Any], state: str | None = None) -> types.InputRequiredResult:
    return types.InputRequiredResult(input_requests=requests, request_state=state)


def _accepted(ctx: Context, key: str, field: str) -> Any:
    """The `field` of an accepted elicitation answer under `key`, or None when there is none."""
    answer = (ctx.input_responses or {}).get(key)
    if isinstance(answer, types.ElicitResult) and answer.action == "accept" and answer.content:
        return answer.content.get(field)
    return None


def _sampled(ctx: Context, key: str) -> str | None:
    answer = (ctx.input_responses or {}).get(key)
    if not isinstance(answer, types.CreateMessageResult):
        return None
    blocks = answer.content if isinstance(answer.content, list) else [answer.content]
    return " ".join(block.text for block in blocks if isinstance(block, types.TextContent))


def _roots_answer(ctx: Context, key: str) -> list[str] | None:
    answer = (ctx.input_responses or {}).get(key)
    return [str(root.uri) for root in answer.roots] if isinstance(answer, types.ListRootsResult) else None


class _Name(BaseModel):
    name: str


def _ask_name_resolver() -> Elicit[_Name]:
    return Elicit("What is your name?", _Name)


def _say_hello_resolver() -> Sample:
    message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text="Say hello"))
    return Sample([message], max_tokens=50)


def _elicit_answer_text(ctx: Context, key: str, label: str) -> types.CallToolResult | None:
    """The session-based tools' result text for an elicitation answer under `key` (None: no answer yet)."""
    answer = (ctx.input_responses or {}).get(key)
    if not isinstance(answer, types.ElicitResult):
        return None
    content = json.dumps(answer.content) if answer.content is not None else "null"
    return _text(f"{label}: action={answer.action}, content={content}")


def _ask_form(ctx: Context, key: str, message: str, schema: dict[str, Any], label: str) -> Any:
    if ctx.client_capabilities is None or ctx.client_capabilities.elicitation is None:
        return _text("The client does not support elicitation", is_error=True)
    done = _elicit_answer_text(ctx, key, label)
    if done is not None:
        return done
    params = types.ElicitRequestFormParams(message=message, requested_schema=schema)
    return _ask({key: types.ElicitRequest(params=params)})


def register_native_session_suite_tools() -> None:
    """The 2025-11-25 suite's input-asking tools, written the 2026-07-28 way (same requests, same results)."""
    for name in ("test_sampling", "test_elicitation", "test_elicitation_sep1034_defaults"):
        mcp.remove_tool(name)
    mcp.remove_tool("test_elicitation_sep1330_enums")

    @mcp.tool(description="Asks the client's LLM to answer a prompt (input_required, key llm_answer)")
    def test_sampling(prompt: str, ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        if ctx.client_capabilities is None or ctx.client_capabilities.sampling is None:
            return _text("The client does not support sampling", is_error=True)
        answer = _sampled(ctx, "llm_answer")
        if answer is None:
            return _ask({"llm_answer": _sample_request(prompt)})
        return _text(f"LLM response: {answer}")

    @mcp.tool(description="Asks the user for a username and an email (input_required, key user_info)")
    def test_elicitation(message: str, ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        return _ask_form(ctx, "user_info", message, ELICITATION_SCHEMA, "User response")

    @mcp.tool(description="Elicitation whose schema carries a default for every primitive type (SEP-1034)")
    def test_elicitation_sep1034_defaults(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        return _ask_form(ctx, "defaults", SEP1034_MESSAGE, SEP1034_SCHEMA, "Elicitation completed")

    @mcp.tool(description="Elicitation using all five enum schema variants (SEP-1330)")
    def test_elicitation_sep1330_enums(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        return _ask_form(ctx, "enums", SEP1330_MESSAGE, SEP1330_SCHEMA, "Elicitation completed")


def register_native_fixtures() -> None:
    register_native_session_suite_tools()
    @mcp.tool(description="Asks the user's name (input_required, key user_name), then greets them")
    def test_input_required_result_elicitation(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        name = _accepted(ctx, "user_name", "name")
        if not isinstance(name, str):
            # Round 1, or a retry without a usable user_name answer: ask (again).
            return _ask({"user_name": _elicit_request("What is your name?", "name")})
        return _text(f"Hello, {name}!")

    @mcp.tool(description="Asks the client's LLM a question (input_required, key capital_question)")
    def test_input_required_result_sampling(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        answer = _sampled(ctx, "capital_question")
        if answer is None:
            return _ask({"capital_question": _sample_request("What is the capital of France?")})
        return _text(f"LLM response: {answer}")

    @mcp.tool(description="Asks for the client's roots (input_required, key client_roots)")
    def test_input_required_result_list_roots(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        roots = _roots_answer(ctx, "client_roots")
        if roots is None:
            return _ask({"client_roots": types.ListRootsRequest()})
        return _text(f"Roots: {', '.join(roots)}")

    def _confirm(ctx: Context, state: str) -> types.CallToolResult | types.InputRequiredResult:
        ok = _accepted(ctx, "confirm", "ok")
        # The boundary hands the tool the plaintext it sealed, or refused the request already.
        if ok is None or ctx.request_state != state:
            return _ask({"confirm": _elicit_request("Please confirm", "ok", "boolean")}, state)
        return _text(f"Confirmed: {ok} (state-ok)")

    @mcp.tool(description="Asks for a confirmation; round 2 must echo the requestState of round 1")
    def test_input_required_result_request_state(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        return _confirm(ctx, "request-state:awaiting-confirm")

    @mcp.tool(description="Asks for a confirmation with integrity-protected requestState")
    def test_input_required_result_tampered_state(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        return _confirm(ctx, "tampered-state:awaiting-confirm")

    @mcp.tool(description="Asks for elicitation, sampling and roots in one input_required result")
    def test_input_required_result_multiple_inputs(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        name = _accepted(ctx, "user_name", "name")
        greeting, roots = _sampled(ctx, "greeting"), _roots_answer(ctx, "client_roots")
        if name is None or greeting is None or roots is None or ctx.request_state != "multiple-inputs":
            return _ask(
                {
                    "user_name": _elicit_request("What is your name?", "name"),
                    "greeting": _sample_request("Generate a greeting", 50),
                    "client_roots": types.ListRootsRequest(),
                },
                "multiple-inputs",
            )
        return _text(f"name={name}, greeting={greeting}, roots={', '.join(roots)}")

    @mcp.tool(description="Asks two questions in two rounds, carrying the first answer in requestState")
    def test_input_required_result_multi_round(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        state = ctx.request_state or ""
        if state.startswith("multi-round:2:"):
            name = state.removeprefix("multi-round:2:")
            color = _accepted(ctx, "step2", "color")
            if color is None:
                return _ask({"step2": _elicit_request("Step 2: What is your favorite color?", "color")}, state)
            return _text(f"{name} likes {color}")
        name = _accepted(ctx, "step1", "name") if state == "multi-round:1" else None
        if name is None:
            return _ask({"step1": _elicit_request("Step 1: What is your name?", "name")}, "multi-round:1")
        return _ask(
            {"step2": _elicit_request("Step 2: What is your favorite color?", "color")}, f"multi-round:2:{name}"
        )

    @mcp.tool(description="Asks only for what the client declared: sampling and/or elicitation")
    def test_input_required_result_capabilities(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        caps = ctx.client_capabilities
        requests: dict[str, Any] = {}
        answers: list[str] = []
        if caps is not None and caps.sampling is not None:
            answer = _sampled(ctx, "greeting")
            if answer is None:
                requests["greeting"] = _sample_request("Say hello", 50)
            else:
                answers.append(answer)
        if caps is not None and caps.elicitation is not None:
            name = _accepted(ctx, "user_name", "name")
            if name is None:
                requests["user_name"] = _elicit_request("What is your name?", "name")
            else:
                answers.append(str(name))
        if requests:
            return _ask(requests)
        return _text("; ".join(answers) or "the client declared neither sampling nor elicitation")

    @mcp.tool(description="Needs sampling: -32021 when the request's _meta does not declare it")
    def test_missing_capability(answer: Annotated[types.CreateMessageResult, Resolve(_say_hello_resolver)]) -> str:
        blocks = answer.content if isinstance(answer.content, list) else [answer.content]
        return "LLM response: " + " ".join(b.text for b in blocks if isinstance(b, types.TextContent))

    @mcp.tool(description="Asks a question by elicitation (as an input_required result, never on the stream)")
    def test_streaming_elicitation(who: Annotated[_Name, Resolve(_ask_name_resolver)]) -> str:
        return f"Hello, {who.name}!"

    @mcp.tool(description="Logs at info while it runs (sent only when the request's _meta sets a logLevel)")
    async def test_logging_tool(ctx: Context) -> str:
        await ctx.info("Logging tool ran")
        return "Logged"

    changes = itertools.count(1)

    @mcp.tool(description="Adds a tool and announces tools/list_changed to subscriptions/listen streams")
    async def test_trigger_tool_change(ctx: Context) -> str:
        n = next(changes)
        mcp.add_tool(lambda: "added", name=f"added_tool_{n}", description="Added at run time")
        await ctx.notify_tools_changed()
        return f"added added_tool_{n}"

    @mcp.tool(description="Adds a prompt and announces prompts/list_changed to subscriptions/listen streams")
    async def test_trigger_prompt_change(ctx: Context) -> str:
        n = next(changes)
        mcp.add_prompt(Prompt.from_function(lambda: "added", name=f"added_prompt_{n}", description="Added"))
        await ctx.notify_prompts_changed()
        return f"added added_prompt_{n}"

    @mcp.prompt(description="Asks for context (input_required, key user_context) before building the prompt")
    def test_input_required_result_prompt(ctx: Context) -> list[UserMessage] | types.InputRequiredResult:
        context = _accepted(ctx, "user_context", "context")
        if context is None:
            return _ask({"user_context": _elicit_request("What context should the prompt use?", "context")})
        return [UserMessage(f"Prompt built with context: {context}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument(
        "--stateless-fixtures", action="store_true", help="also serve the 2026-07-28 scenarios' tools"
    )
    parser.add_argument(
        "--native-2026",
        action="store_true",
        help="also serve the 2026-07-28 scenarios' tools, written the 2026-07-28 way (input_required results)",
    )
    args = parser.parse_args()
    if args.stateless_fixtures and args.native_2026:
        parser.error("--stateless-fixtures and --native-2026 serve the same tool names; pick one")
    if args.stateless_fixtures:
        register_stateless_fixtures()
    if args.native_2026:
        register_native_fixtures()
    app = mcp.streamable_http_app(host="127.0.0.1", event_store=MemoryEventStore(), retry_interval=1000)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
