"""Runs schemathesis against a real hookbox and its served OpenAPI document.

Starts `hookbox serve` on 127.0.0.1:0 with a fresh data directory and an API token made with
`hookbox token create`, stores a few resources (an application, an endpoint, a message and its
failed attempt) so that reads have real data to answer with, then runs `schemathesis run` on
`/api/v1/openapi.json` with the default checks (configured in schemathesis.toml beside this file,
which points the read operations at those resources). Outgoing deliveries are sent through an
HTTP proxy at 127.0.0.1:9 that refuses connections, so the endpoint URLs schemathesis makes up
are never contacted. Extra arguments go to `schemathesis run`.

Exit status: schemathesis's.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BINARY = Path(os.environ.get("HOOKBOX_BIN", ROOT / "target" / "debug" / "hookbox"))
LISTENING = re.compile(r"hookbox listening on (http://127\.0\.0\.1:\d+) \(API at /api/v1")
STARTUP_TIMEOUT = 30.0


def hookbox_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKBOX_")}
    for k in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        env.pop(k, None)
        env.pop(k.upper(), None)
    # Every delivery and test send goes to a refusing local port instead of the made-up host.
    env["HTTP_PROXY"] = env["HTTPS_PROXY"] = "http://127.0.0.1:9"
    # Deliveries and requests may still be in flight when the run ends: a short grace keeps
    # the stop well within the 10 s this script waits for it (the default grace is 10 s too).
    env["HOOKBOX_SHUTDOWN_GRACE"] = "2s"
    env["HOOKBOX_LOG_FORMAT"] = "text"
    env["HOOKBOX_LOG"] = "warn"
    # HOOKBOX_TEST_DATABASE_URL runs hookbox on that PostgreSQL database.
    if os.environ.get("HOOKBOX_TEST_DATABASE_URL"):
        env["HOOKBOX_DATABASE_URL"] = os.environ["HOOKBOX_TEST_DATABASE_URL"]
        env["HOOKBOX_MAIN_KEY"] = os.environ["HOOKBOX_TEST_MAIN_KEY"]
    return env


def start(data_dir: Path, log) -> tuple[subprocess.Popen, str]:
    env = hookbox_env()
    proc = subprocess.Popen(
        [str(BINARY), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0"],
        env=env, stdout=subprocess.PIPE, stderr=log, cwd=str(data_dir),
    )
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    seen = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if m := LISTENING.search(line):
            return proc, m.group(1)
    proc.kill()
    proc.wait()
    sys.exit(f"hookbox did not start; stdout: {''.join(seen)!r}")


def call(url: str, token: str, method: str, path: str, body: object = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{url}/api/v1{path}", data=data, method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=15) as resp:
        return json.loads(resp.read() or b"null")


def seed(url: str, token: str) -> dict[str, str]:
    """Stores the resources the read operations are pointed at; returns their ids by name."""
    call(url, token, "POST", "/event-type", {"name": "user.signup", "description": "seed"})
    app = call(url, token, "POST", "/app", {"name": "seed", "uid": "seed-app"})["id"]
    ep = call(url, token, "POST", f"/app/{app}/endpoint",
              {"url": "http://127.0.0.1:9/seed", "uid": "seed-ep", "channels": ["a"]})["id"]
    msg = call(url, token, "POST", f"/app/{app}/msg",
               {"eventType": "user.signup", "payload": {"a": 1}, "eventId": "seed-msg",
                "channels": ["a"], "tags": ["t"]})["id"]
    deadline = time.monotonic() + 15
    while True:
        attempts = call(url, token, "GET", f"/app/{app}/attempt/msg/{msg}")["data"]
        if attempts:
            break
        if time.monotonic() > deadline:
            sys.exit("the seeded message got no attempt within 15 s")
        time.sleep(0.1)
    return {
        "HOOKBOX_ST_APP": app, "HOOKBOX_ST_ENDPOINT": ep, "HOOKBOX_ST_MSG": msg,
        "HOOKBOX_ST_ATTEMPT": attempts[0]["id"],
    }


def main() -> int:
    if not BINARY.exists():
        sys.exit(f"{BINARY} not found: run `cargo build --bins` first")
    data_dir = Path(tempfile.mkdtemp(prefix="hookbox-schemathesis-"))
    log_path = data_dir / "hookbox.log"
    try:
        token = subprocess.run(
            [str(BINARY), "token", "create", "--data-dir", str(data_dir), "--name", "schemathesis"],
            env=hookbox_env(), capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()
        with open(log_path, "wb") as log:
            proc, url = start(data_dir, log)
            try:
                st = Path(sys.executable).with_name("schemathesis")
                cmd = [
                    str(st), "--config-file", str(HERE / "schemathesis.toml"), "run",
                    f"{url}/api/v1/openapi.json",
                    "--header", f"Authorization: Bearer {token}",
                    # PostgreSQL text cannot hold NUL: there hookbox answers 400 saying so, which
                    # a generated string with NUL in it would take for a valid request refused.
                    *(["--generation-allow-x00=false"]
                      if os.environ.get("HOOKBOX_TEST_DATABASE_URL") else []),
                    *sys.argv[1:],
                ]
                env = {**os.environ, **seed(url, token)}
                print("== schemathesis:", " ".join(cmd).replace(token, "<token>"), flush=True)
                code = subprocess.run(cmd, cwd=str(data_dir), env=env).returncode
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if proc.returncode not in (0, -15):
            print(f"hookbox exited with {proc.returncode}", file=sys.stderr)
            code = code or 1
        if code != 0:
            tail = log_path.read_text(errors="replace").splitlines()[-40:]
            print("== hookbox log (last lines):\n" + "\n".join(tail), file=sys.stderr)
        return code
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
