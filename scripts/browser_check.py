#!/usr/bin/env python3
"""The browser checks of scripts/browser-check.sh: headless Chromium (Selenium, /usr/bin/chromedriver) against
the stack that script started (emulator 3100, auth 3101, accounting 3102, chat-api 3103, the pages of
scripts/browser-pages/ on 3105 and 3106, allowed by CORS, and on 3107, not allowed).

    a  TC-09: user1's page (origin 3105) signs in, creates a session and streams a reply with EventSource
    b  TC-12: supervisor1's page (origin 3106) observes that session over a WebSocket before the stream starts;
       both pages show the same chunks, equal to the stored reply; then resume with lastEventId, a token that
       expires (error TOKEN_EXPIRED, close 4401) and, last of all, chat-api stopping (close 1000 or 1001)
    c  CORS: foreign-origin preflights get no Access-Control-* header (the allowed origin does); a page on a
       foreign origin cannot read any service's answer (TypeError), the same page on 3105 can
    d  TC-16: ten users stream at once from one page; the accounting stand-in charged each one exactly its reply
    e  scripts/browser_console.py's check_console(new_driver, urls, shots_dir), when it exists
    f  the screenshots of a and b in .data/browser/shots

Usage: browser_check.py [a] [b] ... (default: all). Prints ok/FAILED per check with its time and reason; exit
status 1 when any failed. Every wait has a deadline (WebDriverWait or a polling loop), every check a time limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options as ChromeOptions
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / os.environ.get("BROWSER_DATA_DIR", ".data/browser")
SHOTS = DATA / "shots"

API = "http://127.0.0.1:3103"
AUTH = "http://127.0.0.1:3101"
ACCOUNTING = "http://127.0.0.1:3102"
PAGES = "http://127.0.0.1:3105"  # allowed by CORS_ALLOWED_ORIGINS
OTHER_PAGES = "http://127.0.0.1:3106"  # allowed too: the supervisor's page
FOREIGN_PAGES = "http://127.0.0.1:3107"  # the same pages, not allowed
EVIL = "http://evil.example"
WINDOW = (1280, 1000)

USERS = {
    "admin": "admin@admin",
    "user1": "User1@123",
    "supervisor1": "Supervisor1@",
}
CONCURRENT_USERS = 10
CREDITS = 1000
LIMITS = {"a": 40, "b": 60, "c": 30, "d": 75, "e": 90, "f": 10, "shutdown": 30}
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class CheckFailed(Exception):
    """A finding: the reason is printed after FAILED."""


def redact(text: str) -> str:
    """No token in what this prints (browser messages quote URLs with access_token)."""
    text = re.sub(r"(access_token=)[^&\s'\"]+", r"\1…", text)
    return re.sub(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", "<token>", text)


def short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Deadline:
    """A check's time limit; every wait inside it takes what is left (capped)."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise CheckFailed("the check ran out of time")
        return remaining if cap is None else min(remaining, cap)


