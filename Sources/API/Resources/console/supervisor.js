// The supervisor's view (supervisors and admins): the sessions generating now (GET
// /api/chat/sessions/active, polled every few seconds and on demand) and one session followed live
// (GET /api/chat/sessions/{id}/observe, SSE read from fetch): every job's reply grows in #follow-output.

import { ApiError, json, send } from "./api.js";
import { apiURL } from "./config.js";
import { delay, el, shortTime } from "./dom.js";
import { clearError, showError } from "./errors.js";
import { modelName } from "./models.js";
import { readEventStream } from "./sse.js";

const POLL_MS = 4000;
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
const MAX_JOBS_SHOWN = 50;

let pollTimer = null;
let lastPollError = "";
let followed = null; // {session, controller, jobs: Map<jobId, job>, currentJob}

/** Binds the refresh and stop buttons; call once at start. */
export function initSupervisor() {
  document.getElementById("active-refresh").addEventListener("click", () => refreshActive({ manual: true }));
  document.getElementById("unfollow-button").addEventListener("click", () => unfollow());
}

/** Shows the pane and starts polling the active sessions. */
export function startSupervisor() {
  document.getElementById("supervisor-pane").hidden = false;
  refreshActive({ manual: false });
  if (pollTimer === null) pollTimer = setInterval(() => refreshActive({ manual: false }), POLL_MS);
}

/** Hides the pane, stops polling and stops following (sign-out, or a role without the view). */
export function stopSupervisor() {
  if (pollTimer !== null) clearInterval(pollTimer);
  pollTimer = null;
  unfollow();
  document.getElementById("active-list").replaceChildren();
  document.getElementById("active-empty").hidden = true;
  document.getElementById("active-updated").textContent = "";
  document.getElementById("supervisor-pane").hidden = true;
}

async function refreshActive({ manual }) {
  if (document.getElementById("supervisor-pane").hidden) return;
  let answer;
  try {
    answer = await json(apiURL("/api/chat/sessions/active"));
  } catch (error) {
    if (error.name === "AbortError") return;
    const key = `${error.status}:${error.code}`;
    // Polling repeats itself: the same failure is shown once, not every few seconds.
    if (manual || key !== lastPollError) showError(error, "Listing the sessions generating now");
    lastPollError = key;
    return;
  }
  if (lastPollError) {
    lastPollError = "";
    if (document.getElementById("error-region").textContent.includes("Listing the sessions generating now")) clearError();
  }
  renderActive(answer?.sessions ?? []);
  document.getElementById("active-updated").textContent =
    `${answer?.count ?? 0} generating · updated ${new Date().toLocaleTimeString()}`;
}

function renderActive(sessions) {
  const list = document.getElementById("active-list");
  // Keep the keyboard focus on the same session across a refresh.
  const focusedId = list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.sessionId : null;
  list.replaceChildren(...sessions.map(activeItem));
  document.getElementById("active-empty").hidden = sessions.length > 0;
  if (focusedId) list.querySelector(`li[data-session-id="${CSS.escape(focusedId)}"] button`)?.focus();
}

function activeItem(session) {
  const isFollowed = followed?.session.sessionId === session.sessionId;
  const button = el(
    "button",
    { type: "button", className: "session-open", "aria-pressed": isFollowed ? "true" : "false" },
    el("span", { className: "session-title" }, session.title),
    el("span", { className: "session-meta" }, `${session.userId} · ${modelName(session.modelId)} · since ${shortTime(session.updatedAt)}`),
  );
  button.addEventListener("click", () => follow(session));
  return el("li", { className: "session-item", "data-session-id": session.sessionId, "data-testid": "active-item" }, button);
}

/** Follows `session` live, replacing any session followed before. */
function follow(session) {
  unfollow();
  const controller = new AbortController();
  followed = { session, controller, jobs: new Map(), currentJob: null };
  const output = document.getElementById("follow-output");
  output.replaceChildren();
  output.dataset.sessionId = session.sessionId;
  document.getElementById("follow-heading").textContent = `Following: ${session.title}`;
  document.getElementById("follow-meta").textContent = "Connecting…";
  document.getElementById("unfollow-button").disabled = false;
  for (const button of document.querySelectorAll("#active-list .session-open")) {
    button.setAttribute("aria-pressed", button.closest("li").dataset.sessionId === session.sessionId ? "true" : "false");
  }
  runFollow(followed);
}

function unfollow() {
  if (!followed) return;
  followed.controller.abort();
  followed = null;
  document.getElementById("follow-heading").textContent = "Following: nobody";
  document.getElementById("follow-meta").textContent = "";
  document.getElementById("unfollow-button").disabled = true;
  delete document.getElementById("follow-output").dataset.sessionId;
  for (const button of document.querySelectorAll("#active-list .session-open")) button.setAttribute("aria-pressed", "false");
}

