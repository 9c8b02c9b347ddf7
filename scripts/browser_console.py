#!/usr/bin/env python3
"""The web console in a real headless browser (issue 12, item 3): the flows a person would use, through the page.

    browser_console.py API_URL AUTH_URL ACCOUNTING_URL SHOTS_DIR [CONSOLE_URL]

or from another script: `check_console(new_driver, urls, shots_dir)`, which returns a list of failures (empty when
all is well). `new_driver()` returns a fresh headless Chrome WebDriver (`headless_chrome()` below is one);
`urls` is {"api", "auth", "accounting"} and, optionally, "console" (default: the api's `/console/`).

What it checks, with the guide's users only (user1, supervisor1, and admin to give user1 credits when short):
  1. user1 signs in with the form; the header shows the user, the role and a credit balance.
  2. user1 creates a session; it opens and is in the list (`li[data-session-id]`).
  3. user1 sends a message; the assistant's text is read from the page at least 3 times while its element has
     `data-state="streaming"`, through at least 3 distinct lengths, each a prefix of the next, before
     `data-state="complete"`.
  4. After a reload the tab is still signed in, the session is in the list and reopens with that reply.
  5. supervisor1, in a second browser, sees user1's session in the "generating now" list while a second reply
     runs, follows it, and sees the reply grow in the follow pane and end equal to user1's final text.
  6. A third message sent while that reply runs is refused with 409, shown in the error region with the
     server's message.
  7. Screenshots: console-user.png and console-supervisor.png at 1280x800, console-narrow.png at 390x844
     (where the page must not scroll sideways).
  8. user1 deletes the session from the list.

The replies' pace comes from the Bedrock emulator. Each message carries the emulator's `[[tps:12]]` marker
(12 words a second; the default reply is 24 words, so about 2 s) and the supervisor's one `[[tokens:48]]`
(about 4 s), so the check does not depend on the emulator's EMULATOR_TOKENS_PER_SECOND (default 100: a
0.24 s reply); EMULATOR_TOKENS_PER_SECOND=12 gives every reply the same 2 s. Every wait is a WebDriverWait
with a deadline.
"""
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

USER = ("user1", "User1@123")
SUPERVISOR = ("supervisor1", "Supervisor1@")
ADMIN = ("admin", "admin@admin")
FIRST_MESSAGE = "Tell me about quantum computing [[tps:12]]"
SECOND_MESSAGE = "And in more words, please [[tokens:48]] [[tps:12]]"
THIRD_MESSAGE = "One more question while you are still answering"
ASSISTANT = "#messages .message[data-role='assistant']"


def headless_chrome():
    """A fresh headless Chromium (Debian's chromium and chromium-driver) with the browser log kept."""
    options = webdriver.ChromeOptions()
    if os.path.exists("/usr/bin/chromium"):
        options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
    service = Service(driver_path) if driver_path else Service()
    return webdriver.Chrome(service=service, options=options)


class Failed(Exception):
    """A check that cannot go on; its message is the failure."""


def check_console(new_driver, urls, shots_dir):
    """Runs every check above; returns the failures as sentences (an empty list when all passed)."""
    failures = []
    console = urls.get("console", urls["api"].rstrip("/") + "/console/")
    os.makedirs(shots_dir, exist_ok=True)
    drivers = []

    def step(name, action):
        """Runs one step; a failure is recorded and the step's value is None."""
        try:
            return action()
        except Failed as failure:
            failures.append(f"{name}: {failure}")
        except TimeoutException as timeout:
            failures.append(f"{name}: timed out{(': ' + timeout.msg) if timeout.msg else ''}")
        except Exception as error:  # a broken page must not stop the other checks
            failures.append(f"{name}: {type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}")
        return None

    try:
        step("credits", lambda: ensure_credits(urls))
        user = new_driver()
        drivers.append(user)
        set_viewport(user, 1280, 800)
        if step("user1 signs in", lambda: sign_in(user, console, *USER, role="enduser")) is None:
            return failures
        title = f"Browser check {time.strftime('%H:%M:%S')}"
        session_id = step("user1 creates a session", lambda: create_session(user, title))
        if session_id is None:
            return failures
        first = step("the reply streams", lambda: send_and_watch(user, FIRST_MESSAGE))
        step("after a reload", lambda: check_reload(user, session_id, first))

        supervisor = new_driver()
        drivers.append(supervisor)
        set_viewport(supervisor, 1280, 800)
        if step("supervisor1 signs in", lambda: sign_in(supervisor, console, *SUPERVISOR, role="supervisor")) is not None:
            step("supervisor follows live", lambda: check_supervision(user, supervisor, session_id))
            step("supervisor screenshot", lambda: shoot(supervisor, shots_dir, "console-supervisor.png"))
        step("error screenshot", lambda: shoot(user, shots_dir, "console-error.png"))
        step("error dismissed", lambda: dismiss_error(user))
        step("user screenshot", lambda: shoot(user, shots_dir, "console-user.png"))
        step("narrow screen", lambda: check_narrow(user, shots_dir))
        step("user1 deletes the session", lambda: delete_session(user, session_id))
        for who, driver in zip(("user1", "supervisor1"), drivers):
            step(f"{who}'s browser console", lambda: check_browser_log(driver))
    finally:
        for driver in drivers:
            try:
                driver.quit()
            except WebDriverException:
                pass
    return failures


