// TC-12: the supervisor's page. It observes a session over a WebSocket; every message must be one JSON
// object {"id", "event", "data"}, the first an `observer`. What arrives lands in the DOM: the greeting, the
// reply's chunks as spans, an event log, `complete`/`error` as JSON, the socket's state and close code, and
// any breach of the protocol.
import { byId, logLine, services, setState, wireSignIn } from "./common.js";

const EVENTS = new Set(["observer", "model", "chunk", "complete", "error", "reset"]);
let token = null;
let socket = null;

byId("origin").textContent = location.origin;

// The harness may hand the page a token of its own making (a short-lived one, to see the socket end with it).
window.observerPage = {
  useToken(value) {
    token = value;
    setState("signin-state", "signed-in", "token given by the harness");
  },
};

wireSignIn((value) => {
  token = value;
});

function violation(text) {
  const protocol = byId("protocol");
  const earlier = protocol.dataset.state === "violated" ? `${protocol.textContent}; ` : "";
  setState("protocol", "violated", `${earlier}${text}`);
}

byId("stop").addEventListener("click", () => {
  if (socket) socket.close(1000, "page stopped");
});

byId("observe").addEventListener("click", () => {
  if (socket) socket.close(1000, "observing again");
  const reply = byId("reply");
  reply.replaceChildren();
  byId("events").replaceChildren();
  for (const id of ["observer", "complete", "error", "close-code"]) byId(id).textContent = "";
  byId("chunk-count").textContent = "0";
  setState("protocol", "ok", "ok");
  setState("observe-state", "waiting", "waiting for observer");

  const wsBase = services.api.replace(/^http/, "ws");
  const params = new URLSearchParams({ access_token: token });
  const after = byId("last-event-id").value.trim();
  if (after) params.set("lastEventId", after);
  const url = `${wsBase}/api/chat/sessions/${encodeURIComponent(byId("session-id").value.trim())}/observe?${params}`;
  setState("ws-state", "connecting", "connecting");
  const ws = new WebSocket(url);
  socket = ws;
  let count = 0;
  let expected = null;

  // A socket replaced by a newer one (Observe again) may still report its close: only the current one is shown.
  ws.addEventListener("open", () => {
    if (ws === socket) setState("ws-state", "open", "open");
  });
  ws.addEventListener("close", (event) => {
    if (ws !== socket) return;
    byId("close-code").textContent = String(event.code);
    setState("ws-state", event.code === 1000 || event.code === 1001 ? "closed" : "closed-abnormally", `closed ${event.code} ${event.reason}`);
    if (byId("observe-state").dataset.state === "waiting") setState("observe-state", "failed", `closed ${event.code} before any message`);
  });
  ws.addEventListener("message", (event) => {
    if (ws !== socket) return;
    count += 1;
    if (typeof event.data !== "string") {
      violation(`message ${count} is binary`);
      return;
    }
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      violation(`message ${count} is not JSON: ${event.data.slice(0, 80)}`);
      return;
    }
    const keys = message && typeof message === "object" ? Object.keys(message).sort().join(",") : "";
    if (keys !== "data,event,id") violation(`message ${count} has keys [${keys}]`);
    if (!EVENTS.has(message.event)) violation(`message ${count} has event ${JSON.stringify(message.event)}`);
    if (message.id !== null && typeof message.id !== "string") violation(`message ${count} has id ${JSON.stringify(message.id)}`);
    if (!message.data || typeof message.data !== "object") violation(`message ${count} has data ${JSON.stringify(message.data)}`);
    if (count === 1 && message.event !== "observer") violation(`the first message is ${message.event}, not observer`);

    const item = document.createElement("li");
    item.dataset.id = message.id ?? "";
    item.dataset.event = message.event;
    if (message.event === "chunk") item.dataset.index = String(message.data.index);
    item.textContent = `${message.event} ${message.id ?? "-"}${message.event === "chunk" ? ` #${message.data.index}` : ""}`;
    byId("events").append(item);

    const data = message.data || {};
    switch (message.event) {
      case "observer":
        byId("observer").textContent = JSON.stringify(data, null, 2);
        setState("observe-state", "observing", `observing ${data.sessionId} of ${data.ownerId}`);
        break;
      case "model":
        expected = 0;
        break;
      case "reset":
        expected = 0;
        reply.replaceChildren();
        break;
      case "chunk": {
        // A resumed observer starts in the middle of a reply: the first chunk it sees sets the order.
        if (expected === null) expected = data.index;
        if (data.index !== expected) violation(`chunk ${data.index} arrived where chunk ${expected} was due`);
        expected = data.index + 1;
        const span = document.createElement("span");
        span.dataset.index = String(data.index);
        span.dataset.id = message.id ?? "";
        span.textContent = data.content;
        reply.append(span);
        byId("chunk-count").textContent = String(reply.childElementCount);
        break;
      }
      case "complete":
        byId("complete").textContent = JSON.stringify(data, null, 2);
        setState("observe-state", "complete", `complete: ${data.outputTokens} tokens`);
        break;
      case "error":
        byId("error").textContent = JSON.stringify(data, null, 2);
        setState("observe-state", "error", `error ${data.code}`);
        break;
      default:
        break;
    }
  });
});
