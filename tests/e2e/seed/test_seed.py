"""The seed walkthrough (shared/seed/kgateway-mcp-gateway-guide.txt), automated.

markitdown-mcp runs over SSE behind mcpgate; mcpgate has an SSE listener and JWT
authentication from the seed's own jwks.json; the client is the official Python SDK with the
seed's bearer token. Listing shows `convert_to_markdown`; calling it is denied; the test adds
the seed's MCPAuthPolicy (claim `sub` equals `me` → the tool) to the config file; the same
session's next call succeeds and returns markdown. Also: no token → 401 pointing at the
protected-resource metadata; another subject → denied; another subject's token cannot ride
the session.

Environment (tests/e2e/seed.sh sets it): GW (http://127.0.0.1:PORT), CONFIG, JWKS,
SEED_TOKEN, YOU_TOKEN (sub "you", signed by YOU_JWK's key), YOU_JWK, SEED_JWK, GW_LOG (the
gateway's log, to see a rejected reload).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import anyio
import pytest

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

GW = os.environ["GW"]
CONFIG = os.environ["CONFIG"]
JWKS = os.environ["JWKS"]
SEED_TOKEN = os.environ["SEED_TOKEN"]
YOU_TOKEN = os.environ["YOU_TOKEN"]
DATA_URI = "data:text/plain;base64,SGVsbG8gKndvcmxkKg=="
SEED_POLICY = """
policies:
  # The seed's MCPAuthPolicy `mcp-jq-auth`, one to one.
  - name: mcp-jq-auth
    allow: { tools: ["markitdown:convert_to_markdown"] }
    when: { claims: { sub: me } }
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def http(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    req = urllib.request.Request(GW + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def initialize_body() -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "seed-test", "version": "0"}},
        }
    ).encode()


MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def test_no_token_gets_401_with_the_metadata_header() -> None:
    for method, path, body in [("GET", "/sse", None), ("POST", "/mcp", initialize_body())]:
        h = dict(MCP_HEADERS)
        if method == "GET":
            h = {"Accept": "text/event-stream"}
        status, headers, _ = http(method, path, body, h)
        assert status == 401, (path, status)
        challenge = headers.get("WWW-Authenticate") or headers.get("www-authenticate")
        assert challenge and challenge.startswith("Bearer resource_metadata=\""), challenge
        url = challenge.split('resource_metadata="', 1)[1].split('"', 1)[0]
        assert url == f"{GW}/.well-known/oauth-protected-resource{path}", url
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.loads(r.read())
        assert doc["resource"] == GW + path
        assert doc["authorization_servers"] == ["https://idp.example.com"]
    # The root form of RFC 9728 names the MCP endpoint.
    with urllib.request.urlopen(GW + "/.well-known/oauth-protected-resource", timeout=10) as r:
        assert json.loads(r.read())["resource"] == GW + "/mcp"


def test_bad_tokens_get_401_invalid_token() -> None:
    tampered = SEED_TOKEN[:-6] + ("AAAAAA" if not SEED_TOKEN.endswith("AAAAAA") else "BBBBBB")
    for token in [tampered, "not-a-jwt", SEED_TOKEN.split(".")[0] + ".e30."]:
        status, headers, _ = http("POST", "/mcp", initialize_body(), {**MCP_HEADERS, "Authorization": f"Bearer {token}"})
        assert status == 401, token
        assert 'error="invalid_token"' in (headers.get("WWW-Authenticate") or headers.get("www-authenticate") or "")


async def call(session: ClientSession) -> tuple[bool, str]:
    """Calls the tool; (succeeded, text or error message)."""
    try:
        r = await session.call_tool("convert_to_markdown", {"uri": DATA_URI})
    except Exception as e:  # the SDK raises on a JSON-RPC error
        return False, str(e)
    text = "".join(getattr(c, "text", "") for c in r.content)
    return not r.is_error, text