def poll(deadline: Deadline, what: str, probe: Callable[[], Any], cap: float = 20, interval: float = 0.2) -> Any:
    """Calls probe until it returns something truthy, within cap seconds (and the check's time): its value."""
    end = time.monotonic() + deadline.left(cap)
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= end:
            raise CheckFailed(f"timed out waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------- HTTP


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def http(method: str, url: str, *, token: str | None = None, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> Answer:
    request_headers = dict(headers or {})
    data = None
    if token:
        request_headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        request_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=request_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, got = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, got = error.code, error.read(), error.headers
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return Answer(status, {k.lower(): v for k, v in got.items()}, parsed)


def expect(answer: Answer, status: int, what: str) -> Any:
    if answer.status != status:
        raise CheckFailed(f"{what} answered {answer.status}, not {status}: {redact(json.dumps(answer.body))[:300]}")
    return answer.body


def login(username: str) -> str:
    body = expect(http("POST", f"{AUTH}/api/auth/login", body={"username": username, "password": USERS[username]}), 200,
                  f"login of {username}")
    return body["accessToken"]


def mint_token(user_id: str, role: str, lifetime: int) -> str:
    """An access token as the auth service signs them (HS256 with the shared JWT_ACCESS_SECRET), for users
    the auth stand-in does not seed: it serves only the guide's five and has no route that adds one."""
    secret = os.environ["JWT_ACCESS_SECRET"].encode()

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()

    now = int(time.time())
    signing_input = part({"alg": "HS256", "typ": "JWT"}) + "." + part(
        {"sub": user_id, "userId": user_id, "username": user_id, "email": f"{user_id}@example.com", "role": role,
         "iat": now, "exp": now + lifetime})
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def allocate(admin: str, user_id: str, credits: int) -> None:
    expect(http("POST", f"{ACCOUNTING}/api/credits/allocate", token=admin,
                body={"targetUserId": user_id, "credits": credits, "notes": "browser-check"}), 201, f"allocation to {user_id}")


def stored_turn(token: str, session_id: str, message_id: str) -> tuple[str, str | None]:
    """The content of the session's assistant message `message_id` and of the user message of the same job,
    read back from chat-api with the owner's token."""
    session = expect(http("GET", f"{API}/api/chat/sessions/{session_id}", token=token), 200, f"GET session {session_id}")
    messages = session.get("messages", [])
    for message in messages:
        if message.get("messageId") == message_id:
            if message.get("role") != "assistant":
                raise CheckFailed(f"stored message {message_id} has role {message.get('role')}")
            asked = [m.get("content") for m in messages if m.get("role") == "user" and m.get("jobId") == message.get("jobId")]
            return message.get("content", ""), (asked[0] if asked else None)
    raise CheckFailed(f"session {session_id} has no message {message_id} (it has {len(messages)})")


def stored_reply(token: str, session_id: str, message_id: str) -> str:
    return stored_turn(token, session_id, message_id)[0]


class RawWebSocket:
    """The client side of a WebSocket on a plain socket, enough to see what chat-api sends on the wire: the
    upgrade's answer, then text messages and the close frame's code (pings are answered)."""

    def __init__(self, path: str, origin: str, timeout: float = 5):
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.connection = socket.create_connection(("127.0.0.1", 3103), timeout=timeout)
        self.connection.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:3103\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                                 f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {self.key}\r\nOrigin: {origin}\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer and len(self.buffer) < 65536:
            piece = self.connection.recv(4096)
            if not piece:
                break
            self.buffer += piece
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = lines[0] if lines and lines[0] else "(no answer)"
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.upgraded = " 101 " in f"{self.status} "

    def _exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            piece = self.connection.recv(65536)
            if not piece:
                raise CheckFailed("the connection ended without a close frame")
            self.buffer += piece
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def frame(self) -> tuple[int, bytes]:
        first, second = self._exactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._exactly(2), "big")
        elif length == 127:
            length = int.from_bytes(self._exactly(8), "big")
        mask = self._exactly(4) if second & 0x80 else None
        payload = self._exactly(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return first & 0x0F, payload

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode, 0x80 | len(payload)])  # control frames only: under 126 bytes
        self.connection.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def first_message(self, deadline: float) -> dict[str, Any]:
        """The next text message (pings answered)."""
        while True:
            self.connection.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                opcode, payload = self.frame()
            except socket.timeout:
                raise CheckFailed("no message on the wire within the time") from None
            if opcode == 0x1:
                return json.loads(payload)
            if opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                raise CheckFailed(f"closed ({payload.hex()}) before any message")

    def until_close(self, deadline: float) -> tuple[list[dict[str, Any]], int | None, bytes]:
        """Reads until the server's close frame (answered): the text messages, the close code and its frame."""
        messages = []
        while True:
            self.connection.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                opcode, payload = self.frame()
            except socket.timeout:
                raise CheckFailed(f"no close frame within the time (messages: {[m.get('event') for m in messages]})") from None
            if opcode == 0x1:
                messages.append(json.loads(payload))
            elif opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                try:
                    self.send(0x8, payload[:2])
                except OSError:
                    pass
                return messages, code, payload

    def close(self) -> None:
        self.connection.close()


def websocket_handshake(path: str, origin: str, timeout: float = 5) -> tuple[str, dict[str, str]]:
    """Sends a WebSocket upgrade request and returns the answer's status line and headers (checking
    Sec-WebSocket-Accept on a 101); the connection is closed at once."""
    raw = RawWebSocket(path, origin, timeout)
    raw.close()
    key, status, headers = raw.key, raw.status, raw.headers
    if " 101 " in f"{status} ":
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise CheckFailed(f"101 with Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}, not {accept!r}")
    return status, headers


# ------------------------------------------------------------------------------------------------- browser

DRIVERS: list[webdriver.Chrome] = []


def new_driver() -> webdriver.Chrome:
    """A headless Chromium of the fixed window size; quit by this harness at the end whatever happens."""
    options = ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                     "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                     "--disable-component-update", "--disable-sync", "--disable-background-networking",
                     # Windows in the background (the user's page while the supervisor's is in front) keep running.
                     "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
                     "--disable-renderer-backgrounding"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    log = DATA / f"chromedriver-{len(DRIVERS) + 1}.log"
    driver = webdriver.Chrome(options=options, service=ChromeService(executable_path="/usr/bin/chromedriver", log_output=str(log)))
    DRIVERS.append(driver)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    return driver


def quit_drivers() -> None:
    while DRIVERS:
        driver = DRIVERS.pop()
        try:
            driver.quit()
        except Exception:  # already gone
            pass


def browser_errors(driver: webdriver.Chrome) -> str:
    """The page's recent console errors, for a failure's reason."""
    try:
        entries = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    except WebDriverException:
        return ""
    return (" | console: " + " / ".join(redact(e)[:200] for e in entries[-3:])) if entries else ""


def dom_state(driver: webdriver.Chrome, element_id: str) -> tuple[str | None, str]:
    return tuple(driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? [e.dataset.state ?? null, e.textContent] : [null, '']",
        element_id))


