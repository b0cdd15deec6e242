// Traffic-management errors as the TypeScript SDK v1 (1.32.2) client sees them through mcpgate.
// Usage: node client.mjs TRANSPORT URL (TRANSPORT: streamable_http | sse). One `ok`/`FAIL` line per check.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const peers = process.env.PEERS_DIR ?? path.resolve(here, "../../../.peers");
const sdkRoot = path.join(peers, "node/node_modules/@modelcontextprotocol/sdk/dist/esm");
const load = (rel) => import(pathToFileURL(path.join(sdkRoot, rel)).href);
const { Client } = await load("client/index.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
const { SSEClientTransport } = await load("client/sse.js");

const [transportName, url] = process.argv.slice(2);
let failures = 0;
const check = (name, cond, why) => {
  if (cond) console.log(`ok   node ${transportName}: ${name}`);
  else {
    failures += 1;
    console.log(`FAIL node ${transportName}: ${name}: ${why}`);
  }
};
const errorOf = async (p) => {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
};

const transport =
  transportName === "sse" ? new SSEClientTransport(new URL(url)) : new StreamableHTTPClientTransport(new URL(url));
const client = new Client({ name: "mcpgate-traffic-e2e", version: "1.0.0" });
await client.connect(transport);
const r1 = await client.callTool({ name: "lim_echo", arguments: { message: "one" } });
check("a call under the limit succeeds", r1.content?.[0]?.text === "one", JSON.stringify(r1));
const e1 = await errorOf(client.callTool({ name: "lim_echo", arguments: { message: "two" } }));
check(
  "a call over the tool limit fails with -32005 and retryAfterMs",
  e1?.code === -32005 && e1?.data?.scope === "tool" && e1?.data?.retryAfterMs > 0,
  String(e1),
);
const e2 = await errorOf(client.callTool({ name: "slow_echo", arguments: { message: "x" } }));
check("a call past timeouts.call fails with -32003 naming the target", e2?.code === -32003 && e2?.data?.target === "slow", String(e2));
const r2 = await client.callTool({ name: "lim_add", arguments: { a: 1, b: 2 } });
check("the session is still usable", !r2.isError, JSON.stringify(r2));
await client.close();
process.exit(failures ? 1 : 0);
