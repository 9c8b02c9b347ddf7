// Signing in and out: tokens from the auth service (or pasted), kept in sessionStorage, refreshed a
// minute before they expire and once after a 401. Who is signed in comes from the JWT's payload.

import { ApiError, send, useAuth } from "./api.js";
import { authURL } from "./config.js";

const ACCESS_KEY = "console.accessToken";
const REFRESH_KEY = "console.refreshToken";
const REFRESH_MARGIN_S = 60;

let accessToken = null;
let refreshToken = null;
let refreshTimer = null;
let refreshing = null; // the refresh in flight, shared by everyone who needs one
let listener = () => {};

/**
 * Wires the API client to these tokens. `onChange(user, reason)` is called whenever the signed-in user
 * changes: a user object after a sign-in, null (with a reason sentence or "") after a sign-out.
 */
export function initAuth({ onChange }) {
  listener = onChange;
  useAuth({ token: () => accessToken, refresh: refreshAfterUnauthorized });
}

/** The signed-in user from the access token: {id, name, role, expiresAt} or null. */
export function currentUser() {
  const claims = accessToken ? decodeJWT(accessToken) : null;
  if (!claims) return null;
  return {
    id: String(claims.sub ?? claims.userId ?? ""),
    name: String(claims.username ?? claims.sub ?? ""),
    email: claims.email ? String(claims.email) : "",
    role: ["admin", "supervisor", "enduser"].includes(claims.role) ? claims.role : "enduser",
    expiresAt: typeof claims.exp === "number" ? claims.exp : null,
  };
}

/** The current access token, or null. */
export function currentToken() {
  return accessToken;
}

/** Signs in with a username (or email) and password; resolves with the user, rejects with an ApiError. */
export async function signIn(identifier, password) {
  const body = identifier.includes("@") ? { email: identifier, password } : { username: identifier, password };
  let answer;
  try {
    const response = await send(authURL("/api/auth/login"), { method: "POST", body, auth: false });
    answer = await response.json();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) error.sentence = "Wrong username or password.";
    if (error instanceof ApiError && error.status === 429) error.sentence = "Too many failed sign-ins (429). Wait before trying again.";
    throw error;
  }
  if (!answer || typeof answer.accessToken !== "string" || !decodeJWT(answer.accessToken)) {
    throw new Error("The auth service answered without a usable access token.");
  }
  adopt(answer.accessToken, typeof answer.refreshToken === "string" ? answer.refreshToken : null);
  return currentUser();
}

/** Uses a pasted access token (no refresh token: it cannot be renewed). Throws an Error when unusable. */
export function signInWithToken(token) {
  const trimmed = token.trim().replace(/^Bearer\s+/i, "");
  const claims = decodeJWT(trimmed);
  if (!claims) throw new Error("That is not a JWT access token (three base64url parts with a JSON payload).");
  if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) throw new Error("That token has expired.");
  adopt(trimmed, null);
  return currentUser();
}

/**
 * Restores the tokens of this browser tab (sessionStorage) after a reload; refreshes them first when the
 * access token has expired. Resolves with the user, or null when there is nothing usable.
 */
export async function restoreSession() {
  const storedAccess = sessionStorage.getItem(ACCESS_KEY);
  const storedRefresh = sessionStorage.getItem(REFRESH_KEY);
  if (!storedAccess || !decodeJWT(storedAccess)) return null;
  accessToken = storedAccess;
  refreshToken = storedRefresh;
  const user = currentUser();
  if (user.expiresAt && user.expiresAt * 1000 <= Date.now() + 5000) {
    if (!(await refreshTokens())) {
      forget();
      return null;
    }
  }
  scheduleRefresh();
  listener(currentUser(), "");
  return currentUser();
}

/**
 * Signs out: forgets both tokens in this tab. (The auth service has no logout route in the testing
 * guide, so there is nothing to revoke; an unused refresh token simply expires.)
 */
export function signOut(reason = "") {
  forget();
  listener(null, reason);
}

/** Refreshes the tokens now; resolves true when a new access token is in place. Single-flight. */
export function refreshTokens() {
  if (!refreshToken) return Promise.resolve(false);
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const response = await send(authURL("/api/auth/refresh"), {
          method: "POST",
          body: { refreshToken },
          auth: false,
        });
        const answer = await response.json();
        if (typeof answer.accessToken !== "string" || !decodeJWT(answer.accessToken)) return false;
        // The auth service rotates refresh tokens: the one just used is spent.
        adopt(answer.accessToken, typeof answer.refreshToken === "string" ? answer.refreshToken : refreshToken, false);
        return true;
      } catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 400)) {
          // Spent or revoked: forget it here and in this tab's storage, so that a reload does not try it again.
          refreshToken = null;
          sessionStorage.removeItem(REFRESH_KEY);
        }
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

/** The payload of a JWT as an object, or null when the text is not one. Does not check the signature. */
export function decodeJWT(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(parts[1].length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return payload && typeof payload === "object" ? payload : null;
  } catch {
    return null;
  }
}

// A 401 from any service: refresh once; if that fails the user must sign in again.
async function refreshAfterUnauthorized() {
  const ok = await refreshTokens();
  if (!ok && accessToken) signOut("Your sign-in has expired. Please sign in again.");
  return ok;
}

function adopt(access, refresh, announce = true) {
  accessToken = access;
  refreshToken = refresh;
  sessionStorage.setItem(ACCESS_KEY, access);
  if (refresh) sessionStorage.setItem(REFRESH_KEY, refresh);
  else sessionStorage.removeItem(REFRESH_KEY);
  scheduleRefresh();
  if (announce) listener(currentUser(), "");
}

function forget() {
  accessToken = null;
  refreshToken = null;
  sessionStorage.removeItem(ACCESS_KEY);
  sessionStorage.removeItem(REFRESH_KEY);
  if (refreshTimer !== null) clearTimeout(refreshTimer);
  refreshTimer = null;
}

function scheduleRefresh() {
  if (refreshTimer !== null) clearTimeout(refreshTimer);
  refreshTimer = null;
  const user = currentUser();
  if (!refreshToken || !user || !user.expiresAt) return;
  const dueInMs = Math.max(0, (user.expiresAt - REFRESH_MARGIN_S) * 1000 - Date.now());
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    if (!(await refreshTokens())) {
      // The auth service may be briefly away: try again shortly while the token is still valid.
      const left = (currentUser()?.expiresAt ?? 0) * 1000 - Date.now();
      if (refreshToken && left > 10000) refreshTimer = setTimeout(() => scheduleRefresh(), 10000);
    }
  }, Math.min(dueInMs, 2 ** 31 - 1));
}
