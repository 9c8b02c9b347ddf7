#!/usr/bin/env python3
"""Fault-injection harness for the chat service, with real processes (run by scripts/faults.sh).

faults.sh starts the Bedrock emulator (3050) and the auth stand-in (3051); this script starts, kills and
restarts everything else: Redis (6410, AOF), SecantusDB (27048), the accounting stand-in (3052), chat-api on
3053 and 3054 and chat-worker with metrics on 3055-3058. Each fault of docs/reliability.md runs against
fresh chat sessions (one generation per session), then the harness reads back what survived: the events each
client saw, the messages the API and MongoDB hold, the reservation of every job in the accounting stand-in's
ledger, the user's balance and usage, and Redis (open jobs, parked settlements and turns, the queue).

Each assertion prints PASS or FAIL; the exit status is 1 when any failed. The table of docs/reliability.md
(between `<!-- faults:begin -->` and `<!-- faults:end -->`) is rewritten by a long run, or by a short one with
FAULTS_WRITE_DOCS=1. Standard library only, plus pymongo from .venv for the direct MongoDB read.
"""

import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)
MODE = os.environ.get("FAULTS_MODE", "short")
LONG = MODE == "long"
DATA = os.environ.get("FAULTS_DATA", os.path.join(ROOT, ".data", "faults"))
BIN = os.environ.get("BIN_DIR", os.path.join(ROOT, ".build", "debug"))
ONLY = {int(x) for x in os.environ.get("FAULTS_ONLY", "").split(",") if x.strip()}
WRITE_DOCS = LONG or os.environ.get("FAULTS_WRITE_DOCS") == "1"
SEED = int(os.environ.get("FAULTS_SEED", str(int(time.time()))))
RNG = random.Random(SEED)

REDIS_PORT, MONGO_PORT, EMULATOR_PORT, AUTH_PORT, ACCOUNTING_PORT = 6410, 27048, 3050, 3051, 3052
API_PORTS = [3053, 3054]
WORKER_PORTS = [3055, 3056, 3057, 3058]
MONGO_DB = "chat_faults"
JOB_STREAM = os.environ.get("JOB_STREAM", "chat:jobs")
GROUP = "chat-workers"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
USER, PASSWORD = "user1", "User1@123"
ADMIN, ADMIN_PASSWORD = "admin", "admin@admin"
VISIBILITY_MS = 5000

STARTED = time.monotonic()


def log(text):
    print(f"[{time.monotonic() - STARTED:7.1f}s] {text}", flush=True)


class Deadline(Exception):
    pass


def wait_until(what, predicate, timeout, interval=0.2):
    """Polls `predicate` until it returns a truthy value, which is returned; raises Deadline after `timeout` s."""
    end = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - a dependency may be down while we wait
            last_error = error
        if time.monotonic() >= end:
            raise Deadline(f"{what}: not within {timeout:.0f}s" + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------------
# Redis: a minimal RESP client, one connection per call (a restarted Redis needs nothing reconnected).


class RedisError(Exception):
    pass


def _resp_read(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_resp_read(f) for _ in range(n)]
    raise RedisError(f"unexpected reply {line!r}")


def redis(*args, timeout=5):
    with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=timeout) as s:
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        s.sendall(b"".join(parts))
        with s.makefile("rb") as f:
            return _resp_read(f)


def redis_hash(key):
    flat = redis("HGETALL", key) or []
    return dict(zip(flat[0::2], flat[1::2]))


# ---------------------------------------------------------------------------------------------------------
# HTTP


def http_json(port, method, path, body=None, token=None, headers=None, timeout=15):
    """(status, headers, parsed JSON or text). Raises OSError / HTTPException when the server is unreachable."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Accept": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        if body is not None:
            h["Content-Type"] = "application/json"
            body = json.dumps(body)
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        raw = resp.read().decode("utf-8", "replace")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed
    finally:
        conn.close()


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------------
# Processes


class Proc:
    """One server process the harness starts, kills and restarts; its output appended to one log file."""

    all = []

    def __init__(self, name, argv, env=None, port=None, log_name=None):
        self.name, self.argv, self.env, self.port = name, argv, env or {}, port
        self.log_path = os.path.join(DATA, log_name or f"{name}.log")
        self.popen = None
        self.starts = 0
        Proc.all.append(self)

    def start(self, wait=True, timeout=60, extra_env=None):
        assert not self.alive(), f"{self.name} already running"
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra_env or {})
        logf = open(self.log_path, "ab")
        logf.write(f"\n===== faults.py: starting {self.name} =====\n".encode())
        logf.flush()
        self.popen = subprocess.Popen(self.argv, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        logf.close()
        self.starts += 1
        if wait and self.port:
            wait_until(f"{self.name} listening on {self.port}", lambda: self.dead_check() or port_open(self.port), timeout, 0.1)
        return self

    def dead_check(self):
        if self.popen and self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode} at start (see {self.log_path})")
        return False

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def signal(self, sig):
        if self.alive():
            self.popen.send_signal(sig)

    def kill(self):
        """SIGKILL, and wait for the process to be gone."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def terminate(self, timeout=30):
        """SIGTERM; returns the seconds it took to exit (SIGKILL after `timeout`, then returns None)."""
        if not self.alive():
            return 0.0
        began = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
            return time.monotonic() - began
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)
            return None

    def wait_exit(self, timeout):
        try:
            self.popen.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False


def stop_all():
    for p in reversed(Proc.all):
        if p.alive():
            p.terminate(15)


class Stack:
    def __init__(self):
        os.makedirs(os.path.join(DATA, "redis"), exist_ok=True)
        os.makedirs(os.path.join(DATA, "mongo"), exist_ok=True)
        self.redis = Proc("redis", ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir",
                                    os.path.join(DATA, "redis"), "--appendonly", "yes", "--save", "", "--daemonize", "no"],
                          port=REDIS_PORT)
        self.mongo = Proc("secantusd", [os.path.join(ROOT, ".venv/bin/secantusd-py"), "--host", "127.0.0.1", "--port", str(MONGO_PORT),
                                        "--storage-path", os.path.join(DATA, "mongo"), "--cache-size", "256M", "--standalone"],
                          port=MONGO_PORT)
        self.accounting = Proc("accounting", [os.path.join(BIN, "accounting-standin")], port=ACCOUNTING_PORT,
                               env={"PORT": str(ACCOUNTING_PORT), "ACCOUNTING_DATABASE_PATH": os.path.join(DATA, "accounting.sqlite3")})
        # One harness user stands for many users: rate limits and the per-user caps on streams and unfinished
        # generations are off (0 = no cap), so they never refuse what a fault needs to run.
        common = {"RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "info", "MAX_STREAMS_PER_USER": "0",
                  "MAX_OBSERVERS_PER_USER": "0", "MAX_GENERATIONS_PER_USER": "0"}
        self.apis = [Proc(f"chat-api-{port}", [os.path.join(BIN, "chat-api")], port=port, env=dict(common, PORT=str(port)))
                     for port in API_PORTS]
        self.workers = [Proc(f"chat-worker-{port}", [os.path.join(BIN, "chat-worker")], port=port,
                             env={"WORKER_METRICS_PORT": str(port), "JOB_VISIBILITY_TIMEOUT_MS": str(VISIBILITY_MS)})
                        for port in WORKER_PORTS]
        self.worker_env = {}
        self.api_env = {}
        self.generation = 0

    def start_worker(self, w, extra=None):
        self.generation += 1
        env = dict(self.worker_env)
        env.update(extra or {})
        env["WORKER_CONSUMER_NAME"] = f"w{w.port}-{self.generation}"
        w.consumer = env["WORKER_CONSUMER_NAME"]
        w.start(extra_env=env)
        wait_until(f"{w.name} ready", lambda: http_json(w.port, "GET", "/readyz", timeout=2)[0] == 200, 30)

    def start(self):
        self.redis.start()
        self.mongo.start()
        self.accounting.start()
        for a in self.apis:
            a.start()
        for w in self.workers[:2]:
            self.start_worker(w)
        for a in self.apis:
            wait_until(f"{a.name} ready", lambda a=a: http_json(a.port, "GET", "/readyz", timeout=2)[0] == 200, 30)

    def ensure(self, workers=2, worker_env=None, api_env=None):
        """The baseline every fault starts from: everything up, `workers` chat-workers with `worker_env`, the
        chat-api replicas with `api_env` (each restarted when its settings change)."""
        for p in (self.redis, self.mongo, self.accounting):
            if not p.alive():
                p.start()
        api_env = api_env or {}
        if api_env != self.api_env:
            for a in self.apis:
                a.terminate(40)
            self.api_env = api_env
        for a in self.apis:
            if not a.alive():
                a.start(extra_env=self.api_env)
        worker_env = worker_env or {}
        if worker_env != self.worker_env:
            for w in self.workers:
                w.terminate(40)
            self.worker_env = worker_env
        for i, w in enumerate(self.workers):
            if i < workers and not w.alive():
                self.start_worker(w)
            elif i >= workers and w.alive():
                w.terminate(40)
        for a in self.apis:
            wait_until(f"{a.name} ready", lambda a=a: http_json(a.port, "GET", "/readyz", timeout=2)[0] == 200, 60)

    def live_workers(self):
        return [w for w in self.workers if w.alive()]

    def live_api_ports(self):
        return [a.port for a in self.apis if a.alive()]


