// The official TypeScript SDK v2 (`@modelcontextprotocol/client@2.4.0`, Node 22) as a
// 2026-07-28 client of mcpgate, calling a tool whose parameters are mirrored into `Mcp-Param-*`
// headers (`x-mcp-header`); the companion of py_client.py (tests/e2e/xheader.sh).
//
// The SDK builds the headers itself from the tool's `inputSchema` as mcpgate lists it; mcpgate
// checks them against the arguments (a mismatch would be HTTP 400 / -32020). Also compares which
// of the fixture's tools the SDK keeps when it talks to a 2026-07-28 example server directly with
// the ones mcpgate lists. One line per check (`ok` or `FAIL`), then `N passed, M failed`.
//
// With a third URL (mcpgate in front of the 2026-07-28 example server) the gateway checks run there
// too: then mcpgate also builds the headers of its own hop from the upstream's schemas.
//
// usage: ts_client.mjs GATEWAY_MCP_URL DIRECT_2026_MCP_URL [GATEWAY_TO_2026_MCP_URL]
//        (run with .peers/node22-sdk2/bin/node)
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const peers = process.env.PEERS_DIR ?? path.resolve(here, "../../../.peers");
const { Client, StreamableHTTPClientTransport } = await import(
  pathToFileURL(path.join(peers, "node22-sdk2/node_modules/@modelcontextprotocol/client/dist/index.mjs")).href
);

const results = [];
function check(name, ok, detail = "") {
  results.push(ok);
  console.log(ok ? `ok   ${name}` : `FAIL ${name}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
}

async function connect(url) {
  const client = new Client({ name: "ts-xheader-e2e", version: "1" }, { capabilities: {}, versionNegotiation: { mode: "auto" } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

const xhTools = async (client) =>
  new Set((await client.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith("xh_")));

const [gatewayUrl, directUrl, gateway2Url] = process.argv.slice(2);
try {
  const direct = await connect(directUrl);
  check("the 2026-07-28 example server is spoken to in 2026-07-28", direct.getNegotiatedProtocolVersion() === "2026-07-28", direct.getNegotiatedProtocolVersion());
  const keptBySdk = await xhTools(direct);
  check("the SDK itself keeps only xh_route of the fixture's x-mcp-header tools", isDeepStrictEqual([...keptBySdk], ["xh_route"]), [...keptBySdk]);
  await direct.close();

  const calls = [
    { region: "us-west1", tenant: { id: 42 }, verbose: true, query: "SELECT 1" },
    { region: "Zürich 世界", tenant: { id: -9007199254740991 }, verbose: false, note: null },
    { region: " padded ", note: "line1\nline2" },
    { region: "=?base64?literal?=" },
    { query: "no header" },
  ];
  const gateways = [["session-based upstream", gatewayUrl]];
  if (gateway2Url) gateways.push(["2026-07-28 upstream", gateway2Url]);
  for (const [where, url] of gateways) {
    const client = await connect(url);
    check(`[${where}] negotiated 2026-07-28 with mcpgate`, client.getNegotiatedProtocolVersion() === "2026-07-28", client.getNegotiatedProtocolVersion());
    const listed = await xhTools(client);
    check(`[${where}] mcpgate lists exactly the x-mcp-header tools the SDK keeps`, isDeepStrictEqual([...listed].sort(), [...keptBySdk].sort()), [...listed]);
    for (const args of calls) {
      try {
        const r = await client.callTool({ name: "xh_route", arguments: args });
        const got = r.structuredContent?.arguments;
        check(`[${where}] xh_route ${JSON.stringify(args)}: headers accepted, arguments arrive unchanged`, !r.isError && isDeepStrictEqual(got, args), r);
      } catch (e) {
        check(`[${where}] xh_route ${JSON.stringify(args)}`, false, String(e));
      }
    }
    await client.close();
  }
} catch (e) {
  check("the run", false, String(e?.stack ?? e));
}
const failed = results.filter((r) => !r).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
