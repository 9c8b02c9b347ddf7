// The caller's sessions: list (GET /api/chat/sessions, a page at a time), create (POST, title + model)
// and delete (DELETE /api/chat/sessions/{id}). The API has no route to rename a session, so there is
// no rename. Opening one is conversation.js's job: this module calls `onOpen(sessionId)`.

import { json } from "./api.js";
import { apiURL } from "./config.js";
import { el, shortTime } from "./dom.js";
import { showError, showNotice } from "./errors.js";
import { modelName, selectedModel } from "./models.js";

const PAGE_SIZE = 30;
let hooks = { onOpen: () => {}, onDeleted: () => {} };
let loadedPages = 0;
let totalPages = 0;
let currentId = null;
let listGeneration = 0;

/** Binds the list and the create form. `onOpen(id)` opens a session; `onDeleted(id)` follows a delete. */
export function initSessions(callbacks) {
  hooks = { ...hooks, ...callbacks };
  document.getElementById("new-session-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await createFromForm();
  });
  document.getElementById("sessions-refresh").addEventListener("click", () => loadSessions());
  document.getElementById("sessions-more").addEventListener("click", () => loadSessions({ more: true }));
}

/** Reloads the first page of sessions (or, with `more`, appends the next page). Never rejects. */
export async function loadSessions({ more = false } = {}) {
  const generation = more ? listGeneration : ++listGeneration;
  const page = more ? loadedPages + 1 : 1;
  let answer;
  try {
    answer = await json(apiURL(`/api/chat/sessions?page=${page}&limit=${PAGE_SIZE}`));
  } catch (error) {
    showError(error, "Loading your sessions");
    return;
  }
  if (generation !== listGeneration) return; // a newer reload started meanwhile
  const list = document.getElementById("session-list");
  const items = (answer?.sessions ?? []).map(itemFor);
  if (more) list.append(...items);
  else list.replaceChildren(...items);
  loadedPages = page;
  totalPages = answer?.pagination?.pages ?? page;
  document.getElementById("sessions-more").hidden = loadedPages >= totalPages;
  document.getElementById("session-empty").hidden = list.children.length > 0;
  markCurrent(currentId);
}

/** Creates a session; resolves with it (the API's Session object), or null after showing the error. */
export async function createSession(title, modelId) {
  try {
    const body = { title };
    if (modelId) body.modelId = modelId;
    return await json(apiURL("/api/chat/sessions"), { method: "POST", body });
  } catch (error) {
    showError(error, "Creating the session");
    return null;
  }
}

/** Highlights the open session in the list (aria-current), or none with null. */
export function markCurrent(id) {
  currentId = id;
  for (const button of document.querySelectorAll("#session-list .session-open")) {
    if (button.closest("li").dataset.sessionId === id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

/** Empties the list (after a sign-out). */
export function clearSessions() {
  listGeneration++;
  currentId = null;
  loadedPages = 0;
  document.getElementById("session-list").replaceChildren();
  document.getElementById("sessions-more").hidden = true;
  document.getElementById("session-empty").hidden = true;
}

async function createFromForm() {
  const input = document.getElementById("new-session-title");
  const button = document.getElementById("create-session-button");
  const title = input.value.trim();
  if (!title) {
    showNotice("Give the new session a title.");
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    const session = await createSession(title, selectedModel());
    if (!session) return;
    input.value = "";
    showNotice(`Session “${session.title}” created.`);
    await loadSessions();
    hooks.onOpen(session.sessionId);
  } finally {
    button.disabled = false;
  }
}

function itemFor(session) {
  const open = el(
    "button",
    { type: "button", className: "session-open" },
    el("span", { className: "session-title" }, session.title),
    el(
      "span",
      { className: "session-meta" },
      `${modelName(session.modelId)} · ${session.messageCount} message${session.messageCount === 1 ? "" : "s"} · ${shortTime(session.updatedAt)}`,
    ),
  );
  open.addEventListener("click", () => hooks.onOpen(session.sessionId));
  const remove = el(
    "button",
    { type: "button", className: "secondary small session-delete", "aria-label": `Delete session “${session.title}”` },
    "Delete",
  );
  remove.addEventListener("click", () => deleteSession(session, remove));
  return el("li", { className: "session-item", "data-session-id": session.sessionId, "data-testid": "session-item" }, open, remove);
}

async function deleteSession(session, button) {
  if (!window.confirm(`Delete the session “${session.title}” and all its messages?`)) return;
  button.disabled = true;
  try {
    await json(apiURL(`/api/chat/sessions/${encodeURIComponent(session.sessionId)}`), { method: "DELETE" });
    showNotice(`Session “${session.title}” deleted.`);
    hooks.onDeleted(session.sessionId);
    await loadSessions();
    document.getElementById("sessions-heading").focus(); // the deleted item had the focus
  } catch (error) {
    showError(error, "Deleting the session");
    button.disabled = false;
  }
}