# ---------------------------------------------------------------------------------------------------------
# The emulator's deterministic reply (Sources/BedrockEmulator/Reply.swift): words drawn by xoshiro256** seeded
# with the SHA-256 of the last user message.

VOCABULARY = (
    "the quick river stone light over under green field signal garden window morning silver harbor quiet bright "
    "north south answer cloud forest paper engine circle market bridge winter summer copper orbit lantern meadow "
    "valley thread canvas anchor pocket ladder island mirror candle feather shadow planet rocket violet amber cedar "
    "delta ember falcon glacier horizon jasmine kernel lagoon marble nectar oasis pepper quartz ripple sparrow"
).split()
M64 = (1 << 64) - 1


def expected_reply(seed_text, words):
    digest = hashlib.sha256(seed_text.encode()).digest()
    s = [int.from_bytes(digest[i * 8:(i + 1) * 8], "big") for i in range(4)]
    if not any(s):
        s[0] = 1

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    out = []
    for _ in range(words):
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        out.append(VOCABULARY[result % len(VOCABULARY)])
    return " ".join(out)


# ---------------------------------------------------------------------------------------------------------
# Users and credits


class Accounts:
    def __init__(self):
        self.token = self.admin = None

    def login(self):
        def one(user, password):
            status, _, body = http_json(AUTH_PORT, "POST", "/api/auth/login", {"username": user, "password": password})
            assert status == 200, f"login {user}: {status} {body}"
            return body["accessToken"]

        self.token, self.admin = one(USER, PASSWORD), one(ADMIN, ADMIN_PASSWORD)

    def login_as(self, user, password):
        status, _, body = http_json(AUTH_PORT, "POST", "/api/auth/login", {"username": user, "password": password})
        assert status == 200, f"login {user}: {status} {body}"
        return body["accessToken"]

    def allocate(self, credits):
        status, _, body = http_json(ACCOUNTING_PORT, "POST", "/api/credits/allocate",
                                    {"targetUserId": USER, "credits": credits, "notes": "faults.py"}, token=self.admin)
        assert status == 201, f"allocate: {status} {body}"

    def balance(self):
        status, _, body = http_json(ACCOUNTING_PORT, "GET", "/api/credits/balance", token=self.token)
        assert status == 200, f"balance: {status} {body}"
        return body["totalCredits"], body.get("reservedCredits", 0)

    def usage(self):
        status, _, body = http_json(ACCOUNTING_PORT, "GET", "/api/usage/stats", token=self.token)
        assert status == 200, f"usage: {status} {body}"
        return body


def _catalog_entry():
    """MODEL's entry in the built-in catalog's source: its (input, output) credits per 1K tokens and its fallbacks."""
    text = open(os.path.join(ROOT, "Sources/ChatCore/BuiltInModels.swift")).read()
    start = text.find(f'id: "{MODEL}"')
    entry = text[start:text.find("ModelInfo(", start)] if start >= 0 else ""
    prices = re.search(r"inputCreditsPer1K: ([0-9.]+), outputCreditsPer1K: ([0-9.]+)", entry)
    fallbacks = re.search(r"fallbacks: \[([^\]]*)\]", entry)
    return ((float(prices.group(1)), float(prices.group(2))) if prices else (None, None),
            len(re.findall(r'"[^"]+"', fallbacks.group(1))) if fallbacks else 0)


PRICES, FALLBACKS = _catalog_entry()


def price(input_tokens, output_tokens):
    """What the accounting stand-in charges for these tokens (Sources/AccountingStandin/Pricing.swift): prices
    in integer millionths, rounded up once to whole credits."""
    if PRICES[0] is None:
        return None
    scaled = input_tokens * round(PRICES[0] * 1_000_000) + output_tokens * round(PRICES[1] * 1_000_000)
    return (scaled + 999_999_999) // 1_000_000_000


def ledger_rows(reservation_id):
    """The accounting stand-in's settled entries of a reservation (and of its late charge), from its SQLite file."""
    path = os.path.join(DATA, "accounting.sqlite3")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT session_id, status, credits, input_tokens, output_tokens FROM usage WHERE session_id IN (?, ?)",
                          (reservation_id, reservation_id + ":late")).fetchall()
    finally:
        db.close()
    return [dict(zip(("sessionId", "status", "credits", "inputTokens", "outputTokens"), r)) for r in rows]


def mongo_messages(session_ids):
    """Every stored message of these sessions, read from MongoDB directly (pymongo), by session id."""
    from bson import ObjectId
    from pymongo import MongoClient

    client = MongoClient(f"mongodb://127.0.0.1:{MONGO_PORT}", serverSelectionTimeoutMS=5000, directConnection=True)
    try:
        found = {}
        for doc in client[MONGO_DB]["messages"].find({"sessionId": {"$in": [ObjectId(s) for s in session_ids]}}):
            found.setdefault(str(doc["sessionId"]), []).append(doc)
        return found
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------------------
# A generation as a client sees it: one session, one streamed message, resumed on another replica with
# Last-Event-ID whenever the connection ends before `complete` or `error`.