def wait_state(driver: webdriver.Chrome, deadline: Deadline, element_id: str, wanted: str | tuple[str, ...], cap: float = 20,
               failing: tuple[str, ...] = ("failed", "error")) -> str:
    """Waits until #element_id's data-state is one of `wanted`; a failing state ends the wait at once."""
    wanted = (wanted,) if isinstance(wanted, str) else wanted
    seen: dict[str, Any] = {}

    def reached(d: webdriver.Chrome) -> bool:
        state, text = dom_state(d, element_id)
        seen["state"], seen["text"] = state, text
        if state in wanted:
            return True
        if state in failing:
            raise CheckFailed(f"#{element_id} is {state}: {redact(text)}{browser_errors(d)}")
        return False

    try:
        WebDriverWait(driver, deadline.left(cap), poll_frequency=0.05).until(reached)
    except TimeoutException:
        raise CheckFailed(f"timed out waiting for #{element_id} to be {'/'.join(wanted)} (it is {seen.get('state')}: "
                          f"{redact(str(seen.get('text')))[:200]}){browser_errors(driver)}") from None
    return seen["text"]


def wait_js(driver: webdriver.Chrome, deadline: Deadline, what: str, script: str, *args: Any, cap: float = 20) -> Any:
    """Waits until `script` returns something truthy: its value."""
    try:
        return WebDriverWait(driver, deadline.left(cap), poll_frequency=0.05).until(lambda d: d.execute_script(script, *args))
    except TimeoutException:
        raise CheckFailed(f"timed out waiting for {what}{browser_errors(driver)}") from None


def open_page(driver: webdriver.Chrome, deadline: Deadline, url: str) -> None:
    """Loads a page and waits for its module to have run (it writes the origin into #origin)."""
    driver.get(url)
    wait_js(driver, deadline, f"the module of {url} to run", "const e = document.getElementById('origin'); return e && e.textContent", cap=10)


def set_field(driver: webdriver.Chrome, element_id: str, value: str) -> None:
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(value)


def click(driver: webdriver.Chrome, element_id: str) -> None:
    driver.find_element(By.ID, element_id).click()


def reply_chunks(driver: webdriver.Chrome) -> list[tuple[int, str]]:
    return [tuple(pair) for pair in driver.execute_script(
        "return [...document.getElementById('reply').children].map(s => [Number(s.dataset.index), s.textContent])")]


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    return driver.execute_script("return document.getElementById(arguments[0]).textContent", element_id)


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / name))


# --------------------------------------------------------------------------------------------------- state


@dataclass
class Run:
    """What the checks share: tokens, the browser with the user's and the supervisor's windows, the sessions."""

    admin: str | None = None
    user1: str | None = None
    driver: webdriver.Chrome | None = None
    user_window: str | None = None
    supervisor_window: str | None = None
    tc12_session: str | None = None
    websocket_ready: bool = False
    shutdown_pending: bool = False
    notes: list[str] = field(default_factory=list)

    def browser(self) -> webdriver.Chrome:
        if self.driver is None:
            self.driver = new_driver()
        return self.driver

    def tokens(self) -> None:
        if self.admin is None:
            self.admin = login("admin")
            self.user1 = login("user1")
            allocate(self.admin, "user1", CREDITS)

    def user_page(self, deadline: Deadline) -> webdriver.Chrome:
        """user1's page on the allowed origin, signed in from the page itself; in front."""
        self.tokens()
        driver = self.browser()
        if self.user_window is None:
            self.user_window = driver.current_window_handle
            open_page(driver, deadline, f"{PAGES}/user.html")
            click(driver, "signin")
            wait_state(driver, deadline, "signin-state", "signed-in", cap=10)
        driver.switch_to.window(self.user_window)
        return driver

    def supervisor_page(self, deadline: Deadline) -> webdriver.Chrome:
        """supervisor1's page on the other allowed origin, in a window of its own; in front."""
        driver = self.browser()
        if self.supervisor_window is None:
            driver.switch_to.new_window("window")
            self.supervisor_window = driver.current_window_handle
            open_page(driver, deadline, f"{OTHER_PAGES}/supervisor.html")
            click(driver, "signin")
            wait_state(driver, deadline, "signin-state", "signed-in", cap=10)
        driver.switch_to.window(self.supervisor_window)
        return driver


def new_session_on_user_page(run: Run, deadline: Deadline, title: str) -> str:
    driver = run.user_page(deadline)
    set_field(driver, "title", title)
    click(driver, "create")
    wait_state(driver, deadline, "session-state", "created", cap=10)
    return text_of(driver, "session-id")


