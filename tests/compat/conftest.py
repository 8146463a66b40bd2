"""Fixtures for the Svix SDK compatibility suite.

A session starts one real hookbox (`target/debug/hookbox serve`) on a fresh data directory and
one real HTTP receiver; tests drive hookbox with the official `svix` Python SDK and check every
delivery the receiver records with `standardwebhooks`.

Every HTTP exchange the SDK (or the raw helper) has with hookbox during a test is recorded, and a
failing test's report shows the last few, so an incompatibility can be read off the report.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import typing as t
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import svix
from svix.api import SvixOptions
from svix.exceptions import HttpError

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("HOOKBOX_BIN", ROOT / "target" / "debug" / "hookbox"))
LISTENING = re.compile(r"hookbox listening on (http://127\.0\.0\.1:\d+) \(API at /api/v1")
# One entry per attempt: first immediately, then 1 s, then 1 s (3 attempts in all).
RETRY_SCHEDULE = "0s,1s,1s"
MAX_ATTEMPTS = len(RETRY_SCHEDULE.split(","))
STARTUP_TIMEOUT = 30.0
DEFAULT_WAIT = 15.0


# --------------------------------------------------------------------------------------------
# Small helpers shared by the tests
# --------------------------------------------------------------------------------------------


def uniq(prefix: str) -> str:
    """A fresh name/uid: letters, digits and `-` only (valid as a Svix uid and event type)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(fn: t.Callable[[], t.Any], what: str, timeout: float = DEFAULT_WAIT,
               interval: float = 0.05) -> t.Any:
    """Polls `fn` until it returns something truthy; returns that value or fails with `what`."""
    deadline = time.monotonic() + timeout
    last: t.Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = fn()
            last_exc = None
            if last:
                return last
        except (AssertionError, HttpError) as e:  # not ready yet
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f"last error: {last_exc!r}" if last_exc else f"last value: {last!r}"
            pytest.fail(f"timed out after {timeout}s waiting for {what} ({detail})")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Traffic log: what the SDK sent and what hookbox answered, shown when a test fails
# --------------------------------------------------------------------------------------------


class TrafficLog:
    def __init__(self) -> None:
        self.entries: list[str] = []
        self.lock = threading.Lock()

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def add(self, method: str, url: str, req_body: bytes | None, status: int,
            resp_body: bytes) -> None:
        def show(b: bytes | None) -> str:
            if not b:
                return "(empty)"
            s = b.decode("utf-8", "replace")
            return s if len(s) <= 1500 else s[:1500] + f"... ({len(s)} chars)"

        with self.lock:
            self.entries.append(
                f"{method} {url}\n  request body: {show(req_body)}\n"
                f"  -> {status} {show(resp_body)}"
            )

    def tail(self, n: int = 8) -> str:
        with self.lock:
            return "\n".join(self.entries[-n:])


TRAFFIC = TrafficLog()


def _log_response(response: httpx.Response) -> None:
    response.read()
    req = response.request
    TRAFFIC.add(req.method, str(req.url), req.content, response.status_code, response.content)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        tail = TRAFFIC.tail()
        if tail:
            report.sections.append(("hookbox traffic (last exchanges)", tail))


@pytest.fixture(autouse=True)
def _clear_traffic():
    TRAFFIC.clear()
    yield


# --------------------------------------------------------------------------------------------
# hookbox server
# --------------------------------------------------------------------------------------------


@dataclass
class Hookbox:
    url: str  # http://127.0.0.1:PORT
    token: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def request(self, method: str, path: str, body: t.Any = None,
                token: str | None = None, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], t.Any]:
        """A raw call for what the SDK cannot express. `path` is relative to the server root.

        Returns (status, lower-cased headers, parsed JSON body or raw text or None). Redirects are
        not followed (a 3xx comes back as is)."""
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Authorization": f"Bearer {token or self.token}", "Accept": "application/json"}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=15) as resp:
                status, rh, raw = resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as e:
            status, rh, raw = e.code, dict(e.headers.items()), e.read()
        TRAFFIC.add(method, self.url + path, data, status, raw)
        parsed: t.Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
        return status, {k.lower(): v for k, v in rh.items()}, parsed

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[override]
        return None


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKBOX_")}
    # HOOKBOX_TEST_DATABASE_URL runs the suite against hookbox on that PostgreSQL database.
    if os.environ.get("HOOKBOX_TEST_DATABASE_URL"):
        env["HOOKBOX_DATABASE_URL"] = os.environ["HOOKBOX_TEST_DATABASE_URL"]
        env["HOOKBOX_MAIN_KEY"] = os.environ["HOOKBOX_TEST_MAIN_KEY"]
    env["HOOKBOX_RETRY_SCHEDULE"] = RETRY_SCHEDULE
    env["HOOKBOX_LOG_FORMAT"] = "text"
    env.setdefault("NO_COLOR", "1")
    return env