class Generation:
    def __init__(self, h, label, words, tps, extra="", stream=True):
        self.h = h
        self.label = label
        self.message = f"{label} {uuid.uuid4().hex[:10]} [[tokens:{words}]] [[tps:{tps}]]{(' ' + extra) if extra else ''}"
        self.expected = expected_reply(self.message, words) if not extra else None
        self.session_id = None
        self.job_id = None
        self.status = None          # HTTP status of the starting request
        self.retry_after = None
        self.refusal = None         # body of a refused start
        self.events = []            # (id, type, data) in order received, over every connection
        self.ids_seen = set()
        self.duplicate_events = 0
        self.attempt_chunks = [[]]  # chunk texts of each run (a reset starts a new one)
        self.index_errors = []      # chunk indexes out of order within a run: gaps or repeats
        self.resets = 0
        self.reset_times = []
        self.connections = 0
        self.resumes = 0
        self.disconnects = []       # why each connection ended early
        self.complete = None
        self.error = None
        self.ended = None           # "complete", "error" or None (hung / gave up)
        self.t_start = self.t_first_chunk = self.t_end = None
        self.thread = None
        self.last_id = None

    # -- client

    def create_session(self, port):
        status, _, body = http_json(port, "POST", "/api/chat/sessions", {"title": self.label[:60], "modelId": MODEL},
                                    token=self.h.accounts.token)
        if status != 201:
            raise RuntimeError(f"create session: {status} {body}")
        self.session_id = body["sessionId"]

    def start(self, ports, deadline_s):
        self.thread = threading.Thread(target=self._run_safe, args=(list(ports), deadline_s), daemon=True)
        self.thread.start()
        return self

    def _run_safe(self, ports, deadline_s):
        try:
            self._run(ports, time.monotonic() + deadline_s)
        except Exception as error:  # noqa: BLE001
            self.disconnects.append(f"harness error: {error!r}")
        finally:
            self.t_end = time.monotonic()

    @property
    def text(self):
        return "".join(self.attempt_chunks[-1])

    def chunks_seen(self):
        return sum(len(c) for c in self.attempt_chunks)

    def _run(self, ports, deadline):
        self.t_start = time.monotonic()
        port_index = 0
        first = True
        while time.monotonic() < deadline:
            port = ports[port_index % len(ports)]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=40)
            headers = {"Authorization": f"Bearer {self.h.accounts.token}", "Accept": "text/event-stream"}
            try:
                if first:
                    headers["Content-Type"] = "application/json"
                    conn.request("POST", f"/api/chat/sessions/{self.session_id}/stream",
                                 body=json.dumps({"message": self.message, "modelId": MODEL}), headers=headers)
                else:
                    if self.last_id is None:
                        self.disconnects.append("lost before any event id: cannot resume")
                        return
                    headers["Last-Event-ID"] = self.last_id
                    conn.request("GET", f"/api/chat/sessions/{self.session_id}/stream", headers=headers)
                    self.resumes += 1
                resp = conn.getresponse()
                self.connections += 1
                if resp.status != 200:
                    body = resp.read().decode("utf-8", "replace")
                    if first:
                        self.status = resp.status
                        self.retry_after = resp.getheader("Retry-After")
                        self.refusal = body
                        return
                    if resp.status == 204:
                        self.disconnects.append("resume answered 204 before the client saw the end")
                        return
                    self.disconnects.append(f"resume on {port}: {resp.status} {body[:200]}")
                    port_index += 1
                    time.sleep(0.3)
                    continue
                if first:
                    self.status = 200
                first = False
                if self._read(resp):
                    return
                self.disconnects.append(f"eof on {port}")
            except (OSError, http.client.HTTPException) as error:
                if first and self.status is None and isinstance(error, ConnectionRefusedError):
                    self.disconnects.append(f"refused on {port}")
                else:
                    self.disconnects.append(f"{type(error).__name__} on {port}")
                if first and self.connections > 0:
                    first = False
            finally:
                conn.close()
            port_index += 1
            time.sleep(0.1)
        self.disconnects.append("deadline: gave up")

    def _read(self, resp):
        """Reads SSE frames until the job's last event (True) or the connection's end (False)."""
        ev_id = ev_type = None
        data = []
        while True:
            line = resp.readline()
            if not line:
                return False
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if ev_type is not None:
                    if self._event(ev_id, ev_type, "\n".join(data)):
                        return True
                ev_id = ev_type = None
                data = []
            elif line.startswith(":"):
                continue
            elif line.startswith("id: "):
                ev_id = line[4:]
            elif line.startswith("event: "):
                ev_type = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])

    def _event(self, ev_id, ev_type, data):
        body = json.loads(data) if data else {}
        if ev_id is not None:
            if ev_id in self.ids_seen:
                self.duplicate_events += 1
                return False
            self.ids_seen.add(ev_id)
            self.last_id = ev_id
        self.events.append((ev_id, ev_type, body))
        if ev_type == "model":
            self.job_id = body.get("jobId")
        elif ev_type == "chunk":
            run = self.attempt_chunks[-1]
            if body.get("index") != len(run):
                self.index_errors.append((len(self.attempt_chunks), len(run), body.get("index")))
            run.append(body.get("content", ""))
            if self.t_first_chunk is None:
                self.t_first_chunk = time.monotonic()
        elif ev_type == "reset":
            self.resets += 1
            self.reset_times.append(time.monotonic())
            self.attempt_chunks.append([])
        elif ev_type == "complete":
            self.complete = body
            self.job_id = body.get("jobId", self.job_id)
            self.ended = "complete"
            return True
        elif ev_type == "error":
            if body.get("code") == "CLIENT_TOO_SLOW":
                self.disconnects.append("CLIENT_TOO_SLOW")
                return False
            self.error = body
            self.job_id = body.get("jobId", self.job_id)
            self.ended = "error"
            return True
        return False

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()


# ---------------------------------------------------------------------------------------------------------
# Assertions and the table


class Fault:
    def __init__(self, number, name, injected):
        self.number, self.name, self.injected = number, name, injected
        self.results = []  # (ok, text)
        self.runs = ""
        self.outcome = ""
        self.lost = ""
        self.notes = []

    def check(self, ok, text, evidence=""):
        ok = bool(ok)
        self.results.append((ok, text))
        print(f"  {'PASS' if ok else 'FAIL'}  [{self.number}] {text}" + (f"\n        evidence: {evidence}" if (evidence and not ok) else ""),
              flush=True)
        return ok

    def info(self, text):
        self.notes.append(text)
        print(f"  info  [{self.number}] {text}", flush=True)

    @property
    def passed(self):
        return all(ok for ok, _ in self.results) and bool(self.results)


