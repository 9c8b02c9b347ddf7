// TC-09: the end user's page. Each step is a button, so the harness drives it like a person would; every
// outcome lands in the DOM (status elements with data-state, the reply's chunks as spans, `complete` as JSON).
import { byId, createSession, followReply, services, setState, streamURL, wireSignIn } from "./common.js";

let token = null;
let sessionId = null;
let source = null;

byId("origin").textContent = location.origin;

wireSignIn((value) => {
  token = value;
});

byId("create").addEventListener("click", async () => {
  setState("session-state", "working", "creating…");
  try {
    sessionId = await createSession(token, byId("title").value);
    byId("session-id").textContent = sessionId;
    setState("session-state", "created", "created");
  } catch (error) {
    setState("session-state", "failed", `${error.name}: ${error.message}`);
  }
});

byId("send").addEventListener("click", () => {
  if (source) source.close();
  const reply = byId("reply");
  reply.replaceChildren();
  byId("complete").textContent = "";
  byId("chunk-count").textContent = "0";
  byId("reconnects").textContent = "0";
  setState("stream-state", "streaming", "streaming…");
  source = followReply(streamURL(services.api, sessionId, byId("message").value, token), {
    onModel(data) {
      byId("model").textContent = data.modelId;
    },
    onReset() {
      reply.replaceChildren();
      byId("chunk-count").textContent = "0";
    },
    onChunk(data) {
      const span = document.createElement("span");
      span.dataset.index = String(data.index);
      span.textContent = data.content;
      reply.append(span);
      byId("chunk-count").textContent = String(reply.childElementCount);
    },
    onComplete(data) {
      byId("complete").textContent = JSON.stringify(data, null, 2);
      setState("stream-state", "complete", `complete: ${data.outputTokens} tokens, ${data.creditsCharged} credits`);
    },
    onReconnect() {
      const count = byId("reconnects");
      count.textContent = String(Number(count.textContent) + 1);
    },
    onFailure(reason) {
      setState("stream-state", "error", reason);
    },
  });
});
