// TC-16: one page, one EventSource per user, all open at once. The harness calls
// window.concurrentPage.run({users: [{name, token}], apis: [...], message}); each user's row records its
// session, state, chunks, when its first chunk and its `complete` came (ms since the streams were opened),
// the `complete` event (data-complete-json) and the reply's text.
import { byId, createSession, followReply, services, setState, streamURL } from "./common.js";

byId("origin").textContent = location.origin;

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

async function run({ users, apis, message }) {
  setState("run-state", "creating", "creating sessions");
  byId("user-count").textContent = String(users.length);
  const rows = users.map((user, position) => {
    const row = document.createElement("tr");
    row.dataset.user = user.name;
    row.dataset.state = "creating";
    const api = apis[position % apis.length];
    row.dataset.api = api;
    const cells = {
      user: cell(row, user.name), api: cell(row, api), session: cell(row, ""), state: cell(row, "creating"),
      chunks: cell(row, "0"), first: cell(row, ""), complete: cell(row, ""), tokens: cell(row, ""),
      credits: cell(row, ""), text: cell(row, "", "text"),
    };
    byId("rows").append(row);
    return { user, row, cells, api };
  });
  const mark = (entry, state, text = state) => {
    entry.row.dataset.state = state;
    entry.cells.state.textContent = text;
    if (state === "complete" || state === "error") {
      const done = rows.filter((r) => r.row.dataset.state === "complete" || r.row.dataset.state === "error").length;
      byId("done-count").textContent = String(done);
      if (done === rows.length) setState("run-state", "done", "done");
    }
  };

  // Sessions first (through the page's own origin rules: a preflighted POST per user), then every stream in
  // the same turn of the event loop.
  const created = await Promise.allSettled(rows.map((entry) => createSession(entry.user.token, `TC-16 ${entry.user.name}`, services.api)));
  created.forEach((result, i) => {
    if (result.status === "fulfilled") {
      rows[i].sessionId = result.value;
      rows[i].row.dataset.session = result.value;
      rows[i].cells.session.textContent = result.value;
    } else {
      mark(rows[i], "error", `create: ${result.reason}`);
    }
  });
  setState("run-state", "streaming", "streaming");
  const opened = performance.now();
  for (const entry of rows.filter((r) => r.sessionId)) {
    mark(entry, "streaming");
    let chunks = 0;
    let text = "";
    followReply(streamURL(entry.api, entry.sessionId, message, entry.user.token), {
      onModel() {},
      onReset() {
        chunks = 0;
        text = "";
      },
      onChunk(data) {
        if (chunks === 0) {
          entry.row.dataset.firstChunkMs = String(Math.round(performance.now() - opened));
          entry.cells.first.textContent = `${entry.row.dataset.firstChunkMs} ms`;
        }
        chunks += 1;
        text += data.content;
        entry.cells.chunks.textContent = String(chunks);
        entry.cells.text.textContent = text;
      },
      onComplete(data) {
        entry.row.dataset.completeMs = String(Math.round(performance.now() - opened));
        entry.row.dataset.completeJson = JSON.stringify(data);
        entry.row.dataset.chunks = String(chunks);
        entry.cells.complete.textContent = `${entry.row.dataset.completeMs} ms`;
        entry.cells.tokens.textContent = `${data.inputTokens}+${data.outputTokens}`;
        entry.cells.credits.textContent = String(data.creditsCharged);
        mark(entry, "complete");
      },
      onFailure(reason) {
        mark(entry, "error", reason);
      },
    });
  }
  if (!rows.some((r) => r.sessionId)) setState("run-state", "done", "done (no session created)");
}

window.concurrentPage = {
  run(config) {
    run(config).catch((error) => setState("run-state", "failed", `${error.name}: ${error.message}`));
  },
};