class Harness:
    def __init__(self):
        self.stack = Stack()
        self.accounts = Accounts()
        self.faults = []
        self.reserved_before = 0

    # -- a batch of generations and the checks every fault shares

    def new_generations(self, label, n, words, tps, extra="", port=None):
        gens = []
        for i in range(n):
            g = Generation(self, f"{label}-{i}", words, tps, extra)
            g.create_session(port or API_PORTS[i % len(API_PORTS)])
            gens.append(g)
        return gens

    def settle_state(self, fault, gens, timeout=90):
        """Waits (with a deadline) until the service is quiet again: every job of `gens` final, no open job, no
        parked settlement or turn, nothing held in accounting. Returns the checks' evidence."""
        jobs = [g.job_id for g in gens if g.job_id]

        def quiet():
            open_jobs = redis("ZCARD", "chat:jobs:open")
            pending = redis("HLEN", "chat:settlements:pending")
            turns = redis("SCARD", "chat:turns:pending")
            _, reserved = self.accounts.balance()
            statuses = [redis("HGET", f"chat:job:{{{j}}}", "status") for j in jobs]
            not_final = [s for s in statuses if s not in ("completed", "failed", "cancelled")]
            return open_jobs == 0 and pending == 0 and turns == 0 and reserved <= self.reserved_before and not not_final

        began = time.monotonic()
        try:
            wait_until("the service to be quiet", quiet, timeout, 0.5)
            fault.check(True, f"service quiet again within {timeout}s (no open job, no parked settlement or turn, nothing reserved)")
            return time.monotonic() - began
        except Deadline as error:
            evidence = {
                "open": redis("ZRANGE", "chat:jobs:open", 0, -1, "WITHSCORES"),
                "settlements.pending": redis("HLEN", "chat:settlements:pending"),
                "turns.pending": redis("SMEMBERS", "chat:turns:pending"),
                "balance(total,reserved)": self.accounts.balance(),
            }
            fault.check(False, f"service quiet again within {timeout}s", f"{error}; {evidence}")
            return None

    def verify(self, fault, gens, balance_before, usage_before, allow_errors=False, expect_error=False):
        """The shared checks: each generation ended cleanly; what the client saw after its last reset is the
        emulator's reply, the `complete` text and the one stored reply; each reservation settled once; the
        balance moved by exactly the charges. Returns counts for the table."""
        ended = [g for g in gens if g.ended]
        hung = [g for g in gens if not g.ended]
        fault.check(not hung, f"every generation ended with complete or error ({len(ended)}/{len(gens)})",
                    "; ".join(f"{g.label} session={g.session_id} job={g.job_id} chunks={g.chunks_seen()} disconnects={g.disconnects[-3:]}"
                              for g in hung[:5]))
        completes = [g for g in gens if g.ended == "complete"]
        errors = [g for g in gens if g.ended == "error"]
        if expect_error:
            fault.check(not completes and len(errors) == len(gens), f"every generation ended with an error event ({len(errors)}/{len(gens)})",
                        [(g.label, g.complete and g.complete.get("content", "")[:40]) for g in completes])
        elif not allow_errors:
            fault.check(not errors, f"no generation failed ({len(errors)} errors)", [(g.label, g.job_id, g.error) for g in errors[:5]])
        bad_codes = [g for g in errors if not g.error.get("code") or not g.error.get("message") or g.error.get("code") == "STREAM_ENDED"]
        fault.check(not bad_codes, "every error event carries a code and a message (and is the job's own, not STREAM_ENDED)",
                    [(g.label, g.job_id, g.error) for g in bad_codes[:5]])
        dup = [g for g in gens if g.duplicate_events]
        fault.check(not dup, "no event delivered twice to a client (by event id, across reconnections)",
                    [(g.label, g.duplicate_events) for g in dup[:5]])
        idx = [g for g in gens if g.index_errors]
        fault.check(not idx, "chunk indexes contiguous from 0 within each run (no gap, no repeat without a reset)",
                    [(g.label, g.job_id, g.index_errors[:3], g.disconnects) for g in idx[:5]])
        wrong = [g for g in completes if g.text != g.complete.get("content")]
        fault.check(not wrong, "text seen after the last reset == the complete event's content",
                    [(g.label, g.job_id, g.text[-60:], g.complete.get("content", "")[-60:], g.resets, g.disconnects) for g in wrong[:5]])
        if not expect_error:
            wrong = [g for g in completes if g.expected is not None and g.complete.get("content") != g.expected]
            fault.check(not wrong, "complete content == the emulator's deterministic reply",
                        [(g.label, g.job_id, g.complete.get("content", "")[:60], g.expected[:60]) for g in wrong[:5]])

        # Stored messages, through the API and in MongoDB directly.
        stored_bad, api_bad = [], []
        sessions = [g.session_id for g in gens if g.session_id]
        try:
            in_mongo = mongo_messages(sessions)
        except Exception as error:  # noqa: BLE001
            in_mongo = None
            fault.check(False, "MongoDB readable for the stored-message check", repr(error))
        lost = duplicated = 0
        for g in gens:
            if g.status != 200:
                continue
            port = self.stack.live_api_ports()[0]
            status, _, body = http_json(port, "GET", f"/api/chat/sessions/{g.session_id}/messages", token=self.accounts.token)
            msgs = body.get("messages", []) if status == 200 else None
            docs = (in_mongo or {}).get(g.session_id, [])
            for source, items, role_key, bad in ((f"api", msgs, "role", api_bad), ("mongo", docs if in_mongo is not None else None, "role", stored_bad)):
                if items is None:
                    bad.append((g.label, source, status))
                    continue
                users = [m for m in items if m[role_key] == "user"]
                assistants = [m for m in items if m[role_key] == "assistant"]
                ok_user = len(users) == 1 and users[0]["content"] == g.message
                if g.ended == "complete":
                    ok_assistant = len(assistants) == 1 and assistants[0]["content"] == g.complete.get("content")
                    if source == "mongo":
                        lost += len(assistants) == 0
                        duplicated += max(0, len(assistants) - 1) + max(0, len(users) - 1)
                        lost += len(users) == 0
                elif g.ended == "error":
                    ok_assistant = len(assistants) <= 1
                    if source == "mongo":
                        duplicated += max(0, len(users) - 1) + max(0, len(assistants) - 1)
                        lost += len(users) == 0
                else:
                    ok_assistant = True
                if not (ok_user and ok_assistant):
                    bad.append((g.label, g.job_id, source, [(m[role_key], m["content"][:30], m.get("jobId")) for m in items]))
        fault.check(not api_bad, "the API shows each session's user message once and the reply once, as the client saw it", api_bad[:5])
        fault.check(not stored_bad, "MongoDB holds each user message once and each reply once, identical to the client's", stored_bad[:5])

        # Accounting: each job's reservation settled exactly once, and the balance moved by exactly the charges.
        usage_after = self.accounts.usage()  # waits for the stand-in's archive of every settlement answered so far
        total_after, reserved_after = self.accounts.balance()
        settle_bad, charges, failed_charged, failed_refunded = [], 0, [], []
        for g in gens:
            if g.status != 200:
                continue
            if not g.job_id:
                settle_bad.append((g.label, "no job id seen"))
                continue
            record = redis_hash(f"chat:job:{{{g.job_id}}}")
            reservation = record.get("reservationId")
            rows = ledger_rows(reservation) if reservation else []
            finalized = [r for r in rows if r["status"] == "finalized"]
            charges += sum(r["credits"] for r in rows)
            if len(finalized) != 1 or len(rows) != 1:
                settle_bad.append((g.label, g.job_id, record.get("status"), rows))
            elif g.ended == "complete":
                r = finalized[0]
                # A settlement still parked when `complete` was sent says so (settlementPending) and cannot know its
                # credits yet: it is held to the catalog's price of the tokens instead.
                shown = (price(g.complete.get("inputTokens", 0), g.complete.get("outputTokens", 0))
                         if g.complete.get("settlementPending") else g.complete.get("creditsCharged"))
                if (r["credits"] != shown or r["outputTokens"] != g.complete.get("outputTokens")
                        or r["inputTokens"] != g.complete.get("inputTokens")):
                    settle_bad.append((g.label, g.job_id, "ledger differs from complete", r,
                                       {k: g.complete.get(k) for k in ("creditsCharged", "inputTokens", "outputTokens")}))
            elif g.ended == "error":
                # A failed job is refunded, unless a run already settled what it had shown (architecture.md):
                # then it is charged for exactly that text (one token a word here). Never more; nothing at all
                # when nothing was delivered.
                r = finalized[0]
                delivered = len(g.attempt_chunks[-1])
                partial = price(r["inputTokens"], delivered) if delivered else 0
                refunded = r["credits"] == 0 and r["outputTokens"] == 0
                charged_shown = delivered > 0 and r["credits"] == partial and r["outputTokens"] == delivered
                if not (refunded or charged_shown):
                    settle_bad.append((g.label, g.job_id, f"failed job: {delivered} chunks delivered; refund or {partial} credits expected", r))
                elif charged_shown:
                    failed_charged.append(g)
                else:
                    failed_refunded.append(g)
        fault.check(not settle_bad, "each job's reservation settled exactly once in the ledger (finalized, no late or second charge), "
                    "at the complete event's credits and tokens (a settlement pending at `complete`: the catalog price; a failed job: "
                    "refunded, or charged exactly what it delivered)", settle_bad[:5])
        spent = balance_before - total_after
        used = usage_after["totalCreditsUsed"] - usage_before["totalCreditsUsed"]
        fault.check(spent == charges == used and reserved_after == self.reserved_before,
                    f"balance before - after == charges, to the credit ({balance_before} - {total_after} = {spent}; ledger {charges}; "
                    f"usage stats {used}; reserved now {reserved_after}, before {self.reserved_before})")
        requests = usage_after["totalRequests"] - usage_before["totalRequests"]
        started = len([g for g in gens if g.status == 200])
        fault.check(requests == started, f"usage stats count one settlement per started job ({requests} for {started})")
        failed = redis("HLEN", "chat:settlements:failed")
        fault.check(failed == 0, f"no settlement given up (chat:settlements:failed has {failed})",
                    redis("HGETALL", "chat:settlements:failed") if failed else "")
        if expect_error:
            fault.check(charges == 0 and spent == 0, f"nothing charged for the failed generations ({charges} credits)")
        if errors:
            fault.info(f"failed jobs: {len(failed_charged)} charged for the text they had delivered, {len(failed_refunded)} refunded "
                       f"(of which {sum(1 for g in failed_refunded if g.attempt_chunks[-1])} had delivered text); "
                       f"codes {sorted({g.error.get('code') for g in errors})}")
        return {"complete": len(completes), "error": len(errors), "hung": len(hung), "lost": lost, "duplicated": duplicated,
                "credits_off": abs(spent - charges) + abs(used - charges), "charges": charges}

    def baseline(self, fault):
        """The balance and usage a fault starts from. Credits an earlier fault left reserved (a broken promise
        of that fault, already reported) are waited for briefly, then carried as this fault's starting point."""
        try:
            wait_until("nothing reserved before the fault", lambda: self.accounts.balance()[1] == 0, 30, 0.5)
        except Deadline:
            pass
        total, reserved = self.accounts.balance()
        self.reserved_before = reserved
        if reserved:
            fault.info(f"{reserved} credits were still reserved by an earlier fault at the start; this fault is checked against that")
        return total, self.accounts.usage()

    @staticmethod
    def join_all(gens, timeout):
        end = time.monotonic() + timeout
        for g in gens:
            g.join(max(0.1, end - time.monotonic()))

    # -- setup

    def setup(self):
        log(f"starting the stack (mode {MODE}, seed {SEED}, binaries {BIN})")
        self.stack.start()
        self.accounts.login()
        self.accounts.allocate(1_000_000)
        # A first generation makes sure the whole path works before any fault.
        g = self.new_generations("warmup", 1, 5, 0)[0]
        g.start(API_PORTS, 60).join(70)
        if g.ended != "complete" or g.complete.get("content") != g.expected:
            raise RuntimeError(f"the warm-up generation failed: {g.ended} {g.error} {g.complete} {g.disconnects} expected {g.expected!r}")
        log("stack up; warm-up generation complete")


