// How a message looks: one element per message with data-role (user/assistant) and data-state
// (streaming/complete/error), its text as text nodes, and a foot line (tokens, credits, time).

import { el, shortTime } from "./dom.js";
import { modelName } from "./models.js";

/**
 * A message element: `.message[data-role][data-state]` holding `.message-meta` (who), `.message-text`
 * (the text, as a text node) and, when `foot` is given, `.message-foot`.
 */
export function messageElement({ role, content, state, modelId, foot }) {
  const who = role === "user" ? "You" : `Assistant${modelId ? ` · ${modelName(modelId)}` : ""}`;
  return el(
    "div",
    { className: "message", "data-role": role, "data-state": state, "data-testid": "message" },
    el("p", { className: "message-meta" }, who),
    el("p", { className: "message-text", "data-testid": "message-text" }, content),
    foot ? el("p", { className: "message-foot" }, foot) : null,
  );
}

/** The element of a stored message (the API's Message: role, content, status, tokens, createdAt). */
export function storedMessage(message) {
  const state = message.status === "failed" ? "error" : "complete";
  const parts = [];
  if (message.role === "assistant") {
    if (message.status === "cancelled") parts.push("Stopped (cancelled)");
    if (message.status === "failed") parts.push("Cut short by an error");
    if (typeof message.outputTokens === "number") parts.push(`${message.outputTokens} tokens`);
  }
  parts.push(shortTime(message.createdAt));
  const node = messageElement({
    role: message.role,
    content: message.content,
    state,
    modelId: message.role === "assistant" ? message.modelId : undefined,
    foot: parts.filter(Boolean).join(" · "),
  });
  node.dataset.messageId = message.messageId;
  node.dataset.jobId = message.jobId;
  return node;
}

/** The foot line of a finished reply from its `complete` data: stop reason, tokens, credits, time. */
export function replyFoot(info) {
  const parts = [];
  if (info.stopReason === "cancelled") parts.push("Stopped (cancelled)");
  else if (info.stopReason === "max_tokens") parts.push("Cut at the length limit");
  if (typeof info.outputTokens === "number") parts.push(`${info.outputTokens} tokens`);
  if (typeof info.creditsCharged === "number") parts.push(`${info.creditsCharged} credit${info.creditsCharged === 1 ? "" : "s"}`);
  if (typeof info.latencyMs === "number") parts.push(`${(info.latencyMs / 1000).toFixed(1)} s`);
  return parts.join(" · ");
}

/** The note shown in a session without messages. */
export function emptyNote() {
  return el("p", { className: "message-empty" }, "No messages yet: write the first one below.");
}
