#!/usr/bin/env python3
"""schemathesis over chat-api's served OpenAPI document, once with a valid token of each role.

schemathesis_check.py API_URL OUT_DIR   (env: JWT_ACCESS_SECRET, ACCOUNTING_URL; optional FUZZ_MAX_EXAMPLES
    (default 12 per operation and phase), FUZZ_SEED (default fixed: the same cases each run), FUZZ_ROLES
    (default enduser,supervisor,admin), FUZZ_CHECKS (default the three below; `all` for exploring),
    FUZZ_REQUEST_TIMEOUT (default 3 s))

For each role: credits allocated through the accounting stand-in, then real resources of the caller's own made
first (sessions, a finished job), which this file, loaded by schemathesis as its hooks module, mixes into the
generated path parameters, so that the fuzzer reaches the code behind the ownership checks (bodies, models,
generations, resumes) and not only 400/404. Every operation of the document, every phase (examples, coverage,
fuzzing, stateful), positive and negative data, checks not_a_server_error, status_code_conformance and
response_schema_conformance. The one hook rule besides ids: GET .../observe keeps its generated (mostly absent)
session ids, because a real one is an event stream that never ends, which schemathesis would wait for until
its request timeout and report as a failure of the check, not of the API.

Every failure schemathesis reports (its own lines, with a curl command that reproduces it) is kept in
OUT_DIR/<role>.txt and summed up here; exit status 1 when any role's run found one."""
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

FUZZ_IDS = "HOSTILE_FUZZ_IDS"


