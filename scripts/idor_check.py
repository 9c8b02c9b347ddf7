#!/usr/bin/env python3
"""The IDOR matrix: another user's ids, on every route with a path parameter, with every method it serves.

idor_check.py API_URL   (env: JWT_ACCESS_SECRET, ACCOUNTING_URL, REDIS_URL, JOB_STREAM)

userA (enduser) gets a session, a job answered 202 (`Prefer: respond-async`), a streamed job, and, in the second
phase, a reply generating now that a supervisor observes. Then every operation of the served OpenAPI document
whose path has a parameter (so a new route is covered without touching this file) is called with A's ids by
userB (enduser), a supervisor and an admin, in every variant the operation's parameters allow (plain, resuming
with A's event id in `Last-Event-ID` or `lastEventId`, the token as `access_token`, `Prefer: respond-async`),
with a valid body built from the operation's schema (so the ownership check, not the body check, answers).

What the documents say, asserted exactly (README, docs/architecture.md, ARCHITECTURE.md, openapi.json):
  - a session of someone else's is 404 `SESSION_NOT_FOUND` for every role, "exactly like one that does not
    exist" (ARCHITECTURE: GET/DELETE/messages/stream/cancel/update-stream are the owner's);
  - a job of someone else's is 404 `JOB_NOT_FOUND` ("unknown, expired, or another user's"), for every role;
  - observe: 403 `FORBIDDEN` for every enduser, whatever the session (the same answer for A's session and a
    session that does not exist, so no oracle); 200 for supervisors and admins, "any session, whoever owns it",
    opening with an `observer` event naming A as the owner;
  - an enduser's answer on A's id equals (status and code) its answer on an id that does not exist.
And no side effect: userB's balance, reservations and usage, userA's balance, the job stream's entries-added
(no job enqueued), no job record of userB, userA's session and messages, A's running reply neither cancelled
nor disturbed, and nothing of A's in any answer userB got. Prints the matrix; exit status 1 on any violation."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

API = sys.argv[1].rstrip("/")
ACCOUNTING = os.environ["ACCOUNTING_URL"].rstrip("/")
JOB_STREAM = os.environ.get("JOB_STREAM", "chat:jobs")
REDIS = urllib.parse.urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6380"))
METHODS = ("get", "put", "post", "delete", "patch")
violations = []
rows = []


def token(user, role, ttl=1800):
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()
    now = int(time.time())
    head = part({"alg": "HS256", "typ": "JWT"}) + "." + part({"sub": user, "userId": user, "role": role, "iat": now, "exp": now + ttl})
    key = os.environ["JWT_ACCESS_SECRET"].encode()
    return head + "." + base64.urlsafe_b64encode(hmac.new(key, head.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()


class Answer:
    def __init__(self, status, content_type, text, elapsed):
        self.status, self.content_type, self.text, self.elapsed = status, content_type, text, elapsed

    def json(self):
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def code(self):
        body = self.json()
        return body.get("code") if isinstance(body, dict) else None

    def events(self):
        return list(sse_events(self.text))


def sse_events(text):
    """(id, event, data) of each complete event of an SSE text."""
    for frame in text.replace("\r\n", "\n").split("\n\n")[:-1]:
        ident, name, data = None, "message", []
        for line in frame.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                ident = value
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            yield ident, name, "\n".join(data)


def call(method, url, bearer=None, body=None, headers=None, sse_seconds=2.0, timeout=40, on_event=None, stop=None):
    """One request; an event stream is read until it ends, for sse_seconds at most (None: until it ends or
    `stop` is set), calling on_event(id, event, data) for each event as it arrives."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    sent = {"Accept": "application/json, text/event-stream"}
    if bearer:
        sent["Authorization"] = "Bearer " + bearer
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    started = time.monotonic()
    connection.request(method, parts.path + ("?" + parts.query if parts.query else ""), body=data, headers=sent)
    response = connection.getresponse()
    content_type = response.getheader("Content-Type", "")
    if not content_type.startswith("text/event-stream"):
        text = response.read().decode(errors="replace")
        connection.close()
        return Answer(response.status, content_type, text, time.monotonic() - started)
    buffer, seen = "", 0
    deadline = None if sse_seconds is None else started + sse_seconds
    finished = threading.Event()

    def watchdog():  # ends the read at the deadline or when asked to stop (a read timeout would spoil the socket)
        while not finished.wait(0.05):
            if (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop.is_set()):
                try:
                    connection.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return

    threading.Thread(target=watchdog, daemon=True).start()
    while True:
        try:
            chunk = response.read1(65536)
        except (http.client.HTTPException, OSError, ValueError):
            break
        if not chunk:
            break
        buffer += chunk.decode(errors="replace")
        if on_event:
            events = list(sse_events(buffer))
            for event in events[seen:]:
                on_event(*event)
            seen = len(events)
    finished.set()
    connection.close()
    return Answer(response.status, content_type, buffer, time.monotonic() - started)