# ---------------------------------------------------------------------------------------------------------
# The faults


def pending_by_consumer():
    """Queue entries taken and not acknowledged, by consumer name."""
    out = {}
    try:
        rows = redis("XPENDING", JOB_STREAM, GROUP, "-", "+", 1000) or []
    except RedisError:
        return out
    for entry_id, consumer, _idle, _deliveries in rows:
        out.setdefault(consumer, []).append(entry_id)
    return out


def fault_worker_kill(h, fault):
    kills = 20 if LONG else 5
    st = h.stack
    st.ensure(workers=2)
    total, usage = h.baseline(fault)
    gens, killed_mid, restarts_ok = [], 0, 0
    in_flight = 8
    stop = threading.Event()
    lock = threading.Lock()

    def feeder():
        n = 0
        while not stop.is_set():
            with lock:
                running = [g for g in gens if not g.ended and g.thread.is_alive()]
                if len(running) < in_flight:
                    g = Generation(h, f"f1-{n}", RNG.randint(30, 60), 10)
                    try:
                        g.create_session(API_PORTS[n % 2])
                    except Exception as error:  # noqa: BLE001
                        log(f"f1: session create failed: {error}")
                        time.sleep(0.5)
                        continue
                    n += 1
                    gens.append(g.start(API_PORTS, 180))
            time.sleep(0.2)

    t = threading.Thread(target=feeder, daemon=True)
    t.start()
    time.sleep(2)
    for k in range(kills):
        time.sleep(RNG.uniform(2.0, 8.0) if LONG else RNG.uniform(0.5, 4.0))
        live = st.live_workers()
        try:
            busy = wait_until("a worker running jobs", lambda: (lambda b: b if any(b.get(w.consumer) for w in live) else None)(pending_by_consumer()), 15, 0.1)
        except Deadline:
            busy = {}
        candidates = [w for w in live if busy.get(w.consumer)] or live
        victim = RNG.choice(candidates)
        running = len(busy.get(victim.consumer, []))
        killed_mid += running > 0
        log(f"f1: kill {k + 1}/{kills}: SIGKILL {victim.name} ({victim.consumer}, {running} jobs running)")
        victim.kill()
        try:
            st.start_worker(victim)
            restarts_ok += 1
        except Exception as error:  # noqa: BLE001
            fault.check(False, f"killed worker restarts", repr(error))
    stop.set()
    t.join(5)
    h.join_all(gens, 200)
    fault.check(restarts_ok == kills, f"each killed worker restarted and became ready ({restarts_ok}/{kills})")
    fault.check(killed_mid >= max(1, kills - 1), f"kills landed on a worker with running jobs ({killed_mid}/{kills})")
    h.settle_state(fault, gens)
    r = h.verify(fault, gens, total, usage, allow_errors=True)
    resets = sum(1 for g in gens if g.resets and g.ended == "complete")
    fault.check(any(g.resets for g in gens), f"clients saw reset events for re-run jobs ({sum(1 for g in gens if g.resets)} jobs)")
    fault.runs = f"{kills} kills, {len(gens)} streams"
    codes = ", ".join(sorted({(g.error or {}).get("code", "") for g in gens if g.error}))
    fault.outcome = (f"{r['complete']} complete ({resets} of them re-run after a `reset`), {r['error']} failed cleanly"
                     f"{f' ({codes}: killed on every one of their 3 attempts)' if codes else ''}, {r['hung']} hung; "
                     f"{killed_mid}/{kills} kills hit running jobs")
    fault.lost = f"{r['lost']} lost, {r['duplicated']} duplicated replies; credits off by {r['credits_off']}"


class Observer:
    """A supervisor watching a session (`/observe`) on one replica; records when its stream ended and how."""

    def __init__(self, port, session_id, token):
        self.port, self.session_id, self.token = port, session_id, token
        self.status = None
        self.ended_at = None
        self.how = None
        self.events = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request("GET", f"/api/chat/sessions/{self.session_id}/observe",
                         headers={"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"})
            resp = conn.getresponse()
            self.status = resp.status
            while True:
                line = resp.readline()
                if not line:
                    self.how = "eof"
                    break
                if line.startswith(b"event: "):
                    self.events += 1
        except (OSError, http.client.HTTPException) as error:
            self.how = type(error).__name__
        finally:
            self.ended_at = time.monotonic()
            conn.close()


def fault_api_term(h, fault):
    """SIGTERM to the replica serving live streams (and a supervisor's observer stream). Promise: it stops
    within API_DRAIN_BOUND s, and its clients resume on the other replica with Last-Event-ID. A replica still
    running at the bound is SIGKILLed, as an orchestrator would, so the resume path is exercised either way."""
    rounds = 10 if LONG else 1
    bound = float(os.environ.get("API_DRAIN_BOUND", "10"))
    st = h.stack
    st.ensure(workers=2)
    total, usage = h.baseline(fault)
    supervisor = h.accounts.login_as("supervisor1", "Supervisor1@")
    gens, cut, resumed, exit_times, lingered, observers_cut = [], 0, 0, [], 0, 0
    for r in range(rounds):
        victim = st.apis[r % 2]
        other = st.apis[(r + 1) % 2]
        # Replies of about 15 s: still streaming when the drain bound passes.
        batch = h.new_generations(f"f2-r{r}", 6, 150, 10, port=victim.port)
        for g in batch:
            g.start([victim.port, other.port], 150)
        gens += batch
        observer = Observer(victim.port, batch[0].session_id, supervisor)
        try:
            wait_until("every stream to show 3 chunks", lambda: all(g.chunks_seen() >= 3 or g.ended for g in batch), 30)
        except Deadline as error:
            fault.check(False, "streams under way before the SIGTERM", repr(error))
        log(f"f2: round {r + 1}/{rounds}: SIGTERM {victim.name} with {len(batch)} live streams and an observer")
        sent = time.monotonic()
        victim.signal(signal.SIGTERM)
        time.sleep(0.5)
        try:
            ready, _, _ = http_json(victim.port, "GET", "/readyz", timeout=2)
        except (OSError, http.client.HTTPException):
            ready = "refused"
        fault.check(ready != 200, f"the stopping replica is no longer ready for new work (/readyz: {ready})")
        exited = victim.wait_exit(bound)
        took = time.monotonic() - sent
        if not exited:
            lingered += 1
            live = sum(1 for g in batch if not g.ended)
            fault.check(False, f"{victim.name} exited within {bound:.0f} s of SIGTERM",
                        f"still running after {took:.1f} s with {live} of {len(batch)} streams open and the observer "
                        f"{'open' if observer.ended_at is None else 'closed'}; SIGKILLed")
            victim.kill()
        else:
            fault.check(True, f"{victim.name} exited within {bound:.0f} s of SIGTERM ({took:.1f} s)")
        exit_times.append(took)
        observer.thread.join(10)
        observers_cut += observer.ended_at is not None
        h.join_all(batch, 150)
        cut += sum(1 for g in batch if g.resumes)
        resumed += sum(1 for g in batch if g.resumes and g.ended)
        victim.start(extra_env=st.api_env)
    fault.check(cut > 0, f"live streams were cut and resumed on the other replica ({cut} cut, {resumed} resumed to their end)")
    nores = [g for g in gens if g.disconnects and not g.resumes]
    fault.check(not nores, "every cut stream could resume (it had an event id)", [(g.label, g.disconnects) for g in nores[:5]])
    h.settle_state(fault, gens)
    r = h.verify(fault, gens, total, usage)
    fault.runs = f"{rounds} SIGTERMs, {len(gens)} streams"
    fault.outcome = (f"{cut} streams cut and resumed with `Last-Event-ID` on the other replica, {r['complete']} complete, "
                     f"{r['error']} failed; " + (f"chat-api still running {bound:.0f} s after SIGTERM in {lingered}/{rounds} rounds "
                     f"(SIGKILLed)" if lingered else f"chat-api exited in {max(exit_times):.1f} s at most"))
    fault.lost = (f"{r['lost']} lost, {r['duplicated']} duplicated; "
                  + ("0 gaps" if not any(g.index_errors for g in gens) else "gaps seen"))


