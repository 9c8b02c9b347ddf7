// A reply being streamed (POST /api/chat/sessions/{id}/stream, SSE read from fetch) into its own
// assistant element: model, chunk, reset, complete and error events; after a drop it resumes with the
// last event id (POST .../stream with Last-Event-ID, a few tries, backing off); after a reload of the
// page it is picked up again from its first event. One reply per session, kept while other sessions
// are open.

import { json, send } from "./api.js";
import { apiURL } from "./config.js";
import { delay, el } from "./dom.js";
import { showError } from "./errors.js";
import { messageElement, replyFoot } from "./messages.js";
import { modelName } from "./models.js";
import { readEventStream } from "./sse.js";

const SAVED_KEY = "console.reply."; // + session id: {jobId, eventId} of the reply running there
const RESUME_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

const runs = new Map(); // sessionId → the reply streaming in it
let hooks = { status: () => {}, grew: () => {}, changed: () => {}, finished: () => {} };

/**
 * Sets what the conversation view hears: `status(run, text)` a line about the reply's connection,
 * `grew(run)` after text was added, `changed(run)` when it starts or a cancel is asked, and
 * `finished(run)` once it has ended (`run.state` "complete" or "error").
 */
export function onReplies(callbacks) {
  hooks = { ...hooks, ...callbacks };
}

/**
 * Starts showing a reply from the 200 answer of POST .../stream; returns its run at once
 * ({sessionId, element, finished, cancelRequested, ...}) and goes on reading in the background.
 */
export function streamReply(sessionId, response, controller) {
  const run = newRun(sessionId, controller);
  runs.set(sessionId, run);
  hooks.changed(run);
  follow(run, response);
  return run;
}

/**
 * A reply this tab was reading before a reload, read again from its first event; null when there is
 * none, or when `storedMessages` (the session's) already hold it.
 */
export function pickUpReply(sessionId, storedMessages) {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(SAVED_KEY + sessionId) ?? "null");
  } catch {
    saved = null;
  }
  if (!saved?.eventId) return null;
  if (storedMessages.some((m) => m.role === "assistant" && m.jobId === saved.jobId)) {
    sessionStorage.removeItem(SAVED_KEY + sessionId);
    return null;
  }
  const run = newRun(sessionId, new AbortController());
  run.lastEventId = saved.eventId;
  run.jobId = saved.jobId;
  run.immediate = true;
  runs.set(sessionId, run);
  hooks.changed(run);
  follow(run, null);
  return run;
}

/** The reply still running in a session, or undefined. */
export function activeReply(sessionId) {
  const run = runs.get(sessionId);
  return run && !run.finished ? run : undefined;
}

/** Stops reading a session's reply (it goes on on the server) and forgets it. */
export function dropReply(sessionId) {
  runs.get(sessionId)?.controller.abort();
  runs.delete(sessionId);
  sessionStorage.removeItem(SAVED_KEY + sessionId);
}

/** Stops reading every reply (sign-out). */
export function dropAllReplies() {
  for (const sessionId of [...runs.keys()]) dropReply(sessionId);
}

function newRun(sessionId, controller) {
  const element = messageElement({ role: "assistant", content: "", state: "streaming" });
  element.setAttribute("aria-busy", "true");
  return {
    sessionId,
    controller,
    element,
    text: element.querySelector(".message-text"),
    meta: element.querySelector(".message-meta"),
    lastEventId: null,
    jobId: null,
    nextIndex: 0, // the next chunk index expected: a chunk seen twice is shown once
    finished: false,
    state: "streaming",
    streamEnded: false,
    cancelRequested: false,
    immediate: false, // the first resume without waiting (after a reload)
    reopen: false, // the stored session shows the end the stream did not
  };
}