# --- steps -------------------------------------------------------------------------------------------------


def ensure_credits(urls, least=50, grant=500):
    """Gives user1 credits through the admin (accounting's POST /api/credits/allocate) when fewer than `least`."""
    user_token = login(urls["auth"], *USER)
    balance = http_json("GET", urls["accounting"] + "/api/credits/balance", token=user_token)
    if float(balance.get("totalCredits", 0)) >= least:
        return
    admin_token = login(urls["auth"], *ADMIN)
    http_json("POST", urls["accounting"] + "/api/credits/allocate", token=admin_token,
              body={"targetUserId": USER[0], "credits": grant, "notes": "browser_console.py"})


def sign_in(driver, console, username, password, role):
    driver.get(console)
    wait(driver, 15).until(EC.visibility_of_element_located((By.ID, "signin-username")))
    driver.find_element(By.ID, "signin-username").send_keys(username)
    driver.find_element(By.ID, "signin-password").send_keys(password)
    driver.find_element(By.ID, "signin-button").click()
    wait(driver, 15).until(EC.text_to_be_present_in_element((By.ID, "signed-in-user"), username))
    shown_role = driver.find_element(By.ID, "signed-in-role").text
    if shown_role != role:
        raise Failed(f"the header shows the role {shown_role!r}, expected {role!r}")
    # The balance is a number of credits once the accounting service has answered.
    wait(driver, 15).until(lambda d: d.find_element(By.ID, "balance").get_attribute("data-credits") is not None
                           or d.find_element(By.ID, "balance").text == "unavailable")
    if driver.find_element(By.ID, "balance").text == "unavailable":
        raise Failed(f"the credit balance is unavailable ({error_text(driver)})")
    wait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model-select option"))
    supervises = role in ("supervisor", "admin")
    if driver.find_element(By.ID, "supervisor-pane").is_displayed() != supervises:
        raise Failed(f"the supervisor pane is {'hidden' if supervises else 'shown'} for the role {role}")
    return True


def create_session(driver, title):
    driver.find_element(By.ID, "new-session-title").send_keys(title)
    driver.find_element(By.ID, "create-session-button").click()
    wait(driver, 15).until(EC.text_to_be_present_in_element((By.ID, "conversation-title"), title))
    item = wait(driver, 15).until(lambda d: next(
        (li for li in d.find_elements(By.CSS_SELECTOR, "#session-list li[data-session-id]") if title in li.text), False))
    session_id = item.get_attribute("data-session-id")
    if driver.find_element(By.ID, "messages").get_attribute("data-session-id") != session_id:
        raise Failed("the new session is in the list but is not the one open")
    wait(driver, 10).until(lambda d: d.find_element(By.ID, "message-input").is_enabled())
    return session_id


def send(driver, text):
    box = driver.find_element(By.ID, "message-input")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "send-button").click()