// Reads the observer stream; reconnects (a few tries, backing off) when it drops or the server ends it.
async function runFollow(f) {
  const url = apiURL(`/api/chat/sessions/${encodeURIComponent(f.session.sessionId)}/observe`);
  const signal = f.controller.signal;
  let tries = 0;
  for (;;) {
    try {
      const response = await send(url, { headers: { Accept: "text/event-stream" }, signal });
      await readEventStream(response, (event) => {
        tries = 0;
        handleObserved(f, event);
      });
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && !error.network && error.status !== 429 && error.status < 500) {
        setMeta(f, "Not following: the server refused.");
        showError(error, "Following the session");
        return;
      }
    }
    if (signal.aborted) return;
    f.currentJob = null;
    if (tries >= RECONNECT_DELAYS_MS.length) {
      setMeta(f, "The live view was lost.");
      showError(new ApiError({ network: true }), "Following the session");
      return;
    }
    const wait = RECONNECT_DELAYS_MS[tries];
    tries += 1;
    setMeta(f, `${f.relayError ?? "Connection lost"}; reconnecting in ${(wait / 1000).toFixed(1)} s (try ${tries} of ${RECONNECT_DELAYS_MS.length})…`);
    f.relayError = null;
    try {
      await delay(wait, signal);
    } catch {
      return;
    }
  }
}

function handleObserved(f, event) {
  if (f !== followed) return;
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;
  }
  switch (event.event) {
    case "observer":
      setMeta(f, `Owner ${data.ownerId} · you observe as ${data.observerId} (${data.observerRole})` +
        (data.activeJobId ? " · a reply is being generated" : " · waiting for the next reply"));
      // After a reconnect: the job running now is replayed from its start; the others ended unseen.
      for (const job of f.jobs.values()) {
        if (!job.finished && job.id !== data.activeJobId) finishJob(job, "error", "The live view was interrupted; the end of this reply was missed.");
      }
      break;
    case "model": {
      const job = jobFor(f, data.jobId);
      job.meta.textContent = `Reply · ${modelName(data.modelId)} · job ${String(data.jobId).slice(0, 8)}${data.attempt > 1 ? ` · attempt ${data.attempt}` : ""}`;
      f.currentJob = job;
      break;
    }
    case "reset": {
      const job = jobFor(f, data.jobId);
      job.text.replaceChildren();
      job.nextIndex = 0;
      f.currentJob = job;
      break;
    }
    case "chunk": {
      const job = f.currentJob;
      if (!job || job.finished) return;
      if (typeof data.index === "number" && data.index < job.nextIndex) return; // replayed after a reconnect
      job.text.append(document.createTextNode(String(data.content ?? "")));
      job.nextIndex = typeof data.index === "number" ? data.index + 1 : job.nextIndex + 1;
      scrollOutput();
      break;
    }
    case "complete": {
      const job = jobFor(f, data.jobId);
      if (typeof data.content === "string" && data.content !== job.text.textContent) job.text.textContent = data.content;
      const parts = [data.stopReason === "cancelled" ? "Cancelled" : "Completed"];
      if (typeof data.outputTokens === "number") parts.push(`${data.outputTokens} tokens`);
      if (typeof data.creditsCharged === "number") parts.push(`${data.creditsCharged} credit${data.creditsCharged === 1 ? "" : "s"}`);
      finishJob(job, "complete", parts.join(" · "));
      break;
    }
    case "error":
      if (data.jobId) {
        finishJob(jobFor(f, data.jobId), "error", `Failed: ${data.message ?? data.code}`);
      } else {
        // The relay's own errors (TOKEN_EXPIRED, CLIENT_TOO_SLOW, STREAM_ENDED): the stream ends; reconnect.
        f.relayError = `${data.message ?? data.code}`;
        setMeta(f, `${f.relayError}; reconnecting…`);
      }
      break;
    default:
      break;
  }
}

function jobFor(f, jobId) {
  const id = String(jobId ?? "");
  let job = f.jobs.get(id);
  if (job) return job;
  const meta = el("p", { className: "message-meta" }, `Reply · job ${id.slice(0, 8)}`);
  const text = el("p", { className: "message-text", "data-testid": "follow-text" });
  const element = el(
    "div",
    { className: "message", "data-role": "assistant", "data-state": "streaming", "data-job-id": id, "data-testid": "follow-job", "aria-busy": "true" },
    meta,
    text,
  );
  job = { id, element, meta, text, nextIndex: 0, finished: false };
  f.jobs.set(id, job);
  const output = document.getElementById("follow-output");
  output.append(element);
  while (output.children.length > MAX_JOBS_SHOWN) {
    const oldest = output.firstElementChild;
    f.jobs.delete(oldest.dataset.jobId);
    oldest.remove();
  }
  scrollOutput();
  return job;
}

function finishJob(job, state, foot) {
  if (job.finished) return;
  job.finished = true;
  job.element.dataset.state = state;
  job.element.removeAttribute("aria-busy");
  job.element.append(el("p", { className: "message-foot" }, foot));
}

function setMeta(f, text) {
  if (f === followed) document.getElementById("follow-meta").textContent = text;
}

function scrollOutput() {
  const output = document.getElementById("follow-output");
  output.scrollTop = output.scrollHeight;
}
