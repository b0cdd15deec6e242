// The official TypeScript SDK v1 (`@modelcontextprotocol/sdk@1.32.2`, the machine's Node 20) as
// a session-based client of mcpgate fronting both MCP generations (tests/e2e/generations.sh).
//
// It initializes (2025-11-25, Mcp-Session-Id) and calls the input-asking tools of the
// 2026-07-28 servers: the question must reach it as a server→client `elicitation/create` or
// `sampling/createMessage`, and its answer must reach the tool. Same output contract as
// ts_client.mjs (`ok`/`FAIL`/`XFAIL`/`XPASS`, then `N passed, M failed`).
//
// usage: node ts1_client.mjs URL
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const peers = process.env.PEERS_DIR ?? path.resolve(here, "../../../.peers");
const sdkRoot = path.join(peers, "node/node_modules/@modelcontextprotocol/sdk/dist/esm");
const load = (rel) => import(pathToFileURL(path.join(sdkRoot, rel)).href);
const { Client } = await load("client/index.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
const { ElicitRequestSchema, CreateMessageRequestSchema, ListRootsRequestSchema } = await load("types.js");

// The targets mcpgate speaks to session-based (generations.sh reads them from /readyz). The SDK
// servers `ts` and `pyst` serve session-based HTTP without sessions, so through such a connection
// their tools cannot ask for input: a known gap of mcpgate (issue 6, upstream side of 2026-07-28)
// only while the gateway speaks session-based to them; otherwise these are ordinary checks.
const SESSION_SPOKEN = new Set((process.env.GEN_SESSION_SPOKEN ?? "").split(" ").filter(Boolean));
const NO_CHANNEL = (target) =>
  `mcpgate speaks session-based to ${target}, whose SDK serves session-based HTTP without sessions, ` +
  "so the tool has no channel to ask on (needs the upstream side of 2026-07-28)";
// check name -> [the target whose generation decides whether it is a known gap, the reason]
const KNOWN_GAPS = {
  "ts (HTTP): elicitation reaches this client and its answer the tool": ["ts", NO_CHANNEL],
  "pyst (stateless HTTP): elicitation reaches this client and its answer the tool": ["pyst", NO_CHANNEL],
};

const results = [];
function check(name, ok, detail = "") {
  const [target, reason] = KNOWN_GAPS[name] ?? [];
  const gap = target !== undefined && SESSION_SPOKEN.has(target) ? reason(target) : undefined;
  const status = gap === undefined ? (ok ? "ok  " : "FAIL") : ok ? "XPASS" : "XFAIL";
  results.push(status.trim());
  const d = typeof detail === "string" ? detail : JSON.stringify(detail);
  let line = `${status} ${name}`;
  if (status === "FAIL") line += `: ${d}`;
  if (status === "XFAIL") line += ` (known gap: ${gap}; got: ${String(d).slice(0, 200)})`;
  if (status === "XPASS") line += `: passes, so the gap mark is wrong (${gap})`;
  console.log(line);
}
async function attempt(name, call, ok) {
  let result;
  try {
    result = await call();
  } catch (e) {
    check(name, false, `${e?.name}: ${e?.message}`);
    return undefined;
  }
  check(name, ok(result), result);
  return result;
}
const text = (r) => (r?.content ?? []).filter((b) => b.type === "text").map((b) => b.text).join(" ");
const good = (r, ...needles) => r?.isError !== true && needles.every((n) => text(r).includes(n));

const asked = [];
const client = new Client({ name: "ts-v1-e2e", version: "1" }, { capabilities: { elicitation: {}, sampling: {}, roots: {} } });
client.setRequestHandler(ListRootsRequestSchema, async () => {
  asked.push("roots");
  return { roots: [{ uri: "file:///e2e/ts-v1", name: "v1" }] };
});
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  asked.push(`elicitation:${request.params.message}`);
  const props = request.params.requestedSchema?.properties ?? {};
  const content = {};
  if ("name" in props) content.name = "Linus";
  if ("color" in props) content.color = "amber";
  return { action: "accept", content };
});
client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
  const q = request.params.messages.at(-1).content.text;
  asked.push(`sampling:${q}`);
  return { role: "assistant", model: "e2e-ts1", content: { type: "text", text: `v1 answer to ${q}` } };
});
const transport = new StreamableHTTPClientTransport(new URL(process.argv[2]));
await client.connect(transport);
check("negotiated a session-based version", transport.protocolVersion === "2025-11-25", transport.protocolVersion);
check("a session id from mcpgate", typeof transport.sessionId === "string" && transport.sessionId.length > 0, transport.sessionId);
const opts = { timeout: 30_000 };
await attempt(
  "py: elicitation reaches this client and its answer the tool",
  () => client.callTool({ name: "py_ask_name", arguments: {} }, undefined, opts),
  (r) => good(r, "Hello, Linus! (from python)"),
);
await attempt(
  "py: sampling reaches this client and its answer the tool",
  () => client.callTool({ name: "py_ask_llm", arguments: { q: "2+2?" } }, undefined, opts),
  (r) => good(r, "python heard: v1 answer to 2+2?"),
);
await attempt(
  "py: roots/list reaches this client and its answer the tool",
  () => client.callTool({ name: "py_list_roots", arguments: {} }, undefined, opts),
  (r) => good(r, "roots: file:///e2e/ts-v1"),
);
await attempt(
  "pyst (stateless HTTP): elicitation reaches this client and its answer the tool",
  () => client.callTool({ name: "pyst_ask_name", arguments: {} }, undefined, opts),
  (r) => good(r, "Hello, Linus! (from python)"),
);
await attempt(
  "ts (HTTP): elicitation reaches this client and its answer the tool",
  () => client.callTool({ name: "ts_ask_color", arguments: {} }, undefined, opts),
  (r) => good(r, "ts got amber"),
);
await attempt(
  "tsio (stdio): elicitation reaches this client and its answer the tool",
  () => client.callTool({ name: "tsio_ask_color", arguments: {} }, undefined, opts),
  (r) => good(r, "tsio got amber"),
);
check(
  "the questions arrived as server→client requests",
  asked.includes("elicitation:What is your name?") && asked.includes("sampling:2+2?") && asked.includes("roots") && asked.includes("elicitation:Your favourite colour?"),
  asked,
);
await client.close();

const failed = results.filter((r) => r === "FAIL" || r === "XPASS").length;
const passed = results.filter((r) => r === "ok").length;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