def send_and_watch(driver, text):
    """Sends `text` and samples the new assistant element until it leaves data-state=streaming."""
    before = len(driver.find_elements(By.CSS_SELECTOR, ASSISTANT))
    send(driver, text)
    samples = watch_reply(driver, before, deadline=30)
    streaming = [sample for state, sample in samples if state == "streaming"]
    final_state, final = samples[-1]
    if final_state != "complete":
        raise Failed(f"the reply ended in data-state={final_state!r} ({error_text(driver)})")
    if len(streaming) < 3:
        raise Failed(f"the text was read only {len(streaming)} times while streaming (need 3): is the reply paced?")
    lengths = sorted({len(sample) for sample in streaming})
    if len(lengths) < 3:
        raise Failed(f"the streaming text went through only {len(lengths)} distinct lengths {lengths} (need 3)")
    texts = streaming + [final]
    for earlier, later in zip(texts, texts[1:]):
        if not later.startswith(earlier):
            raise Failed(f"the text did not only grow: {earlier!r} then {later!r}")
    if not final.strip():
        raise Failed("the complete reply is empty")
    return final


def watch_reply(driver, before, deadline):
    """Waits for assistant element number `before` (0-based) and records (data-state, text) until it is done."""
    samples = []

    def finished(d):
        elements = d.find_elements(By.CSS_SELECTOR, ASSISTANT)
        if len(elements) <= before:
            return False
        element = elements[before]
        state = element.get_attribute("data-state")
        samples.append((state, element.find_element(By.CSS_SELECTOR, ".message-text").get_attribute("textContent")))
        return state != "streaming"

    try:
        wait(driver, deadline, poll=0.05).until(finished)
    except TimeoutException:
        last = samples[-1] if samples else "no assistant element"
        raise Failed(f"the reply did not finish within {deadline} s (last seen: {last}; {error_text(driver)})") from None
    return samples


def check_reload(driver, session_id, reply):
    driver.refresh()
    wait(driver, 15).until(EC.text_to_be_present_in_element((By.ID, "signed-in-user"), USER[0]))
    wait(driver, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#session-list li[data-session-id='{session_id}']")))
    # The tab reopens the session it had open, with the reply stored.
    wait(driver, 15).until(lambda d: d.find_element(By.ID, "messages").get_attribute("data-session-id") == session_id
                           and d.find_elements(By.CSS_SELECTOR, ASSISTANT))
    stored = driver.find_elements(By.CSS_SELECTOR, ASSISTANT)[-1].find_element(By.CSS_SELECTOR, ".message-text").text
    if reply is not None and stored.strip() != reply.strip():
        raise Failed(f"after the reload the stored reply is {stored!r}, the streamed one was {reply!r}")
    wait(driver, 10).until(lambda d: d.find_element(By.ID, "message-input").is_enabled())


def check_supervision(user, supervisor, session_id):
    before = len(user.find_elements(By.CSS_SELECTOR, ASSISTANT))
    send(user, SECOND_MESSAGE)
    wait(user, 15).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ASSISTANT)) > before,
                         f"no reply started ({error_text(user)})")

    # A second message while that reply runs: 409, explained in the error region with the server's message.
    send(user, THIRD_MESSAGE)
    wait(user, 10).until(lambda d: d.find_element(By.ID, "error-region").get_attribute("data-status") == "409",
                         "no 409 in the error region after a second message while a reply ran")
    shown = error_text(user)
    if "already running" not in shown or "already being generated" not in shown:
        raise Failed(f"the 409 is not explained with the server's message: {shown!r}")

    # The supervisor finds the session among those generating now (refreshing by the button) and follows it.
    item_selector = f"#active-list li[data-session-id='{session_id}'] button"

    def listed(d):
        found = d.find_elements(By.CSS_SELECTOR, item_selector)
        if found:
            return found[0]
        d.find_element(By.ID, "active-refresh").click()
        return False

    wait(supervisor, 10, poll=0.3).until(listed, "user1's session never showed in the supervisor's active list").click()
    wait(supervisor, 10).until(lambda d: d.find_element(By.ID, "follow-output").get_attribute("data-session-id") == session_id)

    seen = []

    def followed(d):
        jobs = d.find_elements(By.CSS_SELECTOR, "#follow-output [data-testid='follow-job']")
        if not jobs:
            return False
        job = jobs[-1]
        state = job.get_attribute("data-state")
        seen.append((state, job.find_element(By.CSS_SELECTOR, "[data-testid='follow-text']").get_attribute("textContent")))
        return state != "streaming"

    wait(supervisor, 20, poll=0.05).until(followed, "the follow pane showed no finished reply")
    samples = watch_reply(user, before, deadline=20)
    final_state, final = samples[-1]
    if final_state != "complete":
        raise Failed(f"user1's second reply ended in data-state={final_state!r}")
    observed_state, observed = seen[-1]
    if observed_state != "complete":
        raise Failed(f"the followed reply ended in data-state={observed_state!r}")
    if not any(state == "streaming" and text for state, text in seen):
        raise Failed("the follow pane never showed the reply while it was being generated")
    if observed != final:
        raise Failed(f"the supervisor saw {observed!r}, user1 got {final!r}")


