// A second, independent A2A client: the JavaScript SDK discovers an agent's card, sends a
// message and streams one, then prints what it saw as JSON. Usage: node a2a_client.mjs URL [BINDING]
import { Role } from "@a2a-js/sdk";
import {
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
  RestTransportFactory,
} from "@a2a-js/sdk/client";

const [url, binding] = process.argv.slice(2);
const token = process.env.A2A_TOKEN;

function authFetch(input, init = {}) {
  const headers = new Headers(init.headers);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

function message(text, extra = {}) {
  return {
    messageId: crypto.randomUUID(),
    role: Role.ROLE_USER,
    parts: [{ content: { $case: "text", value: text } }],
    contextId: "",
    taskId: "",
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
    ...extra,
  };
}

const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [
      new JsonRpcTransportFactory({ fetchImpl: authFetch }),
      new RestTransportFactory({ fetchImpl: authFetch }),
    ],
    preferredTransports: binding ? [binding] : undefined,
    cardResolver: new DefaultAgentCardResolver({ fetchImpl: authFetch }),
  }),
);

const client = await factory.createFromUrl(url);
const card = await client.getAgentCard();
const sent = await client.sendMessage({
  tenant: "",
  message: message("hello from javascript"),
  configuration: undefined,
  metadata: undefined,
});
const text = (task) =>
  (task.artifacts ?? []).flatMap((a) => a.parts).map((p) => p.content?.value ?? "").join("");
const streamed = [];
for await (const event of client.sendMessageStream({
  tenant: "",
  message: message("streamed to javascript", { contextId: sent.contextId }),
  configuration: undefined,
  metadata: undefined,
})) {
  const payload = event.payload;
  streamed.push({
    kind: payload.$case,
    state: payload.value.status?.state ?? null,
    text: payload.$case === "artifactUpdate"
      ? payload.value.artifact.parts.map((p) => p.content?.value ?? "").join("")
      : null,
    contextId: payload.value.contextId,
  });
}
console.log(
  JSON.stringify({
    card: { name: card.name, interfaces: card.supportedInterfaces.map((i) => i.protocolBinding) },
    sent: { state: sent.status?.state ?? null, text: text(sent), contextId: sent.contextId },
    streamed,
  }),
);