def stream_on_user_page(run: Run, deadline: Deadline, message: str, shot: str | None = None) -> dict[str, Any]:
    """Clicks Send on user1's page and waits for `complete` (then takes the screenshot `shot`, if named); what the
    page shows, checked for order."""
    driver = run.user_page(deadline)
    set_field(driver, "message", message)
    started = time.monotonic()
    click(driver, "send")
    wait_state(driver, deadline, "stream-state", "complete", cap=30)
    took = time.monotonic() - started
    if shot:
        screenshot(driver, shot)
    chunks = reply_chunks(driver)
    text = text_of(driver, "reply")
    complete = json.loads(text_of(driver, "complete"))
    if [index for index, _ in chunks] != list(range(len(chunks))):
        raise CheckFailed(f"the page's chunks are not 0..n-1 in order: {[i for i, _ in chunks]}")
    if not text.strip():
        raise CheckFailed("the page shows an empty reply")
    if text != complete.get("content"):
        raise CheckFailed(f"the page's text {short(text)!r} differs from complete.content {short(complete.get('content', ''))!r}")
    return {"chunks": chunks, "text": text, "complete": complete, "took": took,
            "reconnects": int(text_of(driver, "reconnects") or 0)}


# -------------------------------------------------------------------------------------------------- checks


def check_tc09(run: Run, deadline: Deadline) -> str:
    session_id = new_session_on_user_page(run, deadline, "TC-09 browser check")
    message = "Tell me about quantum computing"
    result = stream_on_user_page(run, deadline, message, shot="tc09-user.png")
    complete = result["complete"]
    if len(result["chunks"]) < 3:
        raise CheckFailed(f"only {len(result['chunks'])} chunks: the emulator's pace should give several")
    stored, asked = stored_turn(run.user1, session_id, complete["messageId"])
    if stored != result["text"]:
        raise CheckFailed(f"stored reply {short(stored)!r} differs from the page's {short(result['text'])!r}")
    # The page sends the message as URLSearchParams writes a query (application/x-www-form-urlencoded: a space
    # is '+'); the session must hold it as typed, and the model must have been asked exactly that (the emulator
    # counts the prompt's words as input tokens).
    if asked != message:
        raise CheckFailed(f"the session stored the user's message {asked!r}, not the {message!r} the page sent "
                          f"(input tokens {complete['inputTokens']}, the message has {len(message.split())} words)")
    if result["reconnects"]:
        raise CheckFailed(f"the EventSource reconnected {result['reconnects']} times")
    return (f"{len(result['chunks'])} chunks in {result['took']:.1f} s, {complete['inputTokens']}+{complete['outputTokens']} tokens, "
            f"{complete['creditsCharged']} credits; stored reply equal")


def check_tc12(run: Run, deadline: Deadline) -> list[tuple[str, str | None]]:
    """TC-12 and the WebSocket protocol; returns (part, failure or None) for each part, after the first."""
    run.tokens()
    session_id = new_session_on_user_page(run, deadline, "TC-12 browser check")
    run.tc12_session = session_id
    supervisor = login("supervisor1")
    status, headers = websocket_handshake(f"/api/chat/sessions/{session_id}/observe?access_token={supervisor}", OTHER_PAGES)
    if " 101 " not in f"{status} ":
        raise CheckFailed(f"GET /observe with Upgrade: websocket answered {status!r} ({headers.get('content-type', 'no content type')}), "
                          "not 101 Switching Protocols: the WebSocket route is not in this chat-api")

    driver = run.supervisor_page(deadline)
    set_field(driver, "session-id", session_id)
    set_field(driver, "last-event-id", "")
    click(driver, "observe")
    wait_state(driver, deadline, "observe-state", "observing", cap=10)
    wait_state(driver, deadline, "ws-state", "open", cap=5, failing=("closed", "closed-abnormally"))
    observer = json.loads(text_of(driver, "observer"))
    if observer.get("sessionId") != session_id or observer.get("ownerId") != "user1" or observer.get("observerId") != "supervisor1":
        raise CheckFailed(f"observer greeting {observer}")
    run.websocket_ready = True

    # Only now does user1's page start its EventSource.
    result = stream_on_user_page(run, deadline, "Explain supervision in one paragraph")
    driver = run.supervisor_page(deadline)
    wait_state(driver, deadline, "observe-state", "complete", cap=15)
    screenshot(driver, "tc12-supervisor.png")
    observed = reply_chunks(driver)
    observed_text = text_of(driver, "reply")
    protocol_state, protocol_text = dom_state(driver, "protocol")
    if protocol_state != "ok":
        raise CheckFailed(f"the observer's messages broke the protocol: {protocol_text}")
    events = driver.execute_script(
        "return [...document.querySelectorAll('#events li')].map(li => [li.dataset.event, li.dataset.id, li.dataset.index ?? null])")
    if events[0][0] != "observer" or events[0][1] != "":
        raise CheckFailed(f"the first message is {events[0]}, not an observer without id")
    if observed != result["chunks"]:
        raise CheckFailed(f"the supervisor saw {len(observed)} chunks {short(observed_text)!r}, the user {len(result['chunks'])} "
                          f"{short(result['text'])!r}")
    stored = stored_reply(run.user1, session_id, result["complete"]["messageId"])
    if not (observed_text == result["text"] == stored):
        raise CheckFailed(f"texts differ: supervisor {short(observed_text)!r}, user {short(result['text'])!r}, stored {short(stored)!r}")
    observed_complete = json.loads(text_of(driver, "complete"))
    if observed_complete != result["complete"]:
        raise CheckFailed("the observer's complete event differs from the user's")
    chunk_events = [e for e in events if e[0] == "chunk"]
    run.notes.append(f"TC-12: {len(observed)} chunks seen by both pages, equal to the stored reply")
    parts: list[tuple[str, str | None]] = []

    # Resume: after the middle chunk, the rest of the reply and its complete.
    try:
        middle = len(chunk_events) // 2
        after_id, after_index = chunk_events[middle][1], int(chunk_events[middle][2])
        set_field(driver, "last-event-id", after_id)
        click(driver, "observe")
        wait_state(driver, deadline, "observe-state", "complete", cap=6)
        resumed = reply_chunks(driver)
        expected = [c for c in result["chunks"] if c[0] > after_index]
        first = driver.execute_script("const li = document.querySelector('#events li'); return li && li.dataset.event")
        state, text = dom_state(driver, "protocol")
        if first != "observer":
            parts.append(("resume with lastEventId", f"the first message on resume is {first}"))
        elif state != "ok":
            parts.append(("resume with lastEventId", f"protocol: {text}"))
        elif resumed != expected:
            parts.append(("resume with lastEventId", f"after chunk {after_index} got chunks {[i for i, _ in resumed]}, "
                                                     f"expected {[i for i, _ in expected]}"))
        else:
            parts.append(("resume with lastEventId", None))
            run.notes.append(f"resume after chunk {after_index}: chunks {expected[0][0]}..{expected[-1][0]} and complete")
    except CheckFailed as failure:
        parts.append(("resume with lastEventId", str(failure)))

    # The observer's token expires: an `error` TOKEN_EXPIRED, then close code 4401 (4000 + 401).
    try:
        lifetime = 4
        driver.execute_script("window.observerPage.useToken(arguments[0])", mint_token("supervisor1", "supervisor", lifetime))
        set_field(driver, "last-event-id", "")
        issued = time.monotonic()
        click(driver, "observe")
        wait_state(driver, deadline, "observe-state", "observing", cap=lifetime)
        wait_js(driver, deadline, "the socket to close after the token expired",
                "return document.getElementById('close-code').textContent", cap=lifetime + 10)
        closed_after = time.monotonic() - issued
        code = text_of(driver, "close-code")
        error_text = text_of(driver, "error")
        error = json.loads(error_text) if error_text else {}
        if error.get("code") != "TOKEN_EXPIRED":
            parts.append(("token expiry", f"closed {code} after {closed_after:.1f} s with error event {error or 'none'}"))
        elif code != "4401":
            parts.append(("token expiry", f"TOKEN_EXPIRED, then close code {code}, not 4401"))
        else:
            parts.append(("token expiry", None))
            run.notes.append(f"token expiry: TOKEN_EXPIRED and 4401, {closed_after:.1f} s after a {lifetime} s token")
    except CheckFailed as failure:
        parts.append(("token expiry", str(failure)))
    run.shutdown_pending = True
    return parts