def check_narrow(driver, shots_dir):
    set_viewport(driver, 390, 844)
    wait(driver, 5).until(lambda d: d.execute_script("return window.innerWidth") <= 390)
    shoot(driver, shots_dir, "console-narrow.png")
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        raise Failed(f"at 390 px the page is {overflow} px wider than the screen")
    main = driver.find_element(By.ID, "main").rect
    side = driver.find_element(By.CSS_SELECTOR, ".side-pane").rect
    if main["width"] > 390 or side["y"] < main["y"] + main["height"] - 1:
        raise Failed("at 390 px the panes are not stacked (conversation, then sessions)")
    set_viewport(driver, 1280, 800)


def dismiss_error(driver):
    """The error region's Dismiss button empties it."""
    buttons = driver.find_elements(By.ID, "error-dismiss")
    if not buttons:
        raise Failed("no Dismiss button in the error region")
    buttons[0].click()
    wait(driver, 5).until(lambda d: not d.find_element(By.ID, "error-region").text.strip(), "the error region is not empty after Dismiss")


def delete_session(driver, session_id):
    item = f"#session-list li[data-session-id='{session_id}']"
    driver.find_element(By.CSS_SELECTOR, item + " .session-delete").click()
    wait(driver, 5).until(EC.alert_is_present()).accept()
    wait(driver, 10).until(lambda d: not d.find_elements(By.CSS_SELECTOR, item))
    if driver.find_element(By.ID, "conversation-title").text != "No session open":
        raise Failed("the deleted session is still open")


def check_browser_log(driver):
    """No JavaScript error, and nothing refused by the Content-Security-Policy, in the browser's log."""
    try:
        entries = driver.get_log("browser")
    except WebDriverException:
        return
    bad = [entry["message"] for entry in entries if entry.get("level") == "SEVERE"
           and "Failed to load resource" not in entry["message"]]
    if bad:
        raise Failed("errors in the browser's console: " + " | ".join(bad[:5]))


# --- helpers -----------------------------------------------------------------------------------------------


def wait(driver, seconds, poll=0.1):
    return WebDriverWait(driver, seconds, poll_frequency=poll)


def error_text(driver):
    return driver.find_element(By.ID, "error-region").text.replace("\n", " ")


def set_viewport(driver, width, height):
    """Sizes the window so that the page's viewport is width x height."""
    driver.set_window_size(width, height)
    inner_width, inner_height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if (inner_width, inner_height) != (width, height):
        driver.set_window_size(width + (width - inner_width), height + (height - inner_height))


def shoot(driver, shots_dir, name):
    if not driver.save_screenshot(os.path.join(shots_dir, name)):
        raise Failed(f"could not write {name}")


def login(auth_url, username, password):
    return http_json("POST", auth_url.rstrip("/") + "/api/auth/login",
                     body={"username": username, "password": password})["accessToken"]


def http_json(method, url, token=None, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise Failed(f"{method} {url}: HTTP {error.code} {error.read()[:200]!r}") from None


def main(argv):
    if len(argv) not in (5, 6):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    urls = {"api": argv[1], "auth": argv[2], "accounting": argv[3]}
    if len(argv) == 6:
        urls["console"] = argv[5]
    failures = check_console(headless_chrome, urls, argv[4])
    for failure in failures:
        print(f"browser_console: FAILED: {failure}", file=sys.stderr)
    print(f"browser_console: {'ok' if not failures else str(len(failures)) + ' failures'}; screenshots in {argv[4]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