@pytest.mark.anyio
async def test_seed_walkthrough_over_sse() -> None:
    headers = {"Authorization": f"Bearer {SEED_TOKEN}"}
    async with sse_client(f"{GW}/sse", headers=headers) as streams:
        async with ClientSession(streams[0], streams[1]) as s:
            await s.initialize()
            tools = (await s.list_tools()).tools
            assert "convert_to_markdown" in [t.name for t in tools]
            ok, msg = await call(s)
            assert not ok, msg
            # The denial reads exactly like an unknown tool.
            assert "Unknown tool: convert_to_markdown" in msg, msg
            ok2, msg2 = await call_unknown(s)
            assert not ok2 and msg2.replace("no_such_tool", "convert_to_markdown") == msg, (msg, msg2)

            # The operator applies the seed's MCPAuthPolicy: appended to the config file,
            # picked up by the file watcher, no restart, the session stays.
            with open(CONFIG, "a") as f:
                f.write(SEED_POLICY)
            deadline = time.monotonic() + 15
            while True:
                ok, text = await call(s)
                if ok or time.monotonic() > deadline:
                    break
                await anyio.sleep(0.2)
            assert ok, text
            assert "Hello *world*" in text, text


async def call_unknown(session: ClientSession) -> tuple[bool, str]:
    try:
        await session.call_tool("no_such_tool", {"uri": DATA_URI})
    except Exception as e:
        return False, str(e)
    return True, ""


def add_key_for_you() -> None:
    """Rotates the JWKS file to a set holding the seed key and a second key (reloaded live)."""
    seed = json.load(open(os.environ["SEED_JWK"]))
    you = json.load(open(os.environ["YOU_JWK"]))
    with open(JWKS + ".tmp", "w") as f:
        json.dump({"keys": [seed, you]}, f)
    os.replace(JWKS + ".tmp", JWKS)


def you_accepted() -> bool:
    status, _, _ = http("POST", "/mcp", initialize_body(), {**MCP_HEADERS, "Authorization": f"Bearer {YOU_TOKEN}"})
    return status == 200


def wait_for_you() -> None:
    if not you_accepted():
        add_key_for_you()
        deadline = time.monotonic() + 15
        while not you_accepted():
            assert time.monotonic() < deadline, "the new key was not picked up"
            time.sleep(0.2)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["sse", "streamable_http"])
async def test_wrong_sub_is_denied(transport: str) -> None:
    wait_for_you()
    headers = {"Authorization": f"Bearer {YOU_TOKEN}"}
    if transport == "sse":
        cm = sse_client(f"{GW}/sse", headers=headers)
    else:
        cm = streamable_http_client(f"{GW}/mcp", http_client=create_mcp_http_client(headers=headers))
    async with cm as streams:
        async with ClientSession(streams[0], streams[1]) as s:
            await s.initialize()
            assert "convert_to_markdown" in [t.name for t in (await s.list_tools()).tools]
            ok, msg = await call(s)
            assert not ok and "Unknown tool: convert_to_markdown" in msg, msg


def test_another_subject_cannot_ride_a_session() -> None:
    wait_for_you()
    me = {**MCP_HEADERS, "Authorization": f"Bearer {SEED_TOKEN}"}
    status, headers, _ = http("POST", "/mcp", initialize_body(), me)
    assert status == 200
    sid = headers.get("Mcp-Session-Id") or headers.get("mcp-session-id")
    list_body = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode()
    you = {**MCP_HEADERS, "Authorization": f"Bearer {YOU_TOKEN}", "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"}
    status, _, body = http("POST", "/mcp", list_body, you)
    assert status == 403, (status, body)
    # The owner still can.
    status, _, body = http("POST", "/mcp", list_body, {**me, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"})
    assert status == 200 and b"convert_to_markdown" in body, body
    # And without credentials: 401, not the session.
    status, _, _ = http("POST", "/mcp", list_body, {**MCP_HEADERS, "Mcp-Session-Id": sid})
    assert status == 401


@pytest.mark.anyio
async def test_a_bad_file_is_rejected_and_the_running_config_stays() -> None:
    good = open(CONFIG).read()
    assert "mcp-jq-auth" in good, "runs after the walkthrough added the policy"
    try:
        with open(CONFIG, "a") as f:
            f.write("  - name: broken\n    allow: { tools: [no-colon-here] }\n")
        log = os.environ["GW_LOG"]
        deadline = time.monotonic() + 15
        while "Config reload rejected" not in open(log).read():
            assert time.monotonic() < deadline, "the bad file was not noticed"
            await anyio.sleep(0.2)
        assert "policies[" in open(log).read().split("Config reload rejected")[-1]
        # The running config (with the seed policy) still serves a new session.
        async with sse_client(f"{GW}/sse", headers={"Authorization": f"Bearer {SEED_TOKEN}"}) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                ok, text = await call(s)
                assert ok and "Hello *world*" in text, text
    finally:
        with open(CONFIG, "w") as f:
            f.write(good)