def redis_cli(*arguments, stdin=None):
    command = ["redis-cli", "-h", REDIS.hostname or "127.0.0.1", "-p", str(REDIS.port or 6379)]
    if REDIS.password:
        command += ["-a", urllib.parse.unquote(REDIS.password), "--no-auth-warning"]
    if REDIS.path.strip("/"):
        command += ["-n", REDIS.path.strip("/")]
    return subprocess.run(command + list(arguments), input=stdin, capture_output=True, text=True, timeout=30).stdout


def job_stream_state():
    """XLEN of the job stream, and its entries-added (XLEN falls when workers ack: ack is XACK + XDEL)."""
    lines = redis_cli("XINFO", "STREAM", JOB_STREAM).split("\n")
    info = dict(zip(lines[0::2], lines[1::2])) if "entries-added" in lines else {}
    return {"xlen": int(redis_cli("XLEN", JOB_STREAM).strip() or 0), "entriesAdded": info.get("entries-added", "0"),
            "lastId": info.get("last-generated-id", "-")}


def jobs_of(user):
    """Job records (chat:job:*) whose user is `user`."""
    keys = [key for key in redis_cli("--scan", "--pattern", "chat:job:*").split("\n") if key and key.count(":") == 2]
    if not keys:
        return []
    answers = redis_cli(stdin="".join(f"HGET {key} userId\n" for key in keys)).split("\n")
    return [key for key, owner in zip(keys, answers) if owner == user]


def account_view(bearer):
    balance = call("GET", ACCOUNTING + "/api/credits/balance", bearer).json() or {}
    usage = call("GET", ACCOUNTING + "/api/usage/stats", bearer).json() or {}
    return {"totalCredits": balance.get("totalCredits"), "reservedCredits": balance.get("reservedCredits"),
            "allocations": sorted((a.get("id"), a.get("credits")) for a in balance.get("activeAllocations", [])),
            "usage": {k: usage.get(k) for k in ("totalCreditsUsed", "totalTokens", "totalRequests")}}


def session_view(bearer, session):
    answer = call("GET", f"{API}/api/chat/sessions/{session}", bearer)
    body = answer.json() or {}
    messages = [(m.get("messageId"), m.get("role"), m.get("content"), m.get("status"), m.get("createdAt")) for m in body.get("messages", [])]
    listed = call("GET", f"{API}/api/chat/sessions/{session}/messages", bearer).json() or {}
    return {"status": answer.status, "session": {k: v for k, v in body.items() if k != "messages"}, "title": body.get("title"), "messages": messages,
            "messageList": [(m.get("messageId"), m.get("content")) for m in listed.get("messages", [])]}


