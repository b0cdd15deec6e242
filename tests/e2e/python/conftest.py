"""Shared plumbing for the Python end-to-end suite (official SDK `mcp==2.3.0`).

The same tests run directly against the upstream servers or through mcpgate; only the
environment changes (tests/e2e/run.sh sets it):

  MCP_URL         Streamable HTTP endpoint that serves server-everything  (…/mcp)
  MCP_SSE_URL     legacy SSE endpoint that serves server-everything       (…/sse)
  TOOL_PREFIX     exposed-name prefix of everything's tools and prompts   ("" direct, "ev_" via mcpgate)
  MD_URL          Streamable HTTP endpoint that serves markitdown-mcp
  MD_SSE_URL      legacy SSE endpoint that serves markitdown-mcp
  MD_PREFIX       exposed-name prefix of markitdown's tool
  EXPECT_SERVER_NAME     serverInfo.name expected from MCP_URL/MCP_SSE_URL (unset: any non-empty name)
  EXPECT_MD_SERVER_NAME  the same for MD_URL/MD_SSE_URL
  RESOURCE_COPIES_MAX    how often one resource URI may appear in a full resources/list walk
                         (1 direct; 2 through mcpgate, where two targets run the same server)

A test whose endpoint is not configured is skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

TRANSPORTS = ("streamable_http", "sse")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass
class Inbox:
    """Everything the server sent us outside of responses: notifications, log messages, errors."""

    notifications: list[Any] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.errors.append(message)
        else:
            self.notifications.append(message)

    async def on_log(self, params: Any) -> None:
        self.logs.append(params)

    async def wait_for(self, what: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
        """Poll `what()` until it returns something truthy; fail the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = what()
            if found:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {getattr(what, '__name__', what)}")
            await anyio.sleep(step)


@dataclass
class Endpoint:
    """One configured server behind one transport, and the names it exposes."""

    transport: str
    url: str
    prefix: str
    server_name: str | None

    def name(self, bare: str) -> str:
        """The exposed name of a tool or prompt (`<target><sep><name>` through the gateway)."""
        return self.prefix + bare

    @asynccontextmanager
    async def session(self, **callbacks: Any) -> AsyncIterator[tuple[ClientSession, Inbox]]:
        """An initialized ClientSession; `callbacks` go to ClientSession (sampling_callback, …)."""
        inbox = Inbox()
        if self.transport == "sse":
            cm = sse_client(self.url, timeout=10, sse_read_timeout=120)
        else:
            cm = streamable_http_client(self.url)
        async with cm as streams:
            async with ClientSession(
                streams[0],
                streams[1],
                read_timeout_seconds=60,
                message_handler=inbox.on_message,
                logging_callback=inbox.on_log,
                **callbacks,
            ) as session:
                with anyio.fail_after(20):
                    await session.initialize()
                yield session, inbox


def _endpoint(transport: str, http_var: str, sse_var: str, prefix_var: str, name_var: str) -> Endpoint:
    url = env(sse_var if transport == "sse" else http_var)
    if url is None:
        pytest.skip(f"{sse_var if transport == 'sse' else http_var} is not set")
    return Endpoint(transport, url, env(prefix_var, "") or "", env(name_var))


@pytest.fixture(params=TRANSPORTS)
def everything(request: pytest.FixtureRequest) -> Endpoint:
    """server-everything, over Streamable HTTP and over legacy SSE."""
    return _endpoint(request.param, "MCP_URL", "MCP_SSE_URL", "TOOL_PREFIX", "EXPECT_SERVER_NAME")


@pytest.fixture(params=TRANSPORTS)
def markitdown(request: pytest.FixtureRequest) -> Endpoint:
    """markitdown-mcp, over Streamable HTTP and over legacy SSE."""
    return _endpoint(request.param, "MD_URL", "MD_SSE_URL", "MD_PREFIX", "EXPECT_MD_SERVER_NAME")


def texts(result: Any) -> list[str]:
    """The text of every text block in a tool result or prompt message list."""
    return [block.text for block in result.content if getattr(block, "type", None) == "text"]
