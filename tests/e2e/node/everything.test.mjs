// server-everything through the TypeScript SDK v1 client, over Streamable HTTP and legacy SSE.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { TRANSPORTS, endpoint, connect, types, sleep, waitFor, texts } from "./harness.mjs";

const TOOLS = [
  "echo", "get-sum", "get-tiny-image", "get-annotated-message", "get-structured-content",
  "get-resource-links", "toggle-simulated-logging", "toggle-subscriber-updates",
  "trigger-long-running-operation", "get-roots-list", "trigger-sampling-request",
  "trigger-elicitation-request",
];
const STATIC_DOC = "demo://resource/static/document/features.md";
const TEXT_TEMPLATE = "demo://resource/dynamic/text/{resourceId}";
const FULL_CAPS = { sampling: {}, elicitation: {}, roots: { listChanged: true } };
const T = { timeout: 60_000 };

for (const transport of TRANSPORTS) {
  const ep = endpoint("everything", transport);
  describe(`everything over ${transport}`, { skip: ep.url ? false : "endpoint not configured" }, () => {
    // One session for the plain request/response tests; the others open their own.
    let conn;
    before(async () => {
      conn = await connect(ep);
    });
    after(async () => conn?.close());

    test("initialize", T, () => {
      const info = conn.client.getServerVersion();
      assert.ok(info.name && info.version);
      if (ep.serverName) assert.equal(info.name, ep.serverName);
      const caps = conn.client.getServerCapabilities();
      assert.ok(caps.tools && caps.prompts && caps.logging && caps.completions);
      assert.equal(caps.resources?.subscribe, true);
    });

    test("ping", T, async () => {
      assert.deepEqual(await conn.client.ping(), {});
    });

    test("tools/list keeps names, annotations and execution", T, async () => {
      const { client, close } = await connect(ep, { capabilities: FULL_CAPS });
      try {
        const tools = new Map();
        let cursor;
        do {
          const page = await client.listTools(cursor ? { cursor } : undefined);
          for (const tool of page.tools) {
            assert.ok(!tools.has(tool.name), `duplicate tool ${tool.name}`);
            tools.set(tool.name, tool);
          }
          cursor = page.nextCursor;
        } while (cursor);
        for (const name of TOOLS) assert.ok(tools.has(ep.name(name)), `missing ${ep.name(name)}`);
        assert.equal(tools.get(ep.name("echo")).annotations.readOnlyHint, true);
        assert.equal(tools.get(ep.name("simulate-research-query"))?.execution?.taskSupport, "required");
      } finally {
        await close();
      }
    });

    test("tools/call echo, get-sum, get-tiny-image, get-structured-content", T, async () => {
      const c = conn.client;
      assert.deepEqual(texts(await c.callTool({ name: ep.name("echo"), arguments: { message: "hi ✓" } })), ["Echo: hi ✓"]);
      assert.deepEqual(texts(await c.callTool({ name: ep.name("get-sum"), arguments: { a: 2, b: 40 } })), [
        "The sum of 2 and 40 is 42.",
      ]);
      const img = await c.callTool({ name: ep.name("get-tiny-image"), arguments: {} });
      assert.deepEqual(img.content.map((b) => b.type), ["text", "image", "text"]);
      assert.equal(img.content[1].mimeType, "image/png");
      assert.ok(Buffer.from(img.content[1].data, "base64").subarray(1, 4).equals(Buffer.from("PNG")));
      const weather = await c.callTool({ name: ep.name("get-structured-content"), arguments: { location: "Chicago" } });
      assert.deepEqual(weather.structuredContent, { temperature: 36, conditions: "Light rain / drizzle", humidity: 82 });
    });

    test("tools/call get-annotated-message and get-resource-links", T, async () => {
      const c = conn.client;
      const msg = await c.callTool({ name: ep.name("get-annotated-message"), arguments: { messageType: "success" } });
      assert.deepEqual(msg.content[0].annotations, { priority: 0.7, audience: ["user"] });
      const links = await c.callTool({ name: ep.name("get-resource-links"), arguments: { count: 2 } });
      const uris = links.content.filter((b) => b.type === "resource_link").map((b) => b.uri);
      assert.deepEqual(uris, ["demo://resource/dynamic/blob/1", "demo://resource/dynamic/text/2"]);
      const read = await c.readResource({ uri: uris[0] });
      assert.match(Buffer.from(read.contents[0].blob, "base64").toString(), /^Resource 1: This is a base64 blob/);
    });

    test("prompts list and get with arguments", T, async () => {
      const c = conn.client;
      const names = (await c.listPrompts()).prompts.map((p) => p.name);
      for (const p of ["simple-prompt", "args-prompt", "completable-prompt", "resource-prompt"]) {
        assert.ok(names.includes(ep.name(p)), `missing prompt ${ep.name(p)}`);
      }
      const r = await c.getPrompt({ name: ep.name("args-prompt"), arguments: { city: "Oslo" } });
      assert.equal(r.messages[0].content.text, "What's weather in Oslo?");
    });

    test("resources list (all pages), read, templates", T, async () => {
      const c = conn.client;
      const copiesMax = Number(process.env.RESOURCE_COPIES_MAX || 1);
      const seen = new Map();
      let cursor, pages = 0;
      do {
        const page = await c.listResources(cursor ? { cursor } : undefined);
        for (const r of page.resources) seen.set(r.uri, (seen.get(r.uri) ?? 0) + 1);
        cursor = page.nextCursor;
        assert.ok(++pages < 100, "pagination never ends");
      } while (cursor);
      assert.ok(seen.has(STATIC_DOC));
      const docCounts = new Set([...seen].filter(([u]) => u.startsWith("demo://resource/static/")).map(([, n]) => n));
      assert.equal(docCounts.size, 1);
      assert.ok([...docCounts][0] <= copiesMax);

      const doc = await c.readResource({ uri: STATIC_DOC });
      assert.match(doc.contents[0].text, /Everything Server/);
      const templates = (await c.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
      assert.ok(templates.includes(TEXT_TEMPLATE));
      const dyn = await c.readResource({ uri: "demo://resource/dynamic/text/5" });
      assert.match(dyn.contents[0].text, /^Resource 5: This is a plaintext resource/);
    });

    test("completion/complete for a prompt and a resource template", T, async () => {
      const c = conn.client;
      const r = await c.complete({
        ref: { type: "ref/prompt", name: ep.name("completable-prompt") },
        argument: { name: "name", value: "" },
        context: { arguments: { department: "Engineering" } },
      });
      assert.deepEqual(r.completion.values, ["Alice", "Bob", "Charlie"]);
      const t = await c.complete({ ref: { type: "ref/resource", uri: TEXT_TEMPLATE }, argument: { name: "resourceId", value: "9" } });
      assert.deepEqual(t.completion.values, ["9"]);
    });

    test("progress notifications arrive in order", T, async () => {
      const seen = [];
      const r = await conn.client.callTool(
        { name: ep.name("trigger-long-running-operation"), arguments: { duration: 1.2, steps: 4 } },
        undefined,
        { onprogress: (p) => seen.push([p.progress, p.total]) },
      );
      assert.deepEqual(texts(r), ["Long running operation completed. Duration: 1.2 seconds, Steps: 4."]);
      // SDK v1 quirk: notifications are dispatched a microtask later than responses, so a final
      // progress notification read in the same chunk as the result is dropped by the client
      // (seen over legacy SSE). Require the earlier ones, in order.
      const expected = [[1, 4], [2, 4], [3, 4], [4, 4]];
      assert.ok(seen.length >= 3, `progress: ${JSON.stringify(seen)}`);
      assert.deepEqual(seen, expected.slice(0, seen.length));
    });

    test("cancellation stops waiting and keeps the session", T, async () => {
      const ac = new AbortController();
      let first;
      const progressed = new Promise((r) => (first = r));
      const began = Date.now();
      const call = conn.client.callTool(
        { name: ep.name("trigger-long-running-operation"), arguments: { duration: 30, steps: 60 } },
        undefined,
        { onprogress: first, signal: ac.signal },
      );
      const settled = call.then(() => "resolved", () => "rejected");
      assert.equal(await Promise.race([progressed.then(() => "progress"), settled]), "progress");
      ac.abort("e2e cancels");
      assert.equal(await settled, "rejected");
      assert.ok(Date.now() - began < 15_000);
      assert.deepEqual(texts(await conn.client.callTool({ name: ep.name("echo"), arguments: { message: "after" } })), [
        "Echo: after",
      ]);
    });

    test("logging: setLevel and simulated log messages", T, async () => {
      const { client, inbox, close } = await connect(ep);
      const toggle = { name: ep.name("toggle-simulated-logging"), arguments: {} };
      try {
        await client.setLoggingLevel("debug");
        assert.match(texts(await client.callTool(toggle))[0], /^Started/);
        try {
          const logs = await waitFor(() => inbox.logs.filter((l) => /message/i.test(String(l.data))).length > 0 && inbox.logs, 8000, "log");
          assert.ok(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"].includes(logs[0].level));
        } finally {
          assert.match(texts(await client.callTool(toggle))[0], /^Stopped/);
        }
      } finally {
        await close();
      }
    });

    test("resources subscribe / unsubscribe", T, async () => {
      const { client, inbox, close } = await connect(ep);
      const toggle = { name: ep.name("toggle-subscriber-updates"), arguments: {} };
      try {
        await client.subscribeResource({ uri: STATIC_DOC });
        assert.match(texts(await client.callTool(toggle))[0], /^Started/);
        try {
          await waitFor(() => inbox.updates.some((u) => u.uri === STATIC_DOC), 8000, "resources/updated");
        } finally {
          await client.callTool(toggle);
        }
        await client.unsubscribeResource({ uri: STATIC_DOC });
        inbox.updates.length = 0;
        assert.match(texts(await client.callTool(toggle))[0], /^Started/);
        try {
          await sleep(1500);
          assert.deepEqual(inbox.updates, []);
        } finally {
          await client.callTool(toggle);
        }
      } finally {
        await close();
      }
    });

    test("sampling, elicitation and roots round trips", T, async () => {
      const asked = { sampling: 0, elicitation: 0 };
      const { client, close } = await connect(ep, {
        capabilities: FULL_CAPS,
        setup: (c) => {
          c.setRequestHandler(types.CreateMessageRequestSchema, async (req) => {
            asked.sampling++;
            assert.match(req.params.messages[0].content.text, /node sampling prompt/);
            return { role: "assistant", content: { type: "text", text: "node sampler answer" }, model: "node-e2e", stopReason: "endTurn" };
          });
          c.setRequestHandler(types.ElicitRequestSchema, async () => {
            asked.elicitation++;
            return { action: "accept", content: { name: "Grace Hopper" } };
          });
          c.setRequestHandler(types.ListRootsRequestSchema, async () => ({
            roots: [{ uri: "file:///tmp/node-e2e-root", name: "node-root" }],
          }));
        },
      });
      try {
        const s = await client.callTool({ name: ep.name("trigger-sampling-request"), arguments: { prompt: "node sampling prompt" } });
        assert.match(texts(s)[0], /node sampler answer/);
        const e = await client.callTool({ name: ep.name("trigger-elicitation-request"), arguments: {} });
        assert.match(texts(e).join("\n"), /- Name: Grace Hopper/);
        const r = await client.callTool({ name: ep.name("get-roots-list"), arguments: {} });
        assert.match(texts(r)[0], /file:\/\/\/tmp\/node-e2e-root/);
        assert.deepEqual(asked, { sampling: 1, elicitation: 1 });
      } finally {
        await close();
      }
    });
  });
}