def check_shutdown(run: Run, deadline: Deadline) -> str:
    """Last of all: an open observer's socket is closed (1000 or 1001) when chat-api stops (SIGTERM)."""
    driver = run.supervisor_page(deadline)
    click(driver, "signin")
    wait_state(driver, deadline, "signin-state", "signed-in", cap=10)
    set_field(driver, "session-id", run.tc12_session)
    set_field(driver, "last-event-id", "")
    click(driver, "observe")
    wait_state(driver, deadline, "observe-state", "observing", cap=10)
    # Beside the browser, a socket read on the wire: the close frame chat-api sends, byte for byte.
    raw = RawWebSocket(f"/api/chat/sessions/{run.tc12_session}/observe?access_token={login('supervisor1')}", OTHER_PAGES)
    try:
        if not raw.upgraded:
            raise CheckFailed(f"the wire observer's upgrade answered {raw.status}")
        greeting = raw.first_message(time.monotonic() + deadline.left(5))
        if greeting.get("event") != "observer":
            raise CheckFailed(f"the wire observer's first message is {greeting.get('event')}")
        pid = int(os.environ["CHAT_API_PID"])
        stopped = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        wait_js(driver, deadline, "the socket to close when chat-api stops", "return document.getElementById('close-code').textContent", cap=20)
        took = time.monotonic() - stopped
        code = text_of(driver, "close-code")
        messages, wire_code, frame = raw.until_close(time.monotonic() + deadline.left(10))
    finally:
        raw.close()
    # The WebSocket library closes every socket with 1000 as the server begins to stop; a relay that ends first
    # closes with 1001 (Going Away). Either way the client resumes elsewhere with lastEventId.
    if code not in ("1000", "1001") or wire_code not in (1000, 1001):
        raise CheckFailed(f"the browser's socket closed with code {code}, the wire's with a close frame {frame.hex()} (code {wire_code}) "
                          f"after {[m.get('event') for m in messages]}, not 1000 or 1001")
    return f"closed {code} {took:.1f} s after SIGTERM (the browser's socket and one read on the wire)"


