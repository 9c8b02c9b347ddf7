// The signed-in user's credit balance, from the accounting service.

import { json } from "./api.js";
import { accountingURL } from "./config.js";
import { showError } from "./errors.js";

let inFlight = null;

/**
 * Reads GET {accountingURL}/api/credits/balance and shows `totalCredits` (and what is reserved for
 * replies running now) in #balance. Never rejects: a failure shows "unavailable" and the error.
 */
export function refreshBalance() {
  if (inFlight) return inFlight;
  inFlight = (async () => {
    const node = document.getElementById("balance");
    try {
      const balance = await json(accountingURL("/api/credits/balance"));
      const total = Number(balance?.totalCredits ?? 0);
      const reserved = Number(balance?.reservedCredits ?? 0);
      node.textContent = reserved > 0 ? `${format(total)} (${format(reserved)} reserved)` : format(total);
      node.dataset.credits = String(total);
    } catch (error) {
      if (error.name === "AbortError") return;
      node.textContent = "unavailable";
      delete node.dataset.credits;
      showError(error, "Reading the credit balance");
    } finally {
      inFlight = null;
    }
  })();
  return inFlight;
}

/** Clears the balance shown (after a sign-out). */
export function clearBalance() {
  const node = document.getElementById("balance");
  node.textContent = "…";
  delete node.dataset.credits;
}

function format(credits) {
  return Number.isInteger(credits) ? String(credits) : credits.toFixed(2);
}
