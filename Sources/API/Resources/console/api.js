// Every call to the chat API, the auth service and the accounting service goes through here: adds the
// bearer token, refreshes it once on a 401, and turns every failure into an ApiError the error region
// can explain. (Only config.json is fetched elsewhere, before any of this is set up.)

/** A failed call: an HTTP error answer (status > 0) or a network failure (status 0, network true). */
export class ApiError extends Error {
  constructor({ status = 0, code = "", message = "", serverMessage = "", requestId = "", retryAfter = null, network = false }) {
    super(message || serverMessage || (network ? "Network failure" : `HTTP ${status}`));
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.serverMessage = serverMessage;
    this.requestId = requestId;
    this.retryAfter = retryAfter; // seconds, or null
    this.network = network;
  }
}

let auth = {
  token: () => null,
  refresh: async () => false,
};

/**
 * Tells the client how to get the current access token and how to refresh it (`refresh()` resolves
 * true when a new token is in place). Called once by auth.js.
 */
export function useAuth(hooks) {
  auth = { ...auth, ...hooks };
}

/**
 * fetch with the bearer token (unless `auth: false`) and JSON body handling. Resolves with the Response
 * when its status is 2xx; on a 401 refreshes the token once and repeats the call; otherwise rejects with
 * an ApiError (an AbortError passes through unchanged when `signal` aborts).
 */
export async function send(url, { method = "GET", body, headers = {}, signal, auth: withAuth = true } = {}) {
  const attempt = async () => {
    const allHeaders = { ...headers };
    if (body !== undefined) allHeaders["Content-Type"] = "application/json";
    const token = withAuth ? auth.token() : null;
    if (token) allHeaders.Authorization = `Bearer ${token}`;
    try {
      return await fetch(url, {
        method,
        headers: allHeaders,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError({ network: true, message: "The server could not be reached." });
    }
  };
  let response = await attempt();
  if (response.status === 401 && withAuth && (await auth.refresh())) {
    response = await attempt();
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** Like send(), resolving with the parsed JSON body (null for an empty body such as a 204). */
export async function json(url, options) {
  const response = await send(url, options);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** An ApiError from an error answer: the server's JSON {message, code, requestId} when it has one. */
export async function errorFrom(response) {
  let body = {};
  try {
    body = JSON.parse(await response.text());
  } catch {
    body = {};
  }
  const retry = response.headers.get("Retry-After");
  let retryAfter = null;
  if (retry && /^\d+$/.test(retry.trim())) retryAfter = Number(retry.trim());
  else if (retry && !Number.isNaN(Date.parse(retry))) retryAfter = Math.max(0, Math.ceil((Date.parse(retry) - Date.now()) / 1000));
  return new ApiError({
    status: response.status,
    code: typeof body.code === "string" ? body.code : "",
    serverMessage: typeof body.message === "string" ? body.message : "",
    requestId: (typeof body.requestId === "string" && body.requestId) || response.headers.get("X-Request-Id") || "",
    retryAfter,
  });
}