def check_cors(run: Run, deadline: Deadline) -> str:
    run.tokens()
    targets = {"chat-api": f"{API}/api/chat/sessions", "auth": f"{AUTH}/api/auth/login", "accounting": f"{ACCOUNTING}/api/credits/allocate"}
    findings = []
    for name, url in targets.items():
        for origin in (EVIL, FOREIGN_PAGES):
            answer = http("OPTIONS", url, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "authorization, content-type"})
            leaked = sorted(h for h in answer.headers if h.startswith("access-control-"))
            if leaked:
                findings.append(f"{name} preflight from {origin} answered {answer.status} with {', '.join(leaked)}")
        answer = http("GET", url.rsplit("/api/", 1)[0] + "/api/health", headers={"Origin": EVIL})
        if any(h.startswith("access-control-") for h in answer.headers):
            findings.append(f"{name} GET /api/health from {EVIL} has Access-Control-* headers")
        answer = http("OPTIONS", url, headers={"Origin": PAGES, "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "authorization, content-type"})
        allow_origin = answer.headers.get("access-control-allow-origin")
        methods = answer.headers.get("access-control-allow-methods", "")
        allowed_headers = answer.headers.get("access-control-allow-headers", "").lower()
        if answer.status not in (200, 204) or allow_origin != PAGES or "POST" not in methods or "authorization" not in allowed_headers:
            findings.append(f"{name} preflight from {PAGES} answered {answer.status}, Allow-Origin {allow_origin!r}, "
                            f"Allow-Methods {methods!r}, Allow-Headers {allowed_headers!r}")
    # WebSocket upgrades carry the page's Origin: a foreign one is refused, an allowed one is upgraded.
    supervisor = login("supervisor1")
    sessions = expect(http("GET", f"{API}/api/chat/sessions?limit=1", token=run.user1), 200, "GET /api/chat/sessions")["sessions"]
    session_id = sessions[0]["sessionId"] if sessions else "0" * 24
    for origin, upgraded in ((EVIL, False), (FOREIGN_PAGES, False), (OTHER_PAGES, True)):
        status, _ = websocket_handshake(f"/api/chat/sessions/{session_id}/observe?access_token={supervisor}", origin)
        if (" 101 " in f"{status} ") != upgraded:
            findings.append(f"WebSocket upgrade of /observe from {origin} answered {status!r}")
    if findings:
        raise CheckFailed("; ".join(findings))

    # In the browser: the same calls from a page on the foreign origin fail, from the allowed origin they are read.
    driver = run.browser()
    if run.user_window:
        driver.switch_to.new_window("tab")
    outcomes = {}
    for origin in (FOREIGN_PAGES, PAGES):
        open_page(driver, deadline, f"{origin}/cors.html")
        wait_state(driver, deadline, "run-state", "done", cap=10)
        outcomes[origin] = driver.execute_script(
            "return [...document.querySelectorAll('#rows tr')].map(r => [r.dataset.call, r.dataset.outcome])")
    if run.user_window:
        driver.close()
        driver.switch_to.window(run.user_window)
    readable = [f"{call}: {outcome}" for call, outcome in outcomes[FOREIGN_PAGES] if not outcome.startswith("TypeError")]
    refused = [f"{call}: {outcome}" for call, outcome in outcomes[PAGES] if not outcome.startswith("status ")]
    if len(outcomes[FOREIGN_PAGES]) != 6 or readable:
        raise CheckFailed(f"from {FOREIGN_PAGES} the page could read: {readable or outcomes[FOREIGN_PAGES]}")
    if len(outcomes[PAGES]) != 6 or refused:
        raise CheckFailed(f"from {PAGES} the page could not read: {refused or outcomes[PAGES]}")
    example = outcomes[FOREIGN_PAGES][0][1]
    return (f"3 services: no Access-Control-* for {EVIL} or {FOREIGN_PAGES}, granted to {PAGES}; WebSocket upgrade refused to "
            f"both, granted to {OTHER_PAGES}; in the browser 6 calls from "
            f"{FOREIGN_PAGES} fail ({example}), the same 6 from {PAGES} are read")


def check_tc16(run: Run, deadline: Deadline) -> str:
    run.tokens()
    users = [f"browser-user{n:02d}" for n in range(1, CONCURRENT_USERS + 1)]
    tokens = {user: mint_token(user, "enduser", 900) for user in users}
    for user in users:
        allocate(run.admin, user, CREDITS)
    models = expect(http("GET", f"{API}/api/models", token=tokens[users[0]]), 200, "GET /api/models")
    models = models.get("models", models) if isinstance(models, dict) else models
    pricing = {m.get("modelId") or m.get("id"): m.get("pricing", m) for m in models}

    # Chromium opens at most six connections per host: half the streams go to chat-api as 127.0.0.2, so all ten
    # are open at once (chat-api listens on every address; the page's origin is what CORS looks at).
    apis = [API]
    try:
        socket.create_connection(("127.0.0.2", 3103), timeout=2).close()
        apis.append("http://127.0.0.2:3103")
    except OSError:
        run.notes.append("TC-16: 127.0.0.2 does not reach chat-api, all streams on 127.0.0.1 (six at a time)")

    driver = run.browser()
    if run.user_window:
        driver.switch_to.new_window("tab")
    open_page(driver, deadline, f"{PAGES}/concurrent.html")
    driver.execute_script("window.concurrentPage.run(arguments[0])", {
        "users": [{"name": user, "token": tokens[user]} for user in users], "apis": apis,
        "message": "Write a short note about concurrency"})
    wait_state(driver, deadline, "run-state", "done", cap=45)
    rows = driver.execute_script("""return [...document.querySelectorAll('#rows tr')].map(r => ({
        user: r.dataset.user, state: r.dataset.state, session: r.dataset.session, api: r.dataset.api,
        first: Number(r.dataset.firstChunkMs), done: Number(r.dataset.completeMs), chunks: Number(r.dataset.chunks),
        complete: r.dataset.completeJson ? JSON.parse(r.dataset.completeJson) : null,
        text: r.lastElementChild.textContent, stateText: r.children[3].textContent}))""")
    if run.user_window:
        driver.close()
        driver.switch_to.window(run.user_window)
    failures = [f"{r['user']}: {r['state']} {redact(r['stateText'])}" for r in rows if r["state"] != "complete"]
    if len(rows) != CONCURRENT_USERS or failures:
        raise CheckFailed(f"{len(rows)} rows; not complete: {failures}")
    last_first, first_done = max(r["first"] for r in rows), min(r["done"] for r in rows)
    if last_first >= first_done:
        raise CheckFailed(f"the streams did not run at once: the last first chunk came at {last_first} ms, the first complete at {first_done} ms")

    findings = []
    for r in rows:
        c = r["complete"]
        if r["text"] != c["content"] or not r["text"]:
            findings.append(f"{r['user']}: page text differs from complete.content")
        if c["outputTokens"] != len(c["content"].split()) or c["totalTokens"] != c["inputTokens"] + c["outputTokens"]:
            findings.append(f"{r['user']}: tokens {c['inputTokens']}+{c['outputTokens']}={c['totalTokens']} for {len(c['content'].split())} words")
        price = pricing.get(c["modelId"])
        if price:
            millionths = c["inputTokens"] * round(price["inputCreditsPer1K"] * 1e6) + c["outputTokens"] * round(price["outputCreditsPer1K"] * 1e6)
            cost = -(-millionths // 1_000_000_000)
            if c["creditsCharged"] != cost:
                findings.append(f"{r['user']}: charged {c['creditsCharged']} credits, the model's prices make {cost}")
        else:
            findings.append(f"{r['user']}: no pricing for {c['modelId']} in /api/models")
        if stored_reply(tokens[r["user"]], r["session"], c["messageId"]) != r["text"]:
            findings.append(f"{r['user']}: stored reply differs from the page's")

    # The accounting stand-in, per user, once every settlement has landed.
    def settled() -> dict[str, Any] | None:
        books = {}
        for user in users:
            balance = http("GET", f"{ACCOUNTING}/api/credits/balance", token=tokens[user]).body
            stats = http("GET", f"{ACCOUNTING}/api/usage/stats", token=tokens[user]).body
            if balance.get("reservedCredits") != 0 or stats.get("totalRequests") != 1:
                return None
            books[user] = (balance, stats)
        return books

    books = poll(deadline, "every settlement in the accounting stand-in", settled, cap=20, interval=0.3)
    for r in rows:
        c = r["complete"]
        balance, stats = books[r["user"]]
        charged = CREDITS - balance["totalCredits"]
        remaining = sum(a["credits"] for a in balance["activeAllocations"])
        expected = {"charged (allocated - balance)": c["creditsCharged"], "allocation remaining": CREDITS - c["creditsCharged"],
                    "totalCreditsUsed": c["creditsCharged"], "totalInputTokens": c["inputTokens"],
                    "totalOutputTokens": c["outputTokens"], "totalTokens": c["inputTokens"] + c["outputTokens"]}
        got = {"charged (allocated - balance)": charged, "allocation remaining": remaining,
               "totalCreditsUsed": stats.get("totalCreditsUsed"), "totalInputTokens": stats.get("totalInputTokens"),
               "totalOutputTokens": stats.get("totalOutputTokens"), "totalTokens": stats.get("totalTokens")}
        wrong = [f"{k} {got[k]} != {v}" for k, v in expected.items() if got[k] != v]
        if wrong:
            findings.append(f"{r['user']}: " + ", ".join(wrong))
    if findings:
        raise CheckFailed("; ".join(findings))
    tokens_in = sum(r["complete"]["inputTokens"] for r in rows)
    tokens_out = sum(r["complete"]["outputTokens"] for r in rows)
    credits = sum(r["complete"]["creditsCharged"] for r in rows)
    return (f"{len(rows)} streams over {len(apis)} host names, all open at once (last first chunk {last_first} ms, first complete "
            f"{first_done} ms, last complete {max(r['done'] for r in rows)} ms); accounting charged each its tokens "
            f"({tokens_in}+{tokens_out} tokens, {credits} credits in all)")


def check_console(run: Run, deadline: Deadline) -> str | list[str]:
    path = ROOT / "scripts" / "browser_console.py"
    if not path.exists():
        return "skipped: scripts/browser_console.py does not exist"
    spec = importlib.util.spec_from_file_location("browser_console", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    spec.loader.exec_module(module)
    if not callable(getattr(module, "check_console", None)):
        return "skipped: scripts/browser_console.py defines no check_console"
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["failures"] = module.check_console(new_driver, {"api": API, "auth": AUTH, "accounting": ACCOUNTING}, str(SHOTS))
        except BaseException as error:  # reported as a failure of the console, not of this harness
            outcome["error"] = f"{type(error).__name__}: {error}"

    worker = threading.Thread(target=call, name="check_console", daemon=True)
    worker.start()
    worker.join(deadline.left())
    if worker.is_alive():
        raise CheckFailed(f"check_console did not return within {LIMITS['e']} s")
    if "error" in outcome:
        raise CheckFailed(f"check_console raised {redact(outcome['error'])}")
    failures = [redact(str(f)) for f in (outcome.get("failures") or [])]
    return failures if failures else "check_console reported no failure"


def check_shots(run: Run, deadline: Deadline, wanted: list[str]) -> str:
    found = []
    for name in wanted:
        path = SHOTS / name
        if not path.exists():
            raise CheckFailed(f"{path.relative_to(ROOT)} was not written")
        head = path.read_bytes()[:24]
        if head[:8] != b"\x89PNG\r\n\x1a\n":
            raise CheckFailed(f"{name} is not a PNG")
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        found.append(f"{name} {width}x{height}")
    others = sorted(p.name for p in SHOTS.glob("*.png") if p.name not in wanted)
    return ", ".join(found) + (f"; also {', '.join(others)}" if others else "") + f" in {SHOTS.relative_to(ROOT)}"


# ---------------------------------------------------------------------------------------------------- main

TITLES = {
    "a": "TC-09 EventSource stream from a page",
    "b": "TC-12 supervisor observes over WebSocket",
    "c": "CORS for allowed and foreign origins",
    "d": f"TC-16 {CONCURRENT_USERS} users stream at once, accounting exact",
    "e": "web console (scripts/browser_console.py)",
    "f": "screenshots",
}


def main(argv: list[str]) -> int:
    selected = argv or list("abcdef")
    unknown = [c for c in selected if c not in TITLES]
    if unknown:
        print(f"browser-check: unknown check {' '.join(unknown)} (a b c d e f)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    run = Run()
    passed = failed = 0

    def report(letter: str, title: str, ok: bool, took: float, detail: str) -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
        print(f"browser-check: {'ok' if ok else 'FAILED'}: {letter} {title} ({took:.1f} s): {redact(detail)}", flush=True)

    def attempt(letter: str, title: str, limit: float, body: Callable[[Deadline], Any]) -> Any:
        t0 = time.monotonic()
        try:
            value = body(Deadline(limit))
        except CheckFailed as failure:
            report(letter, title, False, time.monotonic() - t0, str(failure))
            return None
        except Exception as error:  # a broken page or service: a failure of this check, not the end of the run
            report(letter, title, False, time.monotonic() - t0, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            return None
        took = time.monotonic() - t0
        if isinstance(value, list):  # parts, or a list of failures
            if value and isinstance(value[0], tuple):
                for part, failure in value:
                    report(letter, f"{title}: {part}", failure is None, took, failure or "as specified")
            elif value:
                for failure in value:
                    report(letter, title, False, took, failure)
            else:
                report(letter, title, True, took, "")
        else:
            report(letter, title, True, took, value)
        return value

    try:
        if "a" in selected:
            attempt("a", TITLES["a"], LIMITS["a"], lambda d: check_tc09(run, d))
        if "b" in selected:
            def tc12(deadline: Deadline) -> list[tuple[str, str | None]]:
                parts = check_tc12(run, deadline)
                return [("same chunks on both pages, equal to the stored reply", None), *parts]
            attempt("b", TITLES["b"], LIMITS["b"], tc12)
        if "c" in selected:
            attempt("c", TITLES["c"], LIMITS["c"], lambda d: check_cors(run, d))
        if "d" in selected:
            attempt("d", TITLES["d"], LIMITS["d"], lambda d: check_tc16(run, d))
        if "e" in selected:
            attempt("e", TITLES["e"], LIMITS["e"], lambda d: check_console(run, d))
        if "f" in selected:
            wanted = [name for letter, name in (("a", "tc09-user.png"), ("b", "tc12-supervisor.png")) if letter in selected]
            attempt("f", TITLES["f"], LIMITS["f"], lambda d: check_shots(run, d, wanted))
        if run.shutdown_pending:
            attempt("b", "TC-12 observer on chat-api shutdown (SIGTERM)", LIMITS["shutdown"], lambda d: check_shutdown(run, d))
    finally:
        quit_drivers()
    for note in run.notes:
        print(f"browser-check: note: {redact(note)}")
    print(f"browser-check: browser checks took {time.monotonic() - started:.1f} s")
    print(f"browser-check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