def fault_worker_term(h, fault):
    rounds = 6 if LONG else 1
    drain_ms = 4000
    st = h.stack
    st.ensure(workers=2, worker_env={"WORKER_DRAIN_TIMEOUT_MS": str(drain_ms)})
    total, usage = h.baseline(fault)
    gens, exits, finished_in_drain, taken_over, takeover_delays = [], [], 0, 0, []
    for r in range(rounds):
        short = h.new_generations(f"f3-r{r}-short", 3, 20, 10)   # about 2 s: within the drain timeout
        long_ = h.new_generations(f"f3-r{r}-long", 3, 100, 10)   # about 10 s: past it
        batch = short + long_
        for g in batch:
            g.start(API_PORTS, 120)
        gens += batch
        try:
            wait_until("every stream to show a chunk", lambda: all(g.chunks_seen() >= 1 or g.ended for g in batch), 30)
        except Deadline as error:
            fault.check(False, "streams under way before the SIGTERM", repr(error))
        busy = pending_by_consumer()
        victim = max(st.live_workers(), key=lambda w: len(busy.get(w.consumer, [])))
        held = set(busy.get(victim.consumer, []))
        held_jobs = [g for g in batch if redis("HGET", f"chat:job:{{{g.job_id}}}", "entryId") in held]
        log(f"f3: round {r + 1}/{rounds}: SIGTERM {victim.name} running {len(held_jobs)} of the jobs")
        sent = time.monotonic()
        took = victim.terminate(drain_ms / 1000 + 30)
        exits.append(took)
        fault.check(took is not None and took <= drain_ms / 1000 + 5,
                    f"{victim.name} exited within the drain timeout (+5 s): {took if took is None else round(took, 1)} s")
        h.join_all(batch, 120)
        for g in held_jobs:
            if g.ended == "complete" and not g.resets:
                finished_in_drain += 1
            elif g.ended == "complete":
                taken_over += 1
                takeover_delays.append(g.reset_times[0] - sent)
        short_held = [g for g in held_jobs if g in short]
        bad = [g for g in short_held if g.resets or g.ended != "complete"]
        fault.check(not bad, f"jobs shorter than the drain finished on the stopping worker, no re-run ({len(short_held) - len(bad)}/{len(short_held)})",
                    [(g.label, g.ended, g.resets) for g in bad])
        st.start_worker(victim)
    fault.check(finished_in_drain + taken_over > 0, f"the stopped worker held jobs ({finished_in_drain} finished in the drain, "
                f"{taken_over} taken over by the other worker)")
    h.settle_state(fault, gens)
    r = h.verify(fault, gens, total, usage)
    fault.runs = f"{rounds} SIGTERMs, {len(gens)} streams"
    delays = f", their `reset` {min(takeover_delays):.1f}-{max(takeover_delays):.1f} s after the SIGTERM" if takeover_delays else ""
    fault.outcome = (f"{finished_in_drain} running jobs finished within the {drain_ms / 1000:.0f} s drain, {taken_over} taken over "
                     f"by the other worker (`reset`, re-run{delays}); {r['complete']} complete, {r['error']} failed")
    fault.lost = f"{r['lost']} lost, {r['duplicated']} duplicated; credits off by {r['credits_off']}"


def fault_redis_restart(h, fault):
    rounds = 5 if LONG else 1
    st = h.stack
    st.ensure(workers=2)
    total, usage = h.baseline(fault)
    gens, downs = [], []
    for r in range(rounds):
        batch = h.new_generations(f"f4-r{r}", 6, 60, 10)
        for g in batch:
            g.start(API_PORTS, 150)
        gens += batch
        try:
            wait_until("every stream to show 3 chunks", lambda: all(g.chunks_seen() >= 3 or g.ended for g in batch), 30)
        except Deadline as error:
            fault.check(False, "streams under way before the restart", repr(error))
        log(f"f4: round {r + 1}/{rounds}: restarting Redis (SIGTERM, AOF) with {len(batch)} live streams")
        began = time.monotonic()
        took = st.redis.terminate(30)
        fault.check(took is not None, f"redis-server stopped on SIGTERM (in {took or 0:.1f} s)")
        time.sleep(1.0 if r % 2 == 0 else 5.0)  # the outage: 1 s, and 5 s in every second round of a long run
        st.redis.start()
        downs.append(time.monotonic() - began)
        h.join_all(batch, 150)
    for a in st.apis + st.workers[:2]:
        fault.check(a.alive(), f"{a.name} survived the Redis restart")
    h.settle_state(fault, gens)
    r = h.verify(fault, gens, total, usage, allow_errors=True)
    fault.runs = f"{rounds} restarts, {len(gens)} streams"
    resets = sum(1 for g in gens if g.resets and g.ended == "complete")
    fault.outcome = (f"Redis down {min(downs):.1f}-{max(downs):.1f} s; {r['complete']} complete ({resets} after a `reset`), "
                     f"{r['error']} failed cleanly, {r['hung']} hung")
    fault.lost = f"{r['lost']} lost, {r['duplicated']} duplicated; credits off by {r['credits_off']}"


def fault_mongo_stop(h, fault):
    rounds = 3 if LONG else 1
    st = h.stack
    st.ensure(workers=2)
    total, usage = h.baseline(fault)
    gens = []
    parked_max = 0
    for r in range(rounds):
        batch = h.new_generations(f"f5-r{r}", 6, 40, 10)
        for g in batch:
            g.start(API_PORTS, 150)
        gens += batch
        try:
            wait_until("every stream to show 2 chunks", lambda: all(g.chunks_seen() >= 2 or g.ended for g in batch), 30)
        except Deadline as error:
            fault.check(False, "streams under way before MongoDB stops", repr(error))
        log(f"f5: round {r + 1}/{rounds}: stopping SecantusDB for 10 s with {len(batch)} live streams")
        st.mongo.terminate(30)
        stop_at = time.monotonic()
        while time.monotonic() - stop_at < 10:
            try:
                parked_max = max(parked_max, redis("SCARD", "chat:turns:pending"))
            except Exception:  # noqa: BLE001
                pass
            time.sleep(0.5)
        st.mongo.start()
        log("f5: SecantusDB back on the same data directory")
        h.join_all(batch, 150)
    fault.check(parked_max > 0, f"turns were parked in chat:turns:pending while MongoDB was down (up to {parked_max})")
    h.settle_state(fault, gens, timeout=120)
    r = h.verify(fault, gens, total, usage)
    fault.runs = f"{rounds} stops, {len(gens)} streams"
    fault.outcome = (f"{r['complete']} complete, {r['error']} failed; up to {parked_max} turns parked in `chat:turns:pending` "
                     f"and stored once MongoDB was back")
    fault.lost = f"{r['lost']} lost, {r['duplicated']} duplicated messages"


