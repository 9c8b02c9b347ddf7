// Calls each service from this page's origin and records, per call, whether the page could read the answer
// ("status <n>") or the browser refused it (the TypeError fetch throws). Simple requests and preflighted ones.
import { byId, services, setState } from "./common.js";

byId("origin").textContent = location.origin;

const calls = [
  { name: "auth GET /api/health", url: `${services.auth}/api/health` },
  {
    name: "auth POST /api/auth/login (preflighted)",
    url: `${services.auth}/api/auth/login`,
    init: { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username: "user2", password: "User2@123" }) },
  },
  { name: "chat-api GET /api/health", url: `${services.api}/api/health` },
  {
    name: "chat-api POST /api/chat/sessions (preflighted)",
    url: `${services.api}/api/chat/sessions`,
    init: { method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer not-a-token" }, body: JSON.stringify({ title: "x" }) },
  },
  { name: "accounting GET /api/health", url: `${services.accounting}/api/health` },
  {
    name: "accounting GET /api/credits/balance (preflighted)",
    url: `${services.accounting}/api/credits/balance`,
    init: { headers: { Authorization: "Bearer not-a-token" } },
  },
];

const results = await Promise.all(
  calls.map(async (call) => {
    try {
      const response = await fetch(call.url, call.init);
      await response.text();
      return { name: call.name, outcome: `status ${response.status}` };
    } catch (error) {
      return { name: call.name, outcome: `${error.name}: ${error.message}` };
    }
  }),
);
for (const result of results) {
  const row = document.createElement("tr");
  row.dataset.call = result.name;
  row.dataset.outcome = result.outcome;
  for (const text of [result.name, result.outcome]) {
    const td = document.createElement("td");
    td.textContent = text;
    row.append(td);
  }
  byId("rows").append(row);
}
setState("run-state", "done", "done");