def token(user, role, ttl=3600):
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()
    now = int(time.time())
    head = part({"alg": "HS256", "typ": "JWT"}) + "." + part({"sub": user, "userId": user, "role": role, "iat": now, "exp": now + ttl})
    key = os.environ["JWT_ACCESS_SECRET"].encode()
    return head + "." + base64.urlsafe_b64encode(hmac.new(key, head.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()


# ------------------------------------------------------------------------------------ the hooks (schemathesis)
if __name__ != "__main__" and os.environ.get(FUZZ_IDS):
    import schemathesis
    from hypothesis import strategies as st

    _ids = json.loads(os.environ[FUZZ_IDS])

    @schemathesis.hook
    def flatmap_path_parameters(context, path_parameters):
        """Each generated value, or the same with the caller's own session or job in place of the id."""
        operation = context.operation
        if operation is None or operation.path.endswith("/observe") or not isinstance(path_parameters, dict):
            return st.just(path_parameters)
        if "{jobId}" in operation.path:
            name, pool = "jobId", _ids["jobs"]
        elif "{id}" in operation.path:
            name, pool = "id", _ids["deletable"] if operation.method.upper() == "DELETE" else _ids["sessions"]
        else:
            return st.just(path_parameters)
        return st.one_of(st.just(path_parameters), st.sampled_from(pool).map(lambda real: {**path_parameters, name: real}))


# ---------------------------------------------------------------------------------------------- the driver
def call(method, url, bearer, body=None, headers=None):
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Authorization", "Bearer " + bearer)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def prepare(api, role, run, admin):
    """The caller's token, credits and own resources: 4 sessions to use, 3 to be deleted, one finished job."""
    user = f"fuzz-{role}-{run}"
    bearer = token(user, role)
    status, text = call("POST", os.environ["ACCOUNTING_URL"].rstrip("/") + "/api/credits/allocate", admin,
                        {"targetUserId": user, "credits": 10_000_000, "expiryDays": 1, "notes": "schemathesis-check"})
    if status != 201:
        sys.exit(f"schemathesis-check: allocating credits to {user} failed: {status} {text}")
    sessions = []
    for number in range(7):
        status, text = call("POST", api + "/api/chat/sessions", bearer, {"title": f"fuzz {role} {number}"})
        if status != 201:
            sys.exit(f"schemathesis-check: creating a session for {user} failed: {status} {text}")
        sessions.append(json.loads(text)["sessionId"])
    status, text = call("POST", f"{api}/api/chat/sessions/{sessions[0]}/messages", bearer, {"message": "hello [[tokens:3]]"},
                        {"Prefer": "respond-async"})
    if status != 202:
        sys.exit(f"schemathesis-check: {user}'s first job failed: {status} {text}")
    job = json.loads(text)["jobId"]
    for _ in range(300):
        status, text = call("GET", f"{api}/api/jobs/{job}", bearer)
        if json.loads(text).get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.1)
    return user, bearer, {"sessions": sessions[:4], "deletable": sessions[4:], "jobs": [job]}


def failures_of(text):
    """The failure blocks of schemathesis' report: from each `_____ METHOD /path _____` heading to the next."""
    blocks, current = [], None
    for line in text.split("\n"):
        if line.startswith("_") and line.rstrip().endswith("_") and " " in line.strip("_ "):
            current = [line.strip("_ ")]
            blocks.append(current)
        elif line.startswith("=") and current is not None:
            current = None
        elif current is not None:
            current.append(line)
    return [block for block in blocks if block[0].split(" ")[0] in ("GET", "POST", "PUT", "DELETE", "PATCH") or block[0] == "Stateful tests"]


def condensed(block):
    """A failure block without the schemas it quotes: the operation, each failure code with its first line, the
    answer's status, and the reproducing curl command (long lines cut; the whole block is in OUT_DIR/<role>.txt)."""
    out, lines, keep_next = [block[0]], block[1:], 0
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("- ST") or stripped.startswith("Runtime Error") or stripped.startswith("Network Error"):
            out.append("  " + stripped)
            keep_next = 1
        elif keep_next and stripped:
            out.append("      " + stripped)
            keep_next = 0
        elif re.match(r"^\[\d{3}\] ", stripped):
            body = next((l.strip() for l in lines[number + 1:number + 3] if l.strip()), "")
            out.append(f"  answer: {stripped} {body}")
        elif stripped.startswith("curl "):
            out.append("  reproduce: " + stripped)
    return "\n".join(line if len(line) < 700 else line[:600] + f"...<{len(line) - 600} more characters>" for line in out)


def main():
    api, out = sys.argv[1].rstrip("/"), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    run = secrets.token_hex(3)
    admin = token(f"fuzz-allocator-{run}", "admin")
    roles = os.environ.get("FUZZ_ROLES", "enduser,supervisor,admin").split(",")
    examples = os.environ.get("FUZZ_MAX_EXAMPLES", "12")
    seed = os.environ.get("FUZZ_SEED", "20261130")  # fixed, so that a run and its findings repeat
    schemathesis = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    results = []
    for role in roles:
        user, bearer, ids = prepare(api, role, run, admin)
        environment = dict(os.environ, SCHEMATHESIS_HOOKS=os.path.abspath(__file__), **{FUZZ_IDS: json.dumps(ids)},
                           NO_COLOR="1", COLUMNS="160")
        # One worker: two threads of hypothesis parsing sources at once trip CPython 3.11's AST recursion-depth
        # bug (gh-106905: "AST constructor recursion depth mismatch"). The request timeout bounds an observe
        # stream, which never ends by itself (schemathesis checks the events it got by then).
        command = [schemathesis, "run", api + "/openapi.json", "--header", f"Authorization: Bearer {bearer}",
                   "--checks", os.environ.get("FUZZ_CHECKS", "not_a_server_error,status_code_conformance,response_schema_conformance"),
                   "--max-examples", examples, "--seed", seed, "--workers", "1",
                   "--request-timeout", os.environ.get("FUZZ_REQUEST_TIMEOUT", "3"),
                   "--suppress-health-check", "all", "--no-color", "--output-truncate", "false",
                   "--report", "junit,ndjson", "--report-dir", os.path.join(out, role)]
        started = time.monotonic()
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900)
        took = time.monotonic() - started
        text = (result.stdout + result.stderr).replace(bearer, "<" + role + " token>")
        with open(os.path.join(out, f"{role}.txt"), "w") as log:
            log.write(text)
        blocks = failures_of(text)
        phases = [line.strip() for line in text.split("\n") if re.match(r"^ \S+\s+(Examples|Coverage|Fuzzing|Stateful) \(in", line)]
        closing = next((line.strip("= ") for line in reversed(text.split("\n")) if line.startswith("=")), "(no summary)")
        print(f"schemathesis-check: ==> {role} ({user}), seed {seed}, {took:.0f} s, exit {result.returncode}: {closing}")
        print("  phases: " + "; ".join(re.sub(r"^\S+\s+", "", p) for p in phases))
        for block in blocks:
            print(condensed(block))
        trouble = result.returncode not in (0, 1) or (result.returncode == 1 and not blocks)
        if trouble:  # exit 1 is "failures found"; anything else, or 1 with none shown, is schemathesis' own trouble
            print("\n".join(text.split("\n")[-40:]))
        results.append((role, len(blocks), trouble or result.returncode != 0 or bool(blocks)))
    for role, count, failed in results:
        print(f"schemathesis-check: {role}: {count} failing operations (whole report: {out}/{role}.txt)")
    bad = sum(1 for _, _, failed in results if failed)
    print(f"schemathesis-check: {len(results) - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