def violation(text):
    violations.append(text)
    print(f"idor-check: VIOLATION: {text}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- the document

document = json.loads(call("GET", API + "/openapi.json").text)


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def schema_name(schema):
    return schema["$ref"].rsplit("/", 1)[-1] if isinstance(schema, dict) and "$ref" in schema else None


def example(schema, ids):
    """A valid instance of `schema` (required properties only, strings that pass the checks), with any
    property naming a job, a streaming session or a session filled with A's ids: a hostile but valid body."""
    schema = resolve(schema)
    if "examples" in schema and schema.get("type") != "object":
        return schema["examples"][0]
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        instance = {}
        for name, sub in schema.get("properties", {}).items():
            lowered = name.lower()
            if name in schema.get("required", []):
                instance[name] = example(sub, ids)
            if "jobid" in lowered or "streamingsessionid" in lowered:
                instance[name] = ids["job"]
            elif "sessionid" in lowered:
                instance[name] = ids["session"]
        return instance
    if kind == "string":
        return ids.get("text", "idor probe [[tokens:3]]")
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return None


def parameters(item, operation):
    return [resolve(p) for p in item.get("parameters", []) + operation.get("parameters", [])]


def target_kind(template, parameter):
    """What a path parameter names: 'session' or 'job' (anything else is taken as the session: a new
    per-session route is the likelier addition)."""
    name = (schema_name(parameter.get("schema")) or "") + parameter["name"]
    return "job" if "job" in name.lower() else "session"


def expectation(role, method, template):
    """(statuses, code) the documents promise to `role` calling `method template` with A's id."""
    if template.endswith("/observe"):
        return ({403}, "FORBIDDEN") if role == "enduser" else ({200}, None)
    if "{jobId}" in template or "/jobs/" in template:
        return ({404}, "JOB_NOT_FOUND")
    if "/sessions/{" in template:
        return ({404}, "SESSION_NOT_FOUND")
    return ({404}, None)  # a new route with an id: someone else's is not found


def variants(item, operation, method, ids, bearer):
    """(name, query, headers, bearer) for each way the operation may be called with A's ids."""
    params = parameters(item, operation)
    names = {(p["in"], p["name"]) for p in params}
    base_query = {}
    for p in params:
        if p["in"] == "query" and (p.get("required") or p["name"] == "message"):
            base_query[p["name"]] = ids["text"] if p["name"] == "message" else str(example(p.get("schema", {}), ids))
    out = [("plain", dict(base_query), {}, bearer)]
    if ("header", "Last-Event-ID") in names:
        out.append(("Last-Event-ID", dict(base_query), {"Last-Event-ID": ids["event"]}, bearer))
    if ("query", "lastEventId") in names:
        out.append(("lastEventId", dict(base_query, lastEventId=ids["event"]), {}, bearer))
    if ("header", "Prefer") in names:
        out.append(("respond-async", dict(base_query), {"Prefer": "respond-async"}, bearer))
    if any("accessTokenQuery" in requirement for requirement in operation.get("security", [])):
        out.append(("access_token", dict(base_query, access_token=bearer), {}, None))
    return out


def operations():
    """(template, method, item, operation) of every operation with a path parameter, the destructive last."""
    found = [(template, method, item, item[method]) for template, item in document["paths"].items() if "{" in template
             for method in METHODS if method in item]
    return sorted(found, key=lambda o: (o[1] == "delete", o[0].endswith("/cancel"), o[0], o[1]))


def fill(template, item, operation, ids):
    path = template
    for p in parameters(item, operation):
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", urllib.parse.quote(ids[target_kind(template, p)], safe=""))
    return path


def leaked(answer, secrets_of_a):
    """A's text (message contents, the session's title) in an answer someone else got."""
    return [s for s in secrets_of_a if s and s in answer.text]


def run_matrix(phase, callers, ids, nonexistent, secrets_of_a, owner):
    for template, method, item, operation in operations():
        for role, who, bearer in callers:
            statuses, code = expectation(role, method.upper(), template)
            body = None
            if "requestBody" in operation:
                media = operation["requestBody"].get("content", {}).get("application/json")
                body = example(media["schema"], ids) if media else None
            names_job = any(p["in"] == "path" and target_kind(template, p) == "job" for p in parameters(item, operation))
            targets = [ids] + ([dict(ids, job=job, jobLabel=label) for job, label in ids.get("moreJobs", [])] if names_job else [])
            for target in targets:
                path = fill(template, item, operation, target)
                for name, query, headers, use in variants(item, operation, method, target, bearer):
                    url = API + path + ("?" + urllib.parse.urlencode(query) if query else "")
                    answer = call(method.upper(), url, use, body, headers)
                    verdict = "ok"
                    problems = []
                    if answer.status not in statuses:
                        problems.append(f"status {answer.status}, the documents say {sorted(statuses)}")
                    if code and answer.code != code:
                        problems.append(f"code {answer.code}, the documents say {code}")
                    if role == "enduser" and leaked(answer, secrets_of_a):
                        problems.append(f"the answer holds A's text {leaked(answer, secrets_of_a)}")
                    if answer.status == 200 and template.endswith("/observe"):
                        first = next(iter(answer.events()), None)
                        greeting = json.loads(first[2]) if first and first[1] == "observer" else {}
                        if greeting.get("ownerId") != owner or greeting.get("sessionId") != ids["session"]:
                            problems.append(f"observe did not open with an observer event naming {owner}: {answer.text[:200]!r}")
                    twin = None
                    if role == "enduser":  # the same call on an id that does not exist: the same answer
                        twin = call(method.upper(), API + fill(template, item, operation, nonexistent)
                                    + ("?" + urllib.parse.urlencode(query) if query else ""), use, body, headers)
                        if (twin.status, twin.code) != (answer.status, answer.code):
                            problems.append(f"differs from a nonexistent id's answer ({twin.status} {twin.code}): an oracle")
                    if problems:
                        verdict = "VIOLATION"
                        violation(f"[{phase}] {who} ({role}) {method.upper()} {path}{'?' + urllib.parse.urlencode({k: ('<token>' if k == 'access_token' else v) for k, v in query.items()}) if query else ''}"
                                  f" [{name}] headers={ {k: v for k, v in headers.items()} } body={json.dumps(body)}"
                                  f" -> {answer.status} {answer.text[:300]!r}: " + "; ".join(problems))
                    rows.append((phase, role, method.upper(), template, name, target_label(template, target), f"{answer.status} {answer.code or ''}".strip(),
                                 f"{'/'.join(map(str, sorted(statuses)))} {code or ''}".strip(), verdict))


def target_label(template, target):
    return target["jobLabel"] if "job" in template.lower() else "A's session"


def undocumented_methods(bearer, ids):
    """Methods a path with an id does not document: never a 2xx or a 5xx for someone else's id."""
    for template, item in document["paths"].items():
        if "{" not in template:
            continue
        for method in METHODS:
            if method in item:
                continue
            some = next(item[m] for m in METHODS if m in item)
            path = fill(template, item, some, ids)
            answer = call(method.upper(), API + path, bearer, {"message": ids["text"]} if method in ("put", "patch", "post") else None)
            verdict = "ok" if answer.status < 500 and not 200 <= answer.status < 300 else "VIOLATION"
            if verdict != "ok":
                violation(f"[idle] userB {method.upper()} {path} (not documented) -> {answer.status} {answer.text[:300]!r}")
            rows.append(("idle", "enduser", method.upper(), template, "undocumented", "A's session" if "session" in template else "A's job",
                         f"{answer.status} {answer.code or ''}".strip(), "not 2xx/5xx", verdict))


def compare(label, before, after):
    if before != after:
        violation(f"{label} changed: before {json.dumps(before)}, after {json.dumps(after)}")
    else:
        print(f"idor-check: ok: {label} unchanged")


def main():
    run = secrets.token_hex(3)
    user_a, user_b = f"idor-a-{run}", f"idor-b-{run}"
    tok_a, tok_b = token(user_a, "enduser"), token(user_b, "enduser")
    tok_sup, tok_admin = token(f"idor-sup-{run}", "supervisor"), token(f"idor-admin-{run}", "admin")
    for user in (user_a, user_b):
        answer = call("POST", ACCOUNTING + "/api/credits/allocate", tok_admin,
                      {"targetUserId": user, "credits": 100000, "expiryDays": 1, "notes": "idor-check"})
        if answer.status != 201:
            sys.exit(f"idor-check: allocating credits failed: {answer.status} {answer.text}")

    # userA's resources.
    title = f"A's private session {run}"
    answer = call("POST", API + "/api/chat/sessions", tok_a, {"title": title})
    if answer.status != 201:
        sys.exit(f"idor-check: creating A's session failed: {answer.status} {answer.text}")
    session = answer.json()["sessionId"]
    secret_1, secret_2 = f"alpha-secret-{run} [[tokens:4]]", f"bravo-secret-{run} [[tokens:4]]"
    answer = call("POST", f"{API}/api/chat/sessions/{session}/messages", tok_a, {"message": secret_1}, {"Prefer": "respond-async"})
    if answer.status != 202:
        sys.exit(f"idor-check: A's respond-async message failed: {answer.status} {answer.text}")
    job_async = answer.json()["jobId"]
    for _ in range(300):
        status = (call("GET", f"{API}/api/jobs/{job_async}", tok_a).json() or {}).get("status")
        if status in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.1)
    if status != "completed":
        sys.exit(f"idor-check: A's async job ended {status}")
    answer = call("POST", f"{API}/api/chat/sessions/{session}/stream", tok_a, {"message": secret_2}, sse_seconds=60)
    events = answer.events()
    if answer.status != 200 or not events or events[-1][1] != "complete":
        sys.exit(f"idor-check: A's streamed reply failed: {answer.status} {answer.text[:300]}")
    job_stream = json.loads(events[0][2]).get("jobId") or json.loads(events[0][2]).get("streamingSessionId")
    first_event = events[0][0]
    print(f"idor-check: userA {user_a}: session {session}, jobs {job_async} (202) and {job_stream} (stream, events {first_event}..{events[-1][0]})")

    ids = {"session": session, "job": job_async, "jobLabel": "A's 202 job", "event": first_event, "text": "idor probe [[tokens:3]]",
           "moreJobs": []}
    ids["moreJobs"] = [(job_stream, "A's SSE job")]
    nonexistent = {"session": secrets.token_hex(12), "job": str(uuid.uuid4()), "event": first_event, "text": ids["text"], "jobLabel": "none"}
    secrets_of_a = [title, secret_1.split(" ")[0], secret_2.split(" ")[0]]
    callers = [("enduser", "userB", tok_b), ("supervisor", "supervisor", tok_sup), ("admin", "admin", tok_admin)]

    # A supervisor watches A's session for the whole run.
    observed = []
    stop_observer = threading.Event()
    observer = threading.Thread(target=lambda: observed.append(call(
        "GET", f"{API}/api/chat/sessions/{session}/observe", tok_sup, sse_seconds=None, stop=stop_observer, timeout=60)), daemon=True)
    observer.start()

    # Phase 1: nothing runs in A's session.
    before = {"A's session": session_view(tok_a, session), "A's account": account_view(tok_a), "B's account": account_view(tok_b),
              "job stream": job_stream_state(), "B's job records": jobs_of(user_b)}
    run_matrix("idle", callers, ids, nonexistent, secrets_of_a, user_a)
    undocumented_methods(tok_b, ids)
    listed = call("GET", f"{API}/api/chat/sessions?limit=100", tok_b)
    ok = listed.status == 200 and session not in listed.text
    rows.append(("idle", "enduser", "GET", "/api/chat/sessions", "list", "-", str(listed.status), "200 without A's", "ok" if ok else "VIOLATION"))
    if not ok:
        violation(f"[idle] userB GET /api/chat/sessions?limit=100 -> {listed.status} {listed.text[:300]!r}: lists A's session")
    time.sleep(1.0)  # a job wrongly begun would be enqueued within this
    after = {"A's session": session_view(tok_a, session), "A's account": account_view(tok_a), "B's account": account_view(tok_b),
             "job stream": job_stream_state(), "B's job records": jobs_of(user_b)}
    for label in before:
        compare(f"[idle] {label}", before[label], after[label])

    # Phase 2: A's reply is generating (about 50 s unless cancelled) while the others try everything again.
    running_events = []
    first_chunk = threading.Event()

    def on_event(ident, name, data):
        running_events.append((time.monotonic(), ident, name, data))
        if name == "chunk":
            first_chunk.set()

    secret_3 = f"charlie-secret-{run} [[tokens:1000]] [[tps:20]]"  # ~50 s unless cancelled
    stream_holder = []
    streamer = threading.Thread(target=lambda: stream_holder.append(call(
        "POST", f"{API}/api/chat/sessions/{session}/stream", tok_a, {"message": secret_3}, sse_seconds=120, on_event=on_event, timeout=60)), daemon=True)
    streamer.start()
    if not first_chunk.wait(30):
        sys.exit(f"idor-check: A's long reply did not start: {running_events}")
    model = next(json.loads(d) for _, _, n, d in running_events if n == "model")
    job_running = model.get("jobId") or model.get("streamingSessionId")
    chunk_id = next(i for _, i, n, _ in running_events if n == "chunk")
    ids_running = dict(ids, job=job_running, jobLabel="A's running job", event=chunk_id, moreJobs=[])
    secrets_of_a.append(secret_3.split(" ")[0])
    before = {"A's title": session_view(tok_a, session)["title"], "B's account": account_view(tok_b),
              "job stream": job_stream_state(), "B's job records": jobs_of(user_b)}
    matrix_started = time.monotonic()
    run_matrix("running", callers, ids_running, nonexistent, secrets_of_a, user_a)
    matrix_ended = time.monotonic()
    job_after = call("GET", f"{API}/api/jobs/{job_running}", tok_a).json() or {}
    if job_after.get("status") != "running":
        violation(f"[running] A's job {job_running} is {job_after.get('status')} after the others' calls (it runs ~50 s): "
                  f"{json.dumps(job_after)[:300]}")
    ends = [(t, n, d) for t, _, n, d in running_events if n in ("complete", "error", "reset")]
    if ends:
        violation(f"[running] A's stream got {ends[0][1]} {ends[0][2][:200]} during the others' calls")
    else:
        print(f"idor-check: ok: [running] A's reply ran through the others' calls ({matrix_ended - matrix_started:.1f} s) undisturbed")
    after = {"A's title": session_view(tok_a, session)["title"], "B's account": account_view(tok_b),
             "job stream": job_stream_state(), "B's job records": jobs_of(user_b)}
    for label in before:
        compare(f"[running] {label}", before[label], after[label])
    # A stops its own reply: the owner's cancel works (so the others' 404 meant something).
    answer = call("POST", f"{API}/api/chat/sessions/{session}/cancel", tok_a)
    streamer.join(60)
    ends = [(n, json.loads(d)) for _, _, n, d in running_events if n in ("complete", "error")]
    if answer.status != 200 or not ends or ends[-1][1].get("stopReason") != "cancelled":
        violation(f"[running] A's own cancel: {answer.status} {answer.text[:200]}, A's stream ended {ends[-1:] or 'without an end'}")

    # The supervisor's observer saw A's jobs, and no other job's.
    time.sleep(0.5)
    stop_observer.set()
    observer.join(10)
    seen = observed[0].events() if observed else []
    jobs_seen = {json.loads(d).get("jobId") for _, n, d in seen if n in ("model", "complete")}
    if not seen or seen[0][1] != "observer" or job_running not in jobs_seen or not jobs_seen <= {job_async, job_stream, job_running}:
        violation(f"supervisor's observer of A's session: events {[n for _, n, _ in seen][:10]}, jobs {sorted(j or '-' for j in jobs_seen)}")
    else:
        print(f"idor-check: ok: the supervisor observed A's session ({len(seen)} events, only A's jobs)")

    width = [7, 10, 6, 38, 13, 16, 28, 24, 9]
    header = ("phase", "caller", "method", "route", "variant", "target", "answer", "expected", "verdict")
    print(" ".join(h.ljust(w) for h, w in zip(header, width)))
    for row in rows:
        print(" ".join(str(c).ljust(w) for c, w in zip(row, width)))
    print(f"idor-check: {len(rows)} calls on {len({(r[2], r[3]) for r in rows if r[4] != 'undocumented'})} operations, "
          f"{len(violations)} violations")
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()
