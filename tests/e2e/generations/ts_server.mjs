// A 2026-07-28 MCP server written with the official TypeScript SDK v2
// (`@modelcontextprotocol/server@2.4.0`, Node 22), from ONE factory served either
//
//   --http PORT   over Streamable HTTP at /mcp on 127.0.0.1 (`createMcpHandler`: 2026-07-28
//                 per request; 2025-era requests through the SDK's default stateless fallback,
//                 a fresh instance per request and no sessions), or
//   --stdio       over stdio (`serveStdio`: the first message picks the era for the
//                 connection; an `initialize` pins it to the session-based generation).
//
// Tools (NAME is the --name argument, `ts` by default; the gateway adds its target prefix):
//   echo(text)           -> "NAME:<text>"
//   ask_color()          asks {"color": string} by elicitation the 2026-07-28 way (returns
//                        `inputRequired(...)`, resumed on the retry), then -> "NAME got <color>"
//                        (on a 2025-era connection the SDK's legacy shim sends a real
//                        elicitation/create instead, when the connection has a client to ask)
//   log_progress(n)      n progress notifications and one info log, then -> "NAME logged <n>"
//
// Loads the SDK from PEERS_DIR/node22-sdk2 (scripts/peers.sh); run it with that folder's
// bin/node (Node 22).
import http from "node:http";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const peers = process.env.PEERS_DIR ?? path.resolve(here, "../../../.peers");
const pkg = (name, file) =>
  import(pathToFileURL(path.join(peers, "node22-sdk2/node_modules/@modelcontextprotocol", name, "dist", file)).href);
const { McpServer, createMcpHandler, fromJsonSchema, inputRequired, acceptedContent } = await pkg("server", "index.mjs");

const args = process.argv.slice(2);
const opt = (flag) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const NAME = opt("--name") ?? "ts";

const colorSchema = { type: "object", properties: { color: { type: "string" } }, required: ["color"] };
const text = (t) => ({ content: [{ type: "text", text: t }] });

function factory() {
  const server = new McpServer(
    { name: `${NAME}-modern`, version: "2.4.0-e2e" },
    { capabilities: { tools: {}, logging: {} } },
  );
  server.registerTool(
    "echo",
    {
      description: "Echoes its text back with a prefix",
      inputSchema: fromJsonSchema({ type: "object", properties: { text: { type: "string" } }, required: ["text"] }),
    },
    async ({ text: t }) => text(`${NAME}:${t}`),
  );
  server.registerTool(
    "ask_color",
    { description: "Asks the user's favourite colour (elicitation), then reports it" },
    async (ctx) => {
      const answer = acceptedContent(ctx.mcpReq.inputResponses, "color");
      if (typeof answer?.color !== "string") {
        return inputRequired({
          inputRequests: {
            color: inputRequired.elicit({ message: "Your favourite colour?", requestedSchema: colorSchema }),
          },
        });
      }
      return text(`${NAME} got ${answer.color}`);
    },
  );
  server.registerTool(
    "log_progress",
    {
      description: "Reports n progress steps and logs one info message",
      inputSchema: fromJsonSchema({ type: "object", properties: { n: { type: "integer" } }, required: ["n"] }),
    },
    async ({ n }, ctx) => {
      const token = ctx.mcpReq._meta?.progressToken;
      for (let i = 1; i <= n; i++) {
        if (token !== undefined) {
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progressToken: token, progress: i, total: n, message: `step ${i}` },
          });
        }
      }
      await ctx.mcpReq.log("info", `log_progress did ${n} steps`);
      return text(`${NAME} logged ${n}`);
    },
  );
  return server;
}

if (args.includes("--stdio")) {
  const { serveStdio } = await pkg("server", "stdio.mjs");
  serveStdio(factory, { onerror: (e) => process.stderr.write(`ts_server: ${e?.message ?? e}\n`) });
} else {
  const port = Number(opt("--http"));
  if (!Number.isInteger(port)) throw new Error("usage: ts_server.mjs --http PORT | --stdio [--name NAME]");
  const handler = createMcpHandler(factory, {
    onerror: (e) => process.stderr.write(`ts_server: ${e?.message ?? e}\n`),
  });
  // node:http <-> fetch: the SDK's entry is web-standard (`handler.fetch(Request) -> Response`).
  const serverHttp = http.createServer(async (req, res) => {
    try {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      const abort = new AbortController();
      res.on("close", () => abort.abort());
      const request = new Request(`http://127.0.0.1:${port}${req.url}`, {
        method: req.method,
        headers: Object.entries(req.headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]])),
        body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
        signal: abort.signal,
      });
      const response = await handler.fetch(request);
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body) {
        for await (const chunk of response.body) res.write(chunk);
      }
      res.end();
    } catch (e) {
      process.stderr.write(`ts_server: ${e?.stack ?? e}\n`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  });
  serverHttp.listen(port, "127.0.0.1", () => process.stderr.write(`ts_server listening on 127.0.0.1:${port}\n`));
}
