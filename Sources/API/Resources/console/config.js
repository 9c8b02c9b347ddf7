// Where the console finds the chat API, the auth service and the accounting service.
// chat-api answers config.json next to this page; "" means the page's own origin.

let settings = { apiURL: "", authURL: "", accountingURL: "" };

/** Loads config.json (relative to the page) once; throws an Error with a readable message when it cannot. */
export async function loadConfig() {
  let response;
  try {
    response = await fetch("config.json", { cache: "no-store" });
  } catch {
    throw new Error("Cannot load the console's configuration (config.json): the server did not answer.");
  }
  if (!response.ok) {
    throw new Error(`Cannot load the console's configuration (config.json): HTTP ${response.status}.`);
  }
  const body = await response.json();
  settings = {
    apiURL: trimSlash(body.apiURL ?? ""),
    authURL: trimSlash(body.authURL ?? ""),
    accountingURL: trimSlash(body.accountingURL ?? ""),
  };
  return settings;
}

/** The chat API's URL for a path such as "/api/models". */
export function apiURL(path) {
  return settings.apiURL + path;
}

/** The auth service's URL for a path such as "/api/auth/login". */
export function authURL(path) {
  return settings.authURL + path;
}

/** The accounting service's URL for a path such as "/api/credits/balance". */
export function accountingURL(path) {
  return settings.accountingURL + path;
}

function trimSlash(url) {
  return String(url).replace(/\/+$/, "");
}
