// Shared by the browser-check pages: where the services are, signing in, calling them, and small DOM helpers.
// The services' addresses come from the page's query (?api=...&auth=...&accounting=...), with the
// browser-check stack's ports as defaults.

const query = new URLSearchParams(location.search);

export const services = {
  api: query.get("api") || "http://127.0.0.1:3103",
  auth: query.get("auth") || "http://127.0.0.1:3101",
  accounting: query.get("accounting") || "http://127.0.0.1:3102",
};

/** The element with this id (throws when the page lacks it: a broken page should fail loudly). */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`no element #${id}`);
  return element;
}

/** Sets a status element's text and its data-state (what the harness waits on). */
export function setState(id, state, text = state) {
  const element = byId(id);
  element.dataset.state = state;
  element.textContent = text;
}

/** Appends one line to a log list on the page. */
export function logLine(id, text) {
  const item = document.createElement("li");
  item.textContent = text;
  byId(id).append(item);
}

/** A JSON call: {status, body} (body parsed when it is JSON). Network and CORS failures throw a TypeError. */
export async function callJSON(url, { method = "GET", token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed };
}

/** Signs in at the auth service from this page: {token, user}. */
export async function signIn(username, password) {
  const { status, body } = await callJSON(`${services.auth}/api/auth/login`, {
    method: "POST",
    body: { username, password },
  });
  if (status !== 200 || !body || !body.accessToken) {
    throw new Error(`login answered ${status}: ${JSON.stringify(body)}`);
  }
  return { token: body.accessToken, user: body.user || { username } };
}

/** Creates a chat session for the token's user: the new session's id. */
/**
 * The page's sign-in button: signs in with the username and password fields, shows the outcome in
 * #signin-state, and hands the access token to `onToken`.
 */
export function wireSignIn(onToken) {
  byId("signin").addEventListener("click", async () => {
    setState("signin-state", "working", "signing in…");
    try {
      const signed = await signIn(byId("username").value, byId("password").value);
      onToken(signed.token);
      setState("signin-state", "signed-in", `${signed.user.username} (${signed.user.role})`);
    } catch (error) {
      setState("signin-state", "failed", `${error.name}: ${error.message}`);
    }
  });
}

export async function createSession(token, title, apiBase = services.api) {
  const { status, body } = await callJSON(`${apiBase}/api/chat/sessions`, { method: "POST", token, body: { title } });
  if (status !== 201 || !body || !body.sessionId) {
    throw new Error(`create session answered ${status}: ${JSON.stringify(body)}`);
  }
  return body.sessionId;
}

/** The GET form of the stream route, for EventSource (the token in access_token; it cannot send headers). */
export function streamURL(apiBase, sessionId, message, token) {
  const params = new URLSearchParams({ message, access_token: token });
  return `${apiBase}/api/chat/sessions/${encodeURIComponent(sessionId)}/stream?${params}`;
}

/** Follows one reply over EventSource: the chunks in order, the `complete` event, or what went wrong.
 *  `view` gets told about everything: onModel(data), onChunk(data), onReset(data), onComplete(data),
 *  onFailure(reason); onChunk is only called for the next index in order. Returns the EventSource. */
export function followReply(url, view) {
  const source = new EventSource(url);
  let expected = 0;
  let finished = false;
  const fail = (reason) => {
    if (finished) return;
    finished = true;
    source.close();
    view.onFailure(reason);
  };
  const parse = (event) => {
    try {
      return JSON.parse(event.data);
    } catch {
      fail(`${event.type} event with data that is not JSON: ${event.data}`);
      return null;
    }
  };
  source.addEventListener("model", (event) => {
    const data = parse(event);
    if (data) view.onModel(data);
  });
  source.addEventListener("reset", (event) => {
    const data = parse(event);
    if (!data) return;
    expected = 0;
    view.onReset(data);
  });
  source.addEventListener("chunk", (event) => {
    const data = parse(event);
    if (!data) return;
    if (data.index !== expected) {
      fail(`chunk ${data.index} arrived where chunk ${expected} was due`);
      return;
    }
    expected += 1;
    view.onChunk(data);
  });
  source.addEventListener("complete", (event) => {
    const data = parse(event);
    if (!data || finished) return;
    finished = true;
    source.close();
    view.onComplete(data);
  });
  // The server's own `error` event has data; the EventSource's connection errors have none (it reconnects by
  // itself with Last-Event-ID unless the answer was not an event stream, when it gives up: CLOSED).
  source.addEventListener("error", (event) => {
    if (event.data) {
      const data = parse(event);
      fail(`error event ${data ? `${data.code}: ${data.message}` : event.data}`);
    } else if (source.readyState === EventSource.CLOSED) {
      fail("the event stream could not be opened or was refused");
    } else if (view.onReconnect) {
      view.onReconnect();
    }
  });
  return source;
}
