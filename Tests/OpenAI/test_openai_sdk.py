"""The official OpenAI Python SDK, unmodified, pointed at chat-api's OpenAI-compatible API (`/v1`).

Runs against a whole stack (scripts/guide-check.sh starts it: auth 3000, accounting 3001, chat-api 3002, the
Bedrock emulator): models.list(), a whole and a streamed completion with their usage held against what the
accounting service charged and what chat-api stored, a supervisor observing a completion live, per-request
settings reaching the model, and the SDK's typed errors for a bad token, an unknown model and no credits.
"""

import base64
import hashlib
import hmac
import json
import math
import os
import threading
import time
import urllib.request
import uuid

import openai
import pytest

API = os.environ.get("CHAT_API_URL", "http://127.0.0.1:3002")
ACCOUNTING = os.environ.get("ACCOUNTING_URL", "http://127.0.0.1:3001")
SECRET = os.environ.get("JWT_ACCESS_SECRET", "dev_access_secret_key_change_this_in_production")
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def mint(user_id, role="enduser", lifetime=600):
    """An access token as the auth service signs them (HS256 with the shared secret)."""
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()

    now = int(time.time())
    head = part({"alg": "HS256", "typ": "JWT"}) + "." + part(
        {"sub": user_id, "userId": user_id, "username": user_id, "role": role, "iat": now, "exp": now + lifetime})
    signature = hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def http(method, url, token=None, body=None, timeout=10):
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def new_user(credits=10_000, role="enduser"):
    user_id = f"openai-{uuid.uuid4().hex[:10]}"
    if credits:
        status, body = http("POST", f"{ACCOUNTING}/api/credits/allocate", token=mint("admin", "admin"),
                            body={"targetUserId": user_id, "credits": credits, "notes": "openai sdk test"})
        assert status == 201, body
    return user_id, mint(user_id, role)


def client(token):
    return openai.OpenAI(api_key=token, base_url=API + "/v1", max_retries=0, timeout=60)


def balance(token):
    status, body = http("GET", f"{ACCOUNTING}/api/credits/balance", token=token)
    assert status == 200, body
    return body["totalCredits"]


def price(token, model):
    status, body = http("GET", f"{API}/api/models", token=token)
    assert status == 200, body
    pricing = next(entry["pricing"] for entry in body["models"] if entry["id"] == model)
    return pricing["inputCreditsPer1K"], pricing["outputCreditsPer1K"]


def cost(token, model, usage):
    """What the catalog's prices make of `usage`, in whole credits rounded up (the accounting service's rule)."""
    input_price, output_price = price(token, model)
    millionths = usage.prompt_tokens * round(input_price * 1_000_000) + usage.completion_tokens * round(output_price * 1_000_000)
    return math.ceil(millionths / 1_000_000_000)


def wait_for(condition, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_models_list_shows_the_callers_models():
    _, token = new_user(credits=0)
    ids = [model.id for model in client(token).models.list()]
    assert HAIKU in ids and "anthropic.claude-3-sonnet-20240229-v1:0" in ids
    assert "anthropic.claude-opus-4-20250514-v1:0" not in ids  # staff only
    _, supervisor = new_user(credits=0, role="supervisor")
    assert "anthropic.claude-opus-4-20250514-v1:0" in [model.id for model in client(supervisor).models.list()]
    model = client(token).models.retrieve(HAIKU)
    assert model.id == HAIKU and model.owned_by == "anthropic"


def test_a_whole_completion_is_stored_as_a_session_and_billed_exactly():
    _, token = new_user()
    before = balance(token)
    raw = client(token).chat.completions.with_raw_response.create(
        model=HAIKU,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is a river?"},
            {"role": "assistant", "content": "Water that flows."},
            {"role": "user", "content": [{"type": "text", "text": "And a lake? [[tokens:9]]"}]},
        ],
    )
    completion = raw.parse()
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == HAIKU
    assert choice.message.role == "assistant" and len(choice.message.content.split()) == 9
    assert choice.finish_reason == "stop"
    assert completion.usage.completion_tokens == 9 and completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    charged = cost(token, HAIKU, completion.usage)
    assert wait_for(lambda: balance(token) == before - charged), (balance(token), before, charged)

    # The conversation is a session of the caller's: its system prompt, the earlier turns, the new turn.
    session_id = raw.headers["X-Chat-Session-Id"]
    status, session = http("GET", f"{API}/api/chat/sessions/{session_id}", token=token)
    assert status == 200, session
    assert session["systemPrompt"] == "You are terse."
    turns = [(message["role"], message["content"]) for message in session["messages"]]
    assert turns == [("user", "What is a river?"), ("assistant", "Water that flows."), ("user", "And a lake? [[tokens:9]]"),
                     ("assistant", choice.message.content)]


