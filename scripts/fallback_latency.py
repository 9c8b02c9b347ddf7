#!/usr/bin/env python3
"""What a fallback costs a user: time to the first chunk of a streamed reply when the model answers, and when it is
throttled and its fallback answers (FALLBACK_AFTER_ATTEMPTS tries with backoff, then the pause, then the fallback).

Against a running stack (`make dev`: chat-api 3002, accounting 3001, the emulator): mints a user, funds it, and
streams N replies of each kind through the OpenAI-compatible API, interleaved. Prints p50 and p90 per kind.

    .venv/bin/python scripts/fallback_latency.py [N]
"""

import base64
import hashlib
import hmac
import json
import os
import statistics
import sys
import time
import urllib.request
import uuid

API = os.environ.get("CHAT_API_URL", "http://127.0.0.1:3002")
ACCOUNTING = os.environ.get("ACCOUNTING_URL", "http://127.0.0.1:3001")
SECRET = os.environ.get("JWT_ACCESS_SECRET", "dev_access_secret_key_change_this_in_production")
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def mint(user_id, role="enduser"):
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()
    now = int(time.time())
    head = part({"alg": "HS256", "typ": "JWT"}) + "." + part({"sub": user_id, "role": role, "iat": now, "exp": now + 3600})
    return head + "." + base64.urlsafe_b64encode(hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()


def post(url, token, body):
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", "Bearer " + token)
    return urllib.request.urlopen(request, timeout=120)


def first_chunk_ms(token, text):
    start = time.perf_counter()
    with post(API + "/v1/chat/completions", token, {"model": HAIKU, "stream": True, "messages": [{"role": "user", "content": text}]}) as response:
        first = None
        for line in response:
            if first is None and line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line:
                first = (time.perf_counter() - start) * 1000
            if line.startswith(b"data: [DONE]"):
                return first
    raise RuntimeError("the stream ended without [DONE]")


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    user = f"fallback-{uuid.uuid4().hex[:8]}"
    post(ACCOUNTING + "/api/credits/allocate", mint("admin", "admin"), {"targetUserId": user, "credits": 1_000_000, "notes": "fallback latency"}).close()
    token = mint(user)
    kinds = {"model answers": "Hello [[tokens:8]]", "throttled, fallback answers": f"Hello [[tokens:8]] [[throttle-model:{HAIKU}]]"}
    times = {kind: [] for kind in kinds}
    for round_ in range(count):
        for kind, text in kinds.items():
            times[kind].append(first_chunk_ms(token, f"{text} round {round_}"))
    for kind, values in times.items():
        values.sort()
        print(f"{kind:30s} first chunk p50 {statistics.median(values):7.1f} ms  p90 {values[int(0.9 * (len(values) - 1))]:7.1f} ms  (n={len(values)})")


if __name__ == "__main__":
    main()