// Reads the reply to its end, resuming after a drop with the last event id seen.
async function follow(run, firstResponse) {
  const url = apiURL(`/api/chat/sessions/${encodeURIComponent(run.sessionId)}/stream`);
  const signal = run.controller.signal;
  let response = firstResponse;
  let tries = 0;
  for (;;) {
    if (response) {
      try {
        await readEventStream(response, (event) => {
          if (event.id) tries = 0;
          handleEvent(run, event);
        });
      } catch {
        if (signal.aborted) return;
      }
      response = null;
    }
    if (signal.aborted) return;
    if (run.finished) break;
    if (run.streamEnded) {
      await settleFromJob(run);
      break;
    }
    if (!run.lastEventId) {
      finish(run, "error", "The connection was lost before the reply started; reopen the session to see whether it arrived.");
      break;
    }
    if (tries >= RESUME_DELAYS_MS.length) {
      finish(run, "error", "The connection was lost and the reply could not be resumed; reopen the session to see it.");
      showError({ network: true, status: 0 }, "Resuming the reply");
      break;
    }
    const wait = run.immediate ? 0 : RESUME_DELAYS_MS[tries];
    tries += 1;
    hooks.status(run, run.immediate
      ? "Picking up the reply that was running…"
      : `Connection lost; resuming in ${(wait / 1000).toFixed(1)} s (try ${tries} of ${RESUME_DELAYS_MS.length})…`);
    run.immediate = false;
    try {
      await delay(wait, signal);
      response = await send(url, {
        method: "POST",
        headers: { "Last-Event-ID": run.lastEventId, Accept: "text/event-stream" },
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      if (error.status === 404 && error.code === "EVENT_NOT_FOUND") {
        finish(run, "error", "The reply can no longer be resumed; reopen the session to see it.");
        break;
      }
      if (error.network || error.status === 429 || error.status >= 500) {
        if (error.retryAfter) {
          try {
            await delay(error.retryAfter * 1000, signal);
          } catch {
            return;
          }
        }
        continue;
      }
      finish(run, "error", "The reply could not be resumed.");
      showError(error, "Resuming the reply");
      break;
    }
    if (response.status === 204) {
      // The last event seen was already the job's last one: the stored session has the whole reply.
      run.reopen = true;
      finish(run, "complete");
      break;
    }
    hooks.status(run, "Connection restored; the reply goes on.");
  }
}

function handleEvent(run, event) {
  if (event.id) run.lastEventId = event.id;
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;
  }
  switch (event.event) {
    case "model":
      run.jobId = data.jobId ?? run.jobId;
      run.element.dataset.jobId = run.jobId ?? "";
      run.meta.textContent = `Assistant · ${modelName(data.modelId)}${data.attempt > 1 ? ` (attempt ${data.attempt})` : ""}`;
      // Where to pick the reply up after a reload: after its first event, so every chunk comes again.
      if (event.id && data.attempt === 1) {
        sessionStorage.setItem(SAVED_KEY + run.sessionId, JSON.stringify({ jobId: run.jobId, eventId: event.id }));
      }
      break;
    case "reset":
      run.text.replaceChildren();
      run.nextIndex = 0;
      hooks.status(run, data.message || "The reply is being generated again.");
      break;
    case "chunk":
      if (typeof data.index === "number" && data.index < run.nextIndex) return; // already shown
      run.text.append(document.createTextNode(String(data.content ?? "")));
      run.nextIndex = typeof data.index === "number" ? data.index + 1 : run.nextIndex + 1;
      hooks.grew(run);
      break;
    case "complete":
      if (typeof data.content === "string" && data.content !== run.text.textContent) run.text.textContent = data.content;
      finish(run, "complete", data);
      break;
    case "error":
      if (data.code === "CLIENT_TOO_SLOW") {
        hooks.status(run, "The connection fell behind; catching up…"); // the stream ends: resumed above
      } else if (data.code === "STREAM_ENDED") {
        run.streamEnded = true;
      } else {
        finish(run, "error", data.message || "The reply failed.");
        showError({ message: `The reply failed: ${data.message || data.code || "unknown error"}` });
      }
      break;
    default:
      break;
  }
}

// The relay lost the job's last event: ask the job itself (GET /api/jobs/{jobId}) how it ended.
async function settleFromJob(run) {
  if (!run.jobId) {
    finish(run, "error", "The reply's stream ended early; reopen the session to see it.");
    return;
  }
  try {
    const job = await json(apiURL(`/api/jobs/${encodeURIComponent(run.jobId)}`));
    if ((job.status === "completed" || job.status === "cancelled") && typeof job.result?.content === "string") {
      run.text.textContent = job.result.content;
      finish(run, "complete", job.result);
    } else {
      const message = typeof job.error === "object" ? job.error?.message : job.error;
      finish(run, "error", message || `The reply ended as “${job.status}”.`);
    }
  } catch (error) {
    finish(run, "error", "The reply's stream ended early; reopen the session to see it.");
    showError(error, "Reading the reply's job");
  }
}

function finish(run, state, info) {
  if (run.finished) return;
  run.finished = true;
  run.state = state;
  sessionStorage.removeItem(SAVED_KEY + run.sessionId);
  run.element.dataset.state = state;
  run.element.removeAttribute("aria-busy");
  let foot = "";
  if (state === "complete" && info && typeof info === "object") {
    run.element.dataset.stopReason = info.stopReason ?? "";
    foot = replyFoot(info);
  } else if (state === "error") {
    foot = typeof info === "string" ? info : "The reply failed.";
  }
  if (foot) run.element.append(el("p", { className: "message-foot" }, foot));
  if (runs.get(run.sessionId) === run) runs.delete(run.sessionId);
  hooks.status(run, state === "complete" ? "Reply complete." : "The reply ended with an error.");
  hooks.finished(run);
}
