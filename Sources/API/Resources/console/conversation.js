// The open session: its messages (GET /api/chat/sessions/{id}; "load older" through
// .../messages?before=), the composer that sends a message (POST .../stream; reply.js shows the reply),
// and the Cancel button (POST .../cancel) while a reply runs.

import { json, send } from "./api.js";
import { refreshBalance } from "./balance.js";
import { apiURL } from "./config.js";
import { quietly, shortTime } from "./dom.js";
import { showError, showNotice } from "./errors.js";
import { emptyNote, messageElement, storedMessage } from "./messages.js";
import { modelName, selectModel, selectedModel } from "./models.js";
import { activeReply, dropAllReplies, dropReply, onReplies, pickUpReply, streamReply } from "./reply.js";
import { loadSessions, markCurrent } from "./sessions.js";

const OPEN_KEY = "console.openSession";
const OLDER_PAGE = 50;

let current = null; // {sessionId, olderCursor}
let stickToBottom = true; // the log follows a growing reply unless the user scrolled up

/** Binds the composer, the cancel button and "load older"; call once at start. */
export function initConversation() {
  const form = document.getElementById("composer");
  const input = document.getElementById("message-input");
  const messages = document.getElementById("messages");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  messages.addEventListener("scroll", () => {
    stickToBottom = messages.scrollTop + messages.clientHeight >= messages.scrollHeight - 48;
  });
  document.getElementById("cancel-button").addEventListener("click", cancelReply);
  document.getElementById("load-older").addEventListener("click", loadOlder);
  onReplies({
    status: (run, text) => {
      if (run.sessionId === current?.sessionId) document.getElementById("stream-status").textContent = text;
    },
    grew: (run) => {
      if (run.sessionId === current?.sessionId && stickToBottom) messages.scrollTop = messages.scrollHeight;
    },
    changed: () => updateComposer(),
    finished: (run) => {
      updateComposer();
      refreshBalance();
      loadSessions();
      if (run.reopen && run.sessionId === current?.sessionId) openSession(run.sessionId);
    },
  });
}

/**
 * Opens a session: shows its messages (and a reply of ours still streaming in it), selects its model and
 * remembers it for a reload. `focus` moves the keyboard focus to the message box. Never rejects.
 */
export async function openSession(sessionId, { focus = false } = {}) {
  current = { sessionId, olderCursor: null };
  markCurrent(sessionId);
  sessionStorage.setItem(OPEN_KEY, sessionId);
  const title = document.getElementById("conversation-title");
  const messages = document.getElementById("messages");
  messages.dataset.sessionId = sessionId;
  title.textContent = "Loading…";
  document.getElementById("stream-status").textContent = "";
  updateComposer();
  let session;
  try {
    session = await json(apiURL(`/api/chat/sessions/${encodeURIComponent(sessionId)}`));
  } catch (error) {
    if (current?.sessionId !== sessionId) return;
    showError(error, "Opening the session");
    closeSession();
    if (error.status === 404) loadSessions();
    return;
  }
  if (current?.sessionId !== sessionId) return; // another session was opened meanwhile
  title.textContent = session.title;
  document.getElementById("conversation-meta").textContent =
    `${modelName(session.modelId)} · created ${shortTime(session.createdAt)}`;
  selectModel(session.modelId);
  quietly(messages, () => {
    messages.replaceChildren(...session.messages.map(storedMessage));
    const run = activeReply(sessionId) ?? pickUpReply(sessionId, session.messages);
    if (run) messages.append(run.element);
    if (messages.children.length === 0) messages.append(emptyNote());
  });
  messages.scrollTop = messages.scrollHeight;
  stickToBottom = true;
  current.olderCursor = session.olderMessagesCursor ?? null;
  document.getElementById("load-older").hidden = !current.olderCursor;
  updateComposer();
  if (focus) document.getElementById("message-input").focus();
}

/** The session id to reopen after a reload (this tab's last open session), or null. */
export function rememberedSession() {
  return sessionStorage.getItem(OPEN_KEY);
}

