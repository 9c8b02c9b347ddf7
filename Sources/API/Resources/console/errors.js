// The error region (role=alert) and the notice line (role=status): plain sentences for every failure,
// the server's own message beside them, and a countdown when the server says when to try again.

import { el } from "./dom.js";

let region;
let notice;
let countdownTimer = null;

/** Binds the module to the page's #error-region and #notice elements; call once at start. */
export function initErrors() {
  region = document.getElementById("error-region");
  notice = document.getElementById("notice");
}

/**
 * Shows `error` (an ApiError, or any Error) in the error region, replacing what was there. `doing` is a
 * short phrase for what failed ("Sending the message"). Returns the sentence shown.
 */
export function showError(error, doing = "") {
  stopCountdown();
  const { sentence, wait } = explain(error);
  const lines = [el("p", { className: "error-sentence" }, doing ? `${doing} failed: ${sentence}` : sentence)];
  if (error && error.serverMessage) {
    const parts = [error.code, error.requestId && `request id ${error.requestId}`].filter(Boolean);
    lines.push(el("p", { className: "error-server" }, `Server says: “${error.serverMessage}”` + (parts.length ? ` (${parts.join(", ")})` : "")));
  }
  let countdown = null;
  if (wait !== null) {
    // The countdown ticks without being announced again and again: its own live setting is off.
    countdown = el("p", { className: "error-countdown", "aria-live": "off" });
    lines.push(countdown);
  }
  const dismiss = el("button", { type: "button", className: "secondary", id: "error-dismiss" }, "Dismiss");
  dismiss.addEventListener("click", clearError);
  lines.push(dismiss);
  region.dataset.status = String(error?.status ?? "");
  region.dataset.code = error?.code ?? "";
  region.replaceChildren(el("div", { className: "error-box" }, ...lines));
  if (countdown) startCountdown(countdown, wait);
  return sentence;
}

/** Empties the error region. */
export function clearError() {
  stopCountdown();
  if (!region) return;
  region.replaceChildren();
  delete region.dataset.status;
  delete region.dataset.code;
}

/** Shows a short, polite notice ("Session created"); an empty text clears it. */
export function showNotice(text) {
  if (notice) notice.textContent = text;
}

/** The sentence for an error and the seconds to wait (or null), by status as the API documents them. */
export function explain(error) {
  if (!error || error.status === undefined) {
    return { sentence: error?.message || "Something went wrong.", wait: null };
  }
  const wait = error.retryAfter ?? null;
  if (error.sentence) return { sentence: error.sentence, wait };
  if (error.network) {
    return { sentence: "Network failure: the server could not be reached. Check the connection and try again.", wait: null };
  }
  switch (error.status) {
    case 400:
      return { sentence: "The request was not accepted (400).", wait: null };
    case 401:
      return { sentence: "You are not signed in, or your sign-in has expired (401). Please sign in again.", wait: null };
    case 402:
      return { sentence: "Not enough credits for this request (402). Ask an administrator for more credits.", wait: null };
    case 403:
      return { sentence: "You are not allowed to do this (403).", wait: null };
    case 404:
      return { sentence: "Not found (404): it may have been deleted, or it is not yours.", wait: null };
    case 409:
      return { sentence: "A reply is already running in this session (409). Wait for it to finish, or cancel it.", wait: null };
    case 413:
      return { sentence: "The message is too large (413).", wait: null };
    case 429:
      return { sentence: "Too many requests (429). Please slow down.", wait };
    case 503:
      return { sentence: "The service is busy or unavailable (503). Try again shortly.", wait };
    default:
      if (error.status >= 500) return { sentence: `The server failed (${error.status}). Try again later.`, wait };
      return { sentence: `The request failed (${error.status}).`, wait };
  }
}

function startCountdown(node, seconds) {
  let left = Math.max(0, Math.round(seconds));
  const render = () => {
    node.textContent = left > 0 ? `You can try again in ${left} s.` : "You can try again now.";
  };
  render();
  countdownTimer = setInterval(() => {
    left -= 1;
    render();
    if (left <= 0) stopCountdown();
  }, 1000);
}

function stopCountdown() {
  if (countdownTimer !== null) clearInterval(countdownTimer);
  countdownTimer = null;
}