def fault_accounting_stop(h, fault):
    rounds = 3 if LONG else 1
    st = h.stack
    st.ensure(workers=2)
    total, usage = h.baseline(fault)
    gens, parked_max, pending_flags = [], 0, 0
    for r in range(rounds):
        batch = h.new_generations(f"f6-r{r}", 6, 40, 10)
        for g in batch:
            g.start(API_PORTS, 150)
        gens += batch
        try:
            wait_until("every stream to show 2 chunks", lambda: all(g.chunks_seen() >= 2 or g.ended for g in batch), 30)
        except Deadline as error:
            fault.check(False, "streams under way before accounting stops", repr(error))
        log(f"f6: round {r + 1}/{rounds}: stopping the accounting stand-in with {len(batch)} live streams")
        st.accounting.terminate(30)
        stop_at = time.monotonic()
        # Down until every stream ended (their settlements must park), and at least 8 s.
        while time.monotonic() - stop_at < 8 or not all(g.ended or not g.thread.is_alive() for g in batch):
            parked_max = max(parked_max, redis("HLEN", "chat:settlements:pending"))
            if time.monotonic() - stop_at > 120:
                break
            time.sleep(0.5)
        parked_max = max(parked_max, redis("HLEN", "chat:settlements:pending"))
        pending_flags += sum(1 for g in batch if g.complete and g.complete.get("settlementPending"))
        st.accounting.start()
        log("f6: accounting back")
    fault.check(parked_max > 0, f"settlements were parked while accounting was down (up to {parked_max})")
    h.settle_state(fault, gens, timeout=120)
    r = h.verify(fault, gens, total, usage)
    fault.runs = f"{rounds} stops, {len(gens)} streams"
    fault.outcome = (f"{r['complete']} complete ({pending_flags} with `settlementPending`), {r['error']} failed; "
                     f"up to {parked_max} settlements parked, all retried")
    fault.lost = f"{r['lost']} lost, {r['duplicated']} duplicated; credits off by {r['credits_off']}"


def worker_metric(name, label_filter=""):
    total = 0.0
    for w in [w for w in HARNESS.stack.workers if w.alive()]:
        try:
            _, _, text = http_json(w.port, "GET", "/metrics", timeout=5)
        except OSError:
            continue
        for line in str(text).splitlines():
            if line.startswith(name) and label_filter in line and not line.startswith("#"):
                try:
                    total += float(line.rsplit(" ", 1)[1])
                except ValueError:
                    pass
    return total


def emulator_throttles():
    _, _, text = http_json(EMULATOR_PORT, "GET", "/metrics", timeout=5)
    n = 0.0
    for line in str(text).splitlines():
        if line.startswith("http_server_requests_total{") and "/model/" in line and 'status="429"' in line:
            try:
                n += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return n


def per_job_calls(calls, jobs):
    return f"{calls / max(1, jobs):.0f}"


def fault_throttle_storm(h, fault):
    st = h.stack
    st.ensure(workers=2)
    total, usage = h.baseline(fault)
    n = 6 if LONG else 3
    retries_before = worker_metric("chat_bedrock_retries_total", "Throttling")
    throttles_before = emulator_throttles()
    gens = h.new_generations("f7", n, 20, 10, extra="[[throttle]]")
    for g in gens:
        g.start(API_PORTS, 180)
    h.join_all(gens, 190)
    durations = sorted(round(g.t_end - g.t_start, 1) for g in gens if g.t_end)
    retries = worker_metric("chat_bedrock_retries_total", "Throttling") - retries_before
    throttles = emulator_throttles() - throttles_before
    h.settle_state(fault, gens)
    r = h.verify(fault, gens, total, usage, expect_error=True)
    codes = sorted({(g.error or {}).get("code") for g in gens if g.error})
    # The workers' own account of their retries: one `retrying Bedrock call` line per retry, with its delay.
    jobs = {g.job_id for g in gens if g.job_id}
    delays, job_attempts = {}, {}
    for w in st.workers:
        if not os.path.exists(w.log_path):
            continue
        for line in open(w.log_path, errors="replace"):
            if '"jobId"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("jobId") not in jobs:
                continue
            if entry.get("message") == "retrying Bedrock call":
                delays.setdefault(entry["jobId"], []).append(float(entry.get("delay", "0 seconds").split()[0]))
            if entry.get("message") == "generation failed":
                job_attempts[entry["jobId"]] = job_attempts.get(entry["jobId"], 0) + 1
    all_delays = [d for v in delays.values() for d in v]
    fault.check(len(all_delays) > 0 and len({round(d, 3) for d in all_delays}) > len(all_delays) // 2,
                f"retries back off with jitter: {len(all_delays)} retries logged, delays {min(all_delays or [0]):.2f}-{max(all_delays or [0]):.2f} s, "
                f"{len({round(d, 3) for d in all_delays})} distinct")
    fault.info(f"Bedrock calls per job = {per_job_calls(throttles, n)}; job attempts that failed on throttling per job: "
               f"{sorted(job_attempts.values())}; error messages: {sorted({(g.error or {}).get('message') for g in gens if g.error})}")
    fault.check(all(not g.chunks_seen() for g in gens), "no chunk reached a client")
    per_job = throttles / max(1, n)
    # Each attempt walks the model's fallback chain: FALLBACK_AFTER_ATTEMPTS (2) tries of each model but the last,
    # BEDROCK_MAX_ATTEMPTS (4) of the last.
    bound = (2 * FALLBACKS + 4) * 3
    fault.check(0 < per_job <= bound, f"bounded: {throttles:.0f} throttled Bedrock calls for {n} jobs ({per_job:.1f} per job; "
                f"at most (FALLBACK_AFTER_ATTEMPTS 2 x {FALLBACKS} fallbacks + BEDROCK_MAX_ATTEMPTS 4) x JOB_MAX_ATTEMPTS 3 = {bound})")
    fault.check(max(durations or [999]) < 120, f"the error reached every client within 120 s (slowest {max(durations or [0])} s)")
    fault.info(f"worker retries counted: {retries:.0f}; error codes: {codes}")
    fault.runs = f"{n} streams"
    fault.outcome = (f"{r['error']}/{n} ended with a clean `error` ({', '.join(c for c in codes if c)}) after "
                     f"{per_job:.0f} throttled calls each, in {durations[0] if durations else '?'}-{durations[-1] if durations else '?'} s")
    fault.lost = f"{r['charges']} credits charged"


