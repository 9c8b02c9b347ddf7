// Tiny DOM helpers. Text always goes in as text nodes, never as HTML.

/**
 * Creates an element: `props` sets properties (className, id, type, ...), "data-*" and "aria-*" names
 * and `hidden` as attributes; `children` are nodes or strings (strings become text nodes).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "for") {
      node.setAttribute(key, value === true ? "" : String(value));
    } else {
      node[key] = value;
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/**
 * Runs `change` on a live region without having it read out (a history being loaded is not news): the
 * region is silent while the change lands and speaks again once the page has rendered it.
 */
export function quietly(region, change) {
  region.dataset.live ??= region.getAttribute("aria-live") ?? "polite";
  region.setAttribute("aria-live", "off");
  change();
  clearTimeout(Number(region.dataset.liveTimer));
  region.dataset.liveTimer = String(setTimeout(() => region.setAttribute("aria-live", region.dataset.live), 100));
}

/** Resolves after `ms` milliseconds (for retry backoff only, never to wait for a condition). */
export function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("Aborted", "AbortError"));
    }, { once: true });
  });
}

/** A short local date and time for an ISO timestamp. */
export function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
