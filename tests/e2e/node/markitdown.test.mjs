// markitdown-mcp through the TypeScript SDK v1 client, over Streamable HTTP and legacy SSE.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TRANSPORTS, endpoint, connect, texts } from "./harness.mjs";

const HELLO = "data:text/plain;base64,SGVsbG8gKndvcmxkKg==";

for (const transport of TRANSPORTS) {
  const ep = endpoint("markitdown", transport);
  describe(`markitdown over ${transport}`, { skip: ep.url ? false : "endpoint not configured" }, () => {
    test("list and convert_to_markdown", { timeout: 60_000 }, async () => {
      const { client, close } = await connect(ep);
      try {
        if (ep.serverName) assert.equal(client.getServerVersion().name, ep.serverName);
        const names = (await client.listTools()).tools.map((t) => t.name);
        assert.ok(names.includes(ep.name("convert_to_markdown")), `tools: ${names}`);
        const r = await client.callTool({ name: ep.name("convert_to_markdown"), arguments: { uri: HELLO } });
        assert.equal(r.isError ?? false, false);
        assert.equal(texts(r)[0].trim(), "Hello *world*");
      } finally {
        await close();
      }
    });
  });
}
