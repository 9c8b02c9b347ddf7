#!/usr/bin/env python3
"""otlp-check's client and collector: receives OTLP/HTTP exports on a port of its own, drives one streamed reply
through chat-api with a `traceparent` of its choosing, and checks that chat-api's and chat-worker's spans of that
trace both arrived (the trace id's 16 bytes and each service's name appear in the exported protobuf).

otlp_check.py serve PORT DIR       collect every POST /v1/traces body into DIR
otlp_check.py drive API_URL DIR    the reply, then wait (at most 30 s) for both services' spans in DIR"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import pathlib
import secrets
import sys
import time
import urllib.request


def serve(port, directory):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            (directory / f"{time.time_ns()}.pb").write_bytes(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Collector).serve_forever()


def token(user, role):
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()
    now = int(time.time())
    head = part({"alg": "HS256", "typ": "JWT"}) + "." + part({"sub": user, "userId": user, "role": role, "iat": now, "exp": now + 300})
    key = os.environ["JWT_ACCESS_SECRET"].encode()
    return head + "." + base64.urlsafe_b64encode(hmac.new(key, head.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()


def call(method, url, bearer, body=None, headers=None):
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Authorization", "Bearer " + bearer)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read().decode()


def drive(api_url, directory):
    user = "otlp-" + secrets.token_hex(4)
    call("POST", os.environ["ACCOUNTING_URL"] + "/api/credits/allocate", token("admin", "admin"),
         {"targetUserId": user, "credits": 100, "expiryDays": 1, "notes": "otlp-check"})
    bearer = token(user, "enduser")
    status, text = call("POST", api_url + "/api/chat/sessions", bearer, {"title": "otlp"})
    session = json.loads(text)["sessionId"]
    trace_id = secrets.token_hex(16)
    status, text = call("POST", f"{api_url}/api/chat/sessions/{session}/stream", bearer, {"message": "trace me [[tokens:3]]"},
                        {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    if status != 200 or "event: complete" not in text:
        sys.exit(f"otlp-check: FAILED: the reply did not complete ({status}): {text[:300]}")
    wanted = bytes.fromhex(trace_id)
    deadline = time.time() + 30
    while time.time() < deadline:
        bodies = [path.read_bytes() for path in pathlib.Path(directory).glob("*.pb")]
        services = {name for name in (b"chat-api", b"chat-worker") if any(wanted in body and name in body for body in bodies)}
        if len(services) == 2:
            print(f"otlp-check: ok: chat-api's and chat-worker's spans of trace {trace_id} reached the collector ({len(bodies)} exports)")
            return
        time.sleep(0.2)
    sys.exit(f"otlp-check: FAILED: spans of trace {trace_id} from {sorted(s.decode() for s in services) or 'neither service'} only")


if __name__ == "__main__":
    {"serve": serve, "drive": drive}[sys.argv[1]](*sys.argv[2:])