def cpu_seconds(pid):
    """User + system CPU seconds of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fault_overload(h, fault):
    per_worker = 2
    workers = 2
    capacity = per_worker * workers
    factor = 5
    n = capacity * factor
    rounds = 3 if LONG else 1
    st = h.stack
    max_waiting = 2 * capacity
    st.ensure(workers=workers, worker_env={"WORKER_CONCURRENCY": str(per_worker)}, api_env={"QUEUE_MAX_WAITING": str(max_waiting)})
    total, usage = h.baseline(fault)
    gens, refused = [], 0
    drain_times, cpu = [], []
    for r in range(rounds):
        batch = h.new_generations(f"f8-r{r}", n, 30, 10)  # about 3 s each at capacity 4: 15 s to drain 20
        began = time.monotonic()
        for g in batch:
            g.start(API_PORTS, 240)
        gens += batch
        # The workers' CPU while every slot is taken and jobs wait: 2 streams at 10 words/s need little.
        time.sleep(2)
        workers = st.live_workers()
        before = {w.pid: cpu_seconds(w.pid) for w in workers}
        t0 = time.monotonic()
        time.sleep(8)
        cpu += [(cpu_seconds(w.pid) - before[w.pid]) / (time.monotonic() - t0) for w in workers]
        h.join_all(batch, 250)
        drain_times.append(time.monotonic() - began)
        refused += sum(1 for g in batch if g.status == 503)
    accepted = [g for g in gens if g.status == 200]
    others = [g for g in gens if g.status not in (200, 503)]
    fault.check(not others, f"every generation was accepted (200) or refused with 503 ({len(accepted)} accepted, {refused} refused)",
                [(g.label, g.status, g.refusal) for g in others[:5]])
    no_retry = [g for g in gens if g.status == 503 and (not g.retry_after or "QUEUE_FULL" not in (g.refusal or ""))]
    fault.check(not no_retry, "every 503 is QUEUE_FULL with Retry-After", [(g.label, g.retry_after, g.refusal) for g in no_retry[:3]])
    fault.check(refused > 0, f"load past capacity shed with 503 + Retry-After ({refused} of {len(gens)} refused; "
                f"capacity {capacity} running at once, QUEUE_MAX_WAITING={max_waiting}, {factor}x offered)",
                f"every request was accepted and queued; the burst took {max(drain_times):.1f} s to drain")
    fault.check(max(cpu) < 0.5, f"a saturated worker idles while it waits for a free slot: CPU per worker "
                f"{', '.join(f'{c:.0%}' for c in cpu)} of a core over 8 s with {per_worker} streams each (limit 50%)")
    fault.check(all(not g.thread.is_alive() for g in gens), "nothing hung: every request answered or every stream ended within its deadline")
    h.settle_state(fault, gens)
    backlog = redis("XLEN", JOB_STREAM)
    pend = sum(len(v) for v in pending_by_consumer().values())
    fault.check(backlog == 0 and pend == 0, f"the queue drained afterwards (stream length {backlog}, pending {pend})")
    leftovers = []
    for g in gens:
        if g.status == 503:
            status, _, body = http_json(st.live_api_ports()[0], "GET", f"/api/chat/sessions/{g.session_id}/messages", token=h.accounts.token)
            if status != 200 or body.get("messages"):
                leftovers.append((g.label, status, body))
    fault.check(not leftovers, f"a refused generation left nothing behind (no message stored; {refused} refused)", leftovers[:3])
    r = h.verify(fault, [g for g in gens if g.status == 200], total, usage)
    fault.runs = f"{rounds} bursts of {n} ({factor}x {capacity} slots)"
    fault.outcome = (f"{len(accepted)} accepted and {r['complete']} complete, {refused} refused with 503; "
                     f"a burst drained in {max(drain_times):.0f} s")
    fault.lost = f"{r['lost']} lost, {r['duplicated']} duplicated; credits off by {r['credits_off']}"


def fault_redis_freeze(h, fault):
    """Redis answers nothing for a while (SIGSTOP, as a stalled disk under appendfsync or a long-running command
    would): the connections stay open, commands time out, then it resumes with everything it had."""
    rounds = 3 if LONG else 1
    freeze = float(os.environ.get("REDIS_FREEZE_S", "8"))
    st = h.stack
    st.ensure(workers=2)
    total, usage = h.baseline(fault)
    gens = []
    for r in range(rounds):
        batch = h.new_generations(f"f9-r{r}", 6, 40, 10)
        for g in batch:
            g.start(API_PORTS, 150)
        gens += batch
        try:
            wait_until("every stream to show 3 chunks", lambda: all(g.chunks_seen() >= 3 or g.ended for g in batch), 30)
        except Deadline as error:
            fault.check(False, "streams under way before Redis freezes", repr(error))
        log(f"f9: round {r + 1}/{rounds}: SIGSTOP redis-server for {freeze:.0f} s with {len(batch)} live streams")
        st.redis.signal(signal.SIGSTOP)
        time.sleep(freeze)
        st.redis.signal(signal.SIGCONT)
        h.join_all(batch, 150)
    durations = sorted(round(g.t_end - g.t_start, 1) for g in gens if g.t_end)
    fault.check(max(durations) < freeze + 25, f"every stream ended within {freeze + 25:.0f} s of its start (slowest {max(durations)} s)")
    h.settle_state(fault, gens)
    r = h.verify(fault, gens, total, usage, allow_errors=True)
    resets = sum(1 for g in gens if g.resets)
    fault.runs = f"{rounds} freezes, {len(gens)} streams"
    codes = ", ".join(sorted({(g.error or {}).get("code", "") for g in gens if g.error}))
    fault.outcome = (f"{r['complete']} complete ({resets} after a `reset`), {r['error']} failed cleanly"
                     f"{f' ({codes})' if codes else ''}, {r['hung']} hung; "
                     f"streams took {durations[0]}-{durations[-1]} s")
    fault.lost = f"{r['lost']} lost, {r['duplicated']} duplicated; credits off by {r['credits_off']}"


FAULTS = [
    (1, "chat-worker SIGKILLed mid-stream", "SIGKILL to one of two workers at random moments, restarted at once", fault_worker_kill),
    (2, "chat-api SIGTERMed with live streams", "SIGTERM to the replica serving 6 streams of 15 s and an observer; SIGKILL if still up 10 s later; clients resume on the other with `Last-Event-ID`", fault_api_term),
    (3, "chat-worker SIGTERMed", "SIGTERM to the busier worker (drain timeout 4 s) running 2 s and 10 s replies", fault_worker_term),
    (4, "Redis restarted", "redis-server (AOF) SIGTERMed during 6 streams, started again 1 s (long run: also 5 s) later on the same data", fault_redis_restart),
    (5, "MongoDB stopped for 10 s", "secantusd SIGTERMed during 6 streams, restarted on the same data dir 10 s later", fault_mongo_stop),
    (6, "Accounting stopped", "accounting stand-in SIGTERMed during 6 streams, restarted once they ended (>= 8 s)", fault_accounting_stop),
    (7, "Throttling storm", "`[[throttle]]` in every prompt: Bedrock answers 429 to every call", fault_throttle_storm),
    (8, "Overload", "20 streams at once against 2 workers x `WORKER_CONCURRENCY=2`, `QUEUE_MAX_WAITING=8`", fault_overload),
    (9, "Redis frozen for 8 s", "redis-server SIGSTOPped during 6 streams, SIGCONTed 8 s later", fault_redis_freeze),
]


def table(faults):
    lines = ["| fault | how injected | runs | outcome | data lost | result |", "| --- | --- | --- | --- | --- | --- |"]
    for f in faults:
        passed = sum(1 for ok, _ in f.results if ok)
        verdict = f"PASS ({passed}/{len(f.results)})" if f.passed else f"**FAIL** ({len(f.results) - passed} of {len(f.results)} checks)"
        cells = [f"{f.number}. {f.name}", f.injected, f.runs, f.outcome, f.lost, verdict]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def write_docs(text):
    path = os.path.join(ROOT, "docs", "reliability.md")
    doc = open(path).read() if os.path.exists(path) else "# Reliability\n"
    section = f"<!-- faults:begin -->\n{text.strip()}\n<!-- faults:end -->"
    pattern = re.compile(r"<!-- faults:begin -->.*?<!-- faults:end -->", re.S)
    doc = pattern.sub(lambda _: section, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(doc)


HARNESS = None


def main():
    global HARNESS

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGALRM, on_term)
    signal.alarm(int(os.environ.get("FAULTS_TIMEOUT", "7200" if LONG else "900")))
    h = HARNESS = Harness()
    status = 0
    try:
        h.setup()
        for number, name, injected, run in FAULTS:
            if ONLY and number not in ONLY:
                continue
            fault = Fault(number, name, injected)
            h.faults.append(fault)
            log(f"=== fault {number}: {name}")
            began = time.monotonic()
            try:
                h.accounts.login()  # fresh tokens for each fault (a long run outlives one)
                run(h, fault)
            except Exception as error:  # noqa: BLE001
                traceback.print_exc()
                fault.check(False, f"the fault ran to its end", repr(error))
                fault.outcome = fault.outcome or f"harness error: {error}"
            log(f"=== fault {number}: {'PASS' if fault.passed else 'FAIL'} in {time.monotonic() - began:.0f} s")
    except KeyboardInterrupt as error:
        print(f"faults: interrupted ({error})", file=sys.stderr)
        status = 130
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        status = 1
    finally:
        stop_all()
    text = table(h.faults)
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    footer = (f"\n\n{MODE} run of {stamp}, seed {SEED}, on {os.cpu_count()} cores; {sum(len(f.results) for f in h.faults)} checks, "
              f"{sum(1 for f in h.faults for ok, _ in f.results if not ok)} failed.")
    print("\n" + text + footer)
    failed = [f for f in h.faults if not f.passed]
    if WRITE_DOCS and h.faults and status == 0:
        write_docs(text + footer)
        print("faults: docs/reliability.md updated")
    if failed:
        print(f"faults: FAILED: {', '.join(str(f.number) for f in failed)}", file=sys.stderr)
        status = status or 1
    log(f"done in {time.monotonic() - STARTED:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
