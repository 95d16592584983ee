// The official MCP TypeScript SDK client against the bridge, driven by tests/mcp/test_typescript.py.
// Usage: node ts_client.mjs '<json config>'; prints one JSON report on stdout.
// Config: {transport: "stdio"|"http", command, args, env (stdio), urls: [first, second] (http)}.
// Scenario: list; call every tool kind (the SDK validates each structured result against the
// tool's outputSchema); continue a thread from a second server process with its handle;
// progress; abort a slow call with an AbortController; 20 concurrent calls.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const sdk = process.env.MCP_SDK_DIR;
const { Client } = require(`${sdk}/dist/cjs/client/index.js`);
const { StdioClientTransport } = require(`${sdk}/dist/cjs/client/stdio.js`);
const { StreamableHTTPClientTransport } = require(`${sdk}/dist/cjs/client/streamableHttp.js`);

const config = JSON.parse(process.argv[2]);

async function connect(index) {
  const client = new Client({ name: "bridge-interop", version: "1.0.0" });
  const transport =
    config.transport === "stdio"
      ? new StdioClientTransport({
          command: config.command,
          args: config.args,
          env: config.env,
          stderr: "ignore",
        })
      : new StreamableHTTPClientTransport(new URL(config.urls[index]));
  // Sends (a cancellation among them) are not awaited by the SDK: wait for them before closing.
  const pending = [];
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const sent = send(message, options);
    pending.push(sent);
    return sent;
  };
  client.settle = () => Promise.allSettled(pending);
  await client.connect(transport);
  await client.listTools(); // the SDK validates results only for tools it has listed
  return client;
}

function structured(result, what) {
  if (result.isError || !result.structuredContent) {
    throw new Error(`${what}: ${JSON.stringify(result).slice(0, 500)}`);
  }
  return result.structuredContent;
}

async function main() {
  const report = {};
  const client = await connect(0);
  const tools = (await client.listTools()).tools;
  report.tools = tools.map((tool) => tool.name);
  report.withOutputSchema = tools.filter((tool) => tool.outputSchema).length;

  const progress = [];
  const first = structured(
    await client.callTool(
      { name: "researcher", arguments: { message: "bees" } },
      undefined,
      { onprogress: (p) => progress.push(p.message ?? "") },
    ),
    "researcher",
  );
  report.progress = progress;
  report.first = first;

  const started = structured(
    await client.callTool({ name: "start_run", arguments: { agent: "echo", message: "later" } }),
    "start_run",
  );
  report.run = structured(
    await client.callTool({ name: "get_run", arguments: { run: started.run, wait: 10 } }),
    "get_run",
  );

  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      client.callTool({ name: "echo", arguments: { message: `concurrent ${i}` } }),
    ),
  );
  report.concurrent = results.map((result) => structured(result, "echo").answer);

  const controller = new AbortController();
  let aborted = "";
  await client
    .callTool({ name: "slow", arguments: { message: "abort me" } }, undefined, {
      signal: controller.signal,
      onprogress: () => controller.abort("the user gave up"),
    })
    .then(
      () => (aborted = "completed"),
      (error) => (aborted = String(error)),
    );
  report.aborted = aborted;
  await client.settle();
  await client.close();

  const second = await connect(1);
  report.continued = structured(
    await second.callTool({
      name: "researcher",
      arguments: { message: "more bees", conversation: first.conversation },
    }),
    "continued",
  );
  await second.settle();
  await second.close();
  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