@pytest.fixture(scope="session")
def hookbox(tmp_path_factory) -> t.Iterator[Hookbox]:
    if not BINARY.exists():
        pytest.exit(f"{BINARY} not found: run `cargo build --bins` first (scripts/compat does)",
                    returncode=2)
    data_dir = tmp_path_factory.mktemp("hookbox-data")
    env = _clean_env()
    created = subprocess.run(
        [str(BINARY), "token", "create", "--data-dir", str(data_dir), "--name", "compat"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, f"token create failed: {created.stderr}"
    token = created.stdout.strip()
    assert token and "\n" not in token, f"token create printed more than a token: {created.stdout!r}"

    log_path = data_dir / "hookbox.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(BINARY), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0",
         "--allow-destination", "127.0.0.0/8"],
        env=env, stdout=subprocess.PIPE, stderr=log, cwd=str(data_dir),
    )
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            text = raw.decode("utf-8", "replace")
            log.write(b"[stdout] " + raw)
            log.flush()
            lines.put(text)
        lines.put(None)

    pumper = threading.Thread(target=pump, name="hookbox-stdout", daemon=True)
    pumper.start()

    url = None
    seen: list[str] = []
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while url is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        m = LISTENING.search(line)
        if m:
            url = m.group(1)
    if url is None:
        proc.kill()
        proc.wait()
        log.close()
        pytest.exit(
            "hookbox did not print its listening line; stdout: "
            f"{''.join(seen)!r}\nlog:\n{log_path.read_text(errors='replace')[-4000:]}",
            returncode=3,
        )

    hb = Hookbox(url=url, token=token, data_dir=data_dir, log_path=log_path, proc=proc)
    try:
        yield hb
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        pumper.join(timeout=5)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def client(hookbox: Hookbox) -> svix.Svix:
    c = svix.Svix(hookbox.token, SvixOptions(server_url=hookbox.url))
    # Record every exchange for failure reports (the SDK's own httpx client).
    c._httpx_client.event_hooks["response"].append(_log_response)
    return c


# --------------------------------------------------------------------------------------------
# Receiver: a real HTTP server recording every request
# --------------------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> t.Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    base: str = ""
    requests: list[Received] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    # path -> statuses to answer with next (consumed first), then the path's default status
    scripted: dict[str, list[int]] = field(default_factory=dict)
    defaults: dict[str, int] = field(default_factory=dict)

    def url(self, name: str | None = None) -> str:
        """A fresh receiving URL; each endpoint gets its own path so tests never mix."""
        return f"{self.base}/{name or uniq('hook')}"

    @staticmethod
    def path_of(url: str) -> str:
        return "/" + url.split("/", 3)[3]

    def set_status(self, url: str, status: int) -> None:
        with self.cond:
            self.defaults[self.path_of(url)] = status

    def fail_next(self, url: str, n: int, status: int = 500) -> None:
        with self.cond:
            self.scripted[self.path_of(url)] = [status] * n

    def status_for(self, path: str) -> int:
        with self.cond:
            queue_ = self.scripted.get(path)
            if queue_:
                return queue_.pop(0)
            return self.defaults.get(path, 200)

    def record(self, r: Received) -> None:
        with self.cond:
            self.requests.append(r)
            self.cond.notify_all()

    def received(self, url: str) -> list[Received]:
        p = self.path_of(url)
        with self.cond:
            return [r for r in self.requests if r.path == p]

    def wait_for(self, url: str, count: int = 1, timeout: float = DEFAULT_WAIT,
                 where: t.Callable[[Received], bool] | None = None) -> list[Received]:
        """Waits until `url` received at least `count` requests (matching `where`)."""
        p = self.path_of(url)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [r for r in self.requests if r.path == p and (where is None or where(r))]
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(
                        f"timed out after {timeout}s: {url} received {len(got)} matching "
                        f"request(s), wanted {count}; all requests to it: "
                        f"{[(r.webhook_id, r.body[:200]) for r in self.requests if r.path == p]}"
                    )
                self.cond.wait(remaining)


@pytest.fixture(scope="session")
def receiver() -> t.Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            rec.record(Received(
                method=self.command, path=path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body, at=time.time(),
            ))
            status = rec.status_for(path)
            reply = json.dumps({"received": True, "status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: t.Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------------------------
# Data fixtures
# --------------------------------------------------------------------------------------------


@dataclass
class EventTypes:
    created: str
    deleted: str
    paid: str


@pytest.fixture(scope="session")
def event_types(client: svix.Svix) -> EventTypes:
    """Event types registered once for the session (endpoints may only filter on known types)."""
    from svix.models import EventTypeIn

    names = EventTypes(created="user.created", deleted="user.deleted", paid="invoice.paid")
    for name in (names.created, names.deleted, names.paid):
        client.event_type.create(EventTypeIn(name=name, description=f"compat {name}"))
    return names


@pytest.fixture
def app(client: svix.Svix):
    """A fresh application for one test."""
    from svix.models import ApplicationIn

    return client.application.create(ApplicationIn(name="compat test app", uid=uniq("app")))
