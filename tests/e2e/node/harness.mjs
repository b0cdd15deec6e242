// Shared plumbing for the Node end-to-end suite (@modelcontextprotocol/sdk@1.32.2, v1 client).
//
// Same environment as the Python suite (see tests/e2e/python/conftest.py): MCP_URL, MCP_SSE_URL,
// TOOL_PREFIX, MD_URL, MD_SSE_URL, MD_PREFIX, EXPECT_SERVER_NAME, EXPECT_MD_SERVER_NAME,
// RESOURCE_COPIES_MAX. The SDK is loaded from the pinned install in .peers/node (PEERS_DIR).
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const peers = process.env.PEERS_DIR ?? path.resolve(here, "../../../.peers");
const sdkRoot = path.join(peers, "node/node_modules/@modelcontextprotocol/sdk/dist/esm");
const load = (rel) => import(pathToFileURL(path.join(sdkRoot, rel)).href);

export const { Client } = await load("client/index.js");
export const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
export const { SSEClientTransport } = await load("client/sse.js");
export const types = await load("types.js");

export const TRANSPORTS = ["streamable_http", "sse"];

const envOr = (name, fallback) => {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : v;
};

/** One configured server behind one transport; `url` is undefined when not configured. */
export function endpoint(kind, transport) {
  const vars =
    kind === "everything"
      ? { http: "MCP_URL", sse: "MCP_SSE_URL", prefix: "TOOL_PREFIX", name: "EXPECT_SERVER_NAME" }
      : { http: "MD_URL", sse: "MD_SSE_URL", prefix: "MD_PREFIX", name: "EXPECT_MD_SERVER_NAME" };
  const prefix = envOr(vars.prefix, "");
  return {
    transport,
    url: envOr(transport === "sse" ? vars.sse : vars.http, undefined),
    serverName: envOr(vars.name, undefined),
    name: (bare) => prefix + bare,
  };
}

/** Connects a v1 Client; `setup(client)` registers handlers before the handshake. */
export async function connect(ep, { capabilities = {}, setup } = {}) {
  const client = new Client({ name: "mcpgate-e2e-node", version: "1.0.0" }, { capabilities });
  const inbox = { logs: [], updates: [] };
  client.setNotificationHandler(types.LoggingMessageNotificationSchema, (n) => inbox.logs.push(n.params));
  client.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => inbox.updates.push(n.params));
  if (setup) setup(client);
  const transport =
    ep.transport === "sse"
      ? new SSEClientTransport(new URL(ep.url))
      : new StreamableHTTPClientTransport(new URL(ep.url));
  await client.connect(transport, { timeout: 20_000 });
  return { client, inbox, close: () => client.close() };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn()` until truthy; throws after `ms`. */
export async function waitFor(fn, ms, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

export const texts = (result) => result.content.filter((b) => b.type === "text").map((b) => b.text);