def test_a_streamed_completion_with_usage_observed_live_by_a_supervisor():
    _, token = new_user()
    _, supervisor = new_user(credits=0, role="supervisor")
    before = balance(token)
    observed = []
    with client(token).chat.completions.with_streaming_response.create(
        model=HAIKU, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Tell me slowly [[tokens:16]] [[tps:40]]"}],
    ) as response:
        session_id = response.headers["X-Chat-Session-Id"]
        watcher = threading.Thread(target=observe, args=(supervisor, session_id, observed), daemon=True)
        watcher.start()
        chunks = list(response.parse())
    watcher.join(timeout=20)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    finish = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finish == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.completion_tokens == 16
    assert len(text.split()) == 16
    assert wait_for(lambda: balance(token) == before - cost(token, HAIKU, usage))
    # The supervisor saw the same text arrive, chunk by chunk.
    assert observed and "".join(observed) == text, (observed, text)
    status, session = http("GET", f"{API}/api/chat/sessions/{session_id}", token=token)
    assert session["messages"][-1]["content"] == text


def observe(token, session_id, into):
    """Appends the text of the chunks a supervisor sees on the session's observe stream until `complete`."""
    request = urllib.request.Request(f"{API}/api/chat/sessions/{session_id}/observe")
    request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=20) as response:
        event = None
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "chunk":
                into.append(json.loads(line[6:])["content"])
            elif line.startswith("data: ") and event in ("complete", "error"):
                return


def test_settings_reach_the_model_and_the_token_limit_cuts_the_reply():
    _, token = new_user()
    echo = client(token).chat.completions.create(
        model=HAIKU, temperature=0.3, top_p=0.9, max_completion_tokens=50, stop=["END"],
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "What did you get? [[echo-settings]]"}],
    )
    assert echo.choices[0].message.content == "temperature=0.3 topP=0.9 stop=END system=Be_brief. maxTokens=50"
    cut = client(token).chat.completions.create(model=HAIKU, max_tokens=5, messages=[{"role": "user", "content": "Go on [[tokens:30]]"}])
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 5
    with pytest.raises(openai.BadRequestError) as caught:
        client(token).chat.completions.create(model=HAIKU, temperature=1.7, messages=[{"role": "user", "content": "hi"}])
    assert "temperature" in caught.value.message and caught.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as caught:
        client(token).chat.completions.create(model=HAIKU, max_tokens=100_000, messages=[{"role": "user", "content": "hi"}])
    assert "max_tokens" in caught.value.message


def test_typed_errors_for_a_bad_token_an_unknown_model_and_no_credits():
    with pytest.raises(openai.AuthenticationError) as caught:
        client("not-a-token").chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client("not-a-token").models.list()

    _, token = new_user()
    with pytest.raises(openai.NotFoundError) as caught:
        client(token).chat.completions.create(model="openai.gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found" and caught.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        client(token).models.retrieve("anthropic.claude-opus-4-20250514-v1:0")  # staff only

    _, broke = new_user(credits=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client(broke).chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 402 and caught.value.code == "insufficient_quota"
    with pytest.raises(openai.APIStatusError) as caught:
        list(client(broke).chat.completions.create(model=HAIKU, stream=True, messages=[{"role": "user", "content": "hi"}]))
    assert caught.value.status_code == 402
    # A refused completion leaves no session behind.
    status, sessions = http("GET", f"{API}/api/chat/sessions", token=broke)
    assert status == 200 and sessions["pagination"]["total"] == 0


def test_a_failed_completion_is_not_retried_by_the_sdk():
    """OpenAI's SDK retries 5xx answers by default; each try would be a new paid job. chat-api's 502 says
    `x-should-retry: false`, so the SDK with its default retries gives up after one: one session, nothing charged."""
    _, token = new_user()
    before = balance(token)
    retrying = openai.OpenAI(api_key=token, base_url=API + "/v1", timeout=120)  # the SDK's default max_retries (2)
    with pytest.raises(openai.InternalServerError) as caught:
        retrying.chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": "Everyone is busy [[throttle]]"}])
    assert caught.value.status_code == 502 and caught.value.response.headers.get("x-should-retry") == "false"
    assert "busy" in caught.value.message
    status, sessions = http("GET", f"{API}/api/chat/sessions", token=token)
    assert status == 200 and sessions["pagination"]["total"] == 1
    assert wait_for(lambda: balance(token) == before)
