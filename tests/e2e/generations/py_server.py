"""A 2026-07-28 MCP server written with the official Python SDK (`mcp==2.3.0`, `MCPServer`).

Served over Streamable HTTP at /mcp on 127.0.0.1. The SDK's app answers 2026-07-28 requests
statelessly (per-request `_meta`, `server/discover`, `input_required`, `subscriptions/listen`)
and session-based ones (`initialize`, `Mcp-Session-Id`) on the same endpoint, so whichever
generation a gateway speaks to it, the tools below behave the same.

Its tools ask for input the SDK's dual-era way (`Resolve` + `Elicit`/`Sample`): to a
2026-07-28 caller they return `resultType: "input_required"` and resume on the retry with
`inputResponses`; to a session-based caller they send `elicitation/create` or
`sampling/createMessage` mid-call.

  echo(text)       -> "py:<text>"
  ask_name()       elicits {"name": str}, then -> "Hello, <name>! (from python)"
  ask_llm(q)       samples the client's LLM with q, then -> "python heard: <answer>"
  list_roots()     asks for the client's roots, then -> "roots: <uri>, <uri>"
  log_progress(n)  n progress notifications and one info log, then -> "py logged <n>"
  set_note(text)   sets the text of the resource note://py/current and announces
                   notifications/resources/updated for it (to subscriptions/listen streams)
  add_tool(name)   registers a tool and announces tools/list_changed (both generations)

With --stateless the session-based side is served statelessly too (`stateless_http=True`: no
`Mcp-Session-Id`, a fresh context per request), the SDK's mode for horizontally scaled
deployments. A session-based caller then has no channel for the tools' questions (the SDK
answers "no back-channel for server-initiated requests"); a 2026-07-28 caller does not need one.

usage: python py_server.py --port PORT [--stateless]
"""

from __future__ import annotations

import argparse
import warnings
from typing import Annotated

import uvicorn
from pydantic import BaseModel

import mcp.types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, ListRoots, Resolve, Sample
from mcp.shared.exceptions import MCPDeprecationWarning

# Sampling and logging are deprecated in 2026-07-28 but still part of it; they are tested on purpose.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

mcp = MCPServer("py-modern", instructions="Python SDK 2.x server for tests/e2e/generations.sh")


class Name(BaseModel):
    name: str


def ask_name() -> Elicit[Name]:
    return Elicit("What is your name?", Name)


def ask_llm(q: str) -> Sample:
    message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text=q))
    return Sample([message], max_tokens=50)


@mcp.tool(name="echo", description="Echoes its text back with a py: prefix")
def echo_tool(text: str) -> str:
    return f"py:{text}"


@mcp.tool(name="ask_name", description="Asks the user's name (elicitation), then greets them")
def ask_name_tool(who: Annotated[Name, Resolve(ask_name)]) -> str:
    return f"Hello, {who.name}! (from python)"


@mcp.tool(name="ask_llm", description="Asks the client's LLM a question (sampling) and reports the answer")
def ask_llm_tool(q: str, answer: Annotated[types.CreateMessageResult, Resolve(ask_llm)]) -> str:
    content = answer.content if isinstance(answer.content, list) else [answer.content]
    text = " ".join(c.text for c in content if isinstance(c, types.TextContent))
    return f"python heard: {text}"


def ask_roots() -> ListRoots:
    return ListRoots()


@mcp.tool(name="list_roots", description="Asks for the client's roots and lists them")
def list_roots_tool(roots: Annotated[types.ListRootsResult, Resolve(ask_roots)]) -> str:
    return "roots: " + ", ".join(str(r.uri) for r in roots.roots)


@mcp.tool(name="log_progress", description="Reports n progress steps and logs one info message")
async def log_progress_tool(n: int, ctx: Context) -> str:
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"step {i}")
    await ctx.info(f"log_progress did {n} steps")
    return f"py logged {n}"


NOTE = {"text": "first note"}
NOTE_URI = "note://py/current"


@mcp.resource(NOTE_URI, name="note", description="A note set_note changes", mime_type="text/plain")
def note() -> str:
    return NOTE["text"]


@mcp.tool(name="set_note", description="Sets the note resource and announces its update")
async def set_note_tool(text: str, ctx: Context) -> str:
    NOTE["text"] = text
    await ctx.notify_resource_updated(NOTE_URI)
    return f"note set to {text}"


@mcp.tool(name="add_tool", description="Adds a tool at run time and announces tools/list_changed")
async def add_tool_tool(name: str, ctx: Context) -> str:
    mcp.add_tool(lambda: "added", name=name, description="Added at run time")
    await ctx.notify_tools_changed()  # subscriptions/listen streams (2026-07-28)
    try:
        await ctx.session.send_tool_list_changed()  # the session's GET stream (session-based)
    except Exception:  # a stateless request has no session to announce it on
        pass
    return f"added {name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--stateless", action="store_true", help="serve session-based requests statelessly too")
    args = parser.parse_args()
    app = mcp.streamable_http_app(host="127.0.0.1", stateless_http=args.stateless)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