/** Closes the open session view (after a delete, a 404 or a sign-out). */
export function closeSession() {
  current = null;
  sessionStorage.removeItem(OPEN_KEY);
  markCurrent(null);
  document.getElementById("conversation-title").textContent = "No session open";
  document.getElementById("conversation-meta").textContent = "";
  const messages = document.getElementById("messages");
  delete messages.dataset.sessionId;
  messages.replaceChildren();
  document.getElementById("load-older").hidden = true;
  document.getElementById("stream-status").textContent = "";
  updateComposer();
}

/** Forgets a deleted session: stops reading its reply and closes it when it is open. */
export function sessionDeleted(sessionId) {
  dropReply(sessionId);
  if (current?.sessionId === sessionId) closeSession();
}

/** Stops reading every reply and closes the session (sign-out). The replies go on on the server. */
export function resetConversation() {
  dropAllReplies();
  closeSession();
}

async function sendMessage() {
  if (!current) return;
  const input = document.getElementById("message-input");
  const text = input.value.trim();
  if (!text) {
    showNotice("Type a message first.");
    input.focus();
    return;
  }
  const sessionId = current.sessionId;
  const controller = new AbortController();
  document.getElementById("send-button").disabled = true;
  let response;
  try {
    const body = { message: text };
    const modelId = selectedModel();
    if (modelId) body.modelId = modelId;
    // A reply already running here is refused by the server (409) and explained: the button stays usable.
    response = await send(apiURL(`/api/chat/sessions/${encodeURIComponent(sessionId)}/stream`), {
      method: "POST",
      body,
      headers: { Accept: "text/event-stream" },
      signal: controller.signal,
    });
  } catch (error) {
    showError(error, "Sending the message");
    return;
  } finally {
    updateComposer();
  }
  const run = streamReply(sessionId, response, controller);
  if (current?.sessionId !== sessionId) return; // it shows when its session is opened again
  input.value = "";
  const messages = document.getElementById("messages");
  messages.querySelector(".message-empty")?.remove();
  messages.append(messageElement({ role: "user", content: text, state: "complete" }), run.element);
  messages.scrollTop = messages.scrollHeight;
  stickToBottom = true;
  document.getElementById("stream-status").textContent = "Generating a reply…";
}

async function cancelReply() {
  if (!current) return;
  const run = activeReply(current.sessionId);
  if (run) run.cancelRequested = true;
  updateComposer();
  try {
    const notice = await json(apiURL(`/api/chat/sessions/${encodeURIComponent(current.sessionId)}/cancel`), { method: "POST" });
    showNotice(notice?.message ?? "Cancellation requested.");
  } catch (error) {
    if (run) run.cancelRequested = false;
    updateComposer();
    showError(error, "Cancelling the reply");
  }
}

async function loadOlder() {
  if (!current?.olderCursor) return;
  const { sessionId, olderCursor } = current;
  const button = document.getElementById("load-older");
  button.disabled = true;
  try {
    const page = await json(
      apiURL(`/api/chat/sessions/${encodeURIComponent(sessionId)}/messages?limit=${OLDER_PAGE}&before=${encodeURIComponent(olderCursor)}`),
    );
    if (current?.sessionId !== sessionId) return;
    const messages = document.getElementById("messages");
    const fromBottom = messages.scrollHeight - messages.scrollTop;
    quietly(messages, () => messages.prepend(...(page?.messages ?? []).map(storedMessage)));
    messages.scrollTop = messages.scrollHeight - fromBottom;
    current.olderCursor = page?.nextCursor ?? null;
    button.hidden = !current.olderCursor;
    if (button.hidden) messages.focus(); // the button had the focus
    showNotice(`${page?.messages?.length ?? 0} older messages loaded.`);
  } catch (error) {
    showError(error, "Loading older messages");
  } finally {
    button.disabled = false;
  }
}

function updateComposer() {
  const open = Boolean(current);
  const run = open ? activeReply(current.sessionId) : undefined;
  document.getElementById("app-view").classList.toggle("has-session", open);
  document.getElementById("message-input").disabled = !open;
  document.getElementById("send-button").disabled = !open;
  document.getElementById("cancel-button").disabled = !run || run.cancelRequested;
  document.getElementById("composer").dataset.running = run ? "true" : "false";
}
