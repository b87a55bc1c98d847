"""Open report.html in headless Chromium and check what a reader would see: console errors, images that
fail to load, missing tables, any request leaving the machine; save a full-page screenshot.

Why a real browser: a page can be valid HTML and still show broken images or rely on the network. The
browser is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON messages
ended by NUL on fds 3 and 4), so nothing beyond the standard library and a Chromium binary is needed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The binaries behind distributions' wrapper scripts: Debian's /usr/bin/chromium does not pass fds 3 and 4 on.
REAL_BINARIES = ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser",
                 "/opt/google/chrome/chrome")
# The flags for a shared, offline CI machine: no sandbox (root in a container), no GPU, nothing fetched.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--window-size=1200,900")


def find_browser() -> str | None:
    """The path of a Chromium-family browser, or None."""
    for path in REAL_BINARIES:
        if os.access(path, os.X_OK):
            return path
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What the browser saw: console/log errors, images as (src start, loaded), tables, every URL requested."""

    errors: list[str] = field(default_factory=list)
    images: list[tuple[str, bool]] = field(default_factory=list)
    tables: int = 0
    headings: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None


class _Pipe:
    """The DevTools protocol over the browser's fds 3 (commands in) and 4 (replies and events out)."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int) -> None:
        self.proc, self._w, self._r = proc, to_browser, from_browser
        self._buf, self._next_id = b"", 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout_s: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout_s: float = 30.0) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + timeout_s
        while True:
            e = self._read(deadline)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def _read(self, deadline: float) -> dict[str, Any]:

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the browser did not answer in time")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser closed the DevTools pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)


_PROBE = """JSON.stringify({
  images: [...document.images].map(i => [i.getAttribute('src').slice(0, 40), i.complete && i.naturalWidth > 0]),
  tables: document.querySelectorAll('table').length,
  headings: [...document.querySelectorAll('h1, h2')].map(h => h.textContent.trim())
})"""


def check_page(html: Path, screenshot: Path | None = None, browser: str | None = None,
               timeout_s: float = 60.0) -> PageCheck:
    """Load `html` in headless Chromium, collect what `PageCheck` holds and save a full-page PNG."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium-family browser found (" + ", ".join(BROWSERS) + ")")
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    to_r, from_w = (_high_fd(fd) for fd in (to_r, from_w))
    profile = tempfile.mkdtemp(prefix="edgetune-browser-")
    argv = [browser, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
    # a tiny launcher puts the pipe ends on fds 3 and 4 (both start >= 10, so neither dup2 clobbers the other)
    launch = f"import os; os.dup2({to_r}, 3); os.dup2({from_w}, 4); os.execv({browser!r}, {argv!r})"
    proc = subprocess.Popen([sys.executable, "-c", launch], pass_fds=(to_r, from_w),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_r)
    os.close(from_w)
    pipe = _Pipe(proc, to_w, from_r)
    try:
        return _inspect(pipe, Path(html).resolve(), screenshot, timeout_s)
    finally:
        try:
            pipe.call("Browser.close", timeout_s=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        os.close(to_w)
        os.close(from_r)
        shutil.rmtree(profile, ignore_errors=True)


def _high_fd(fd: int) -> int:

    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


def _inspect(pipe: _Pipe, html: Path, screenshot: Path | None, timeout_s: float) -> PageCheck:
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.call(f"{domain}.enable", session=session)
    pipe.events.clear()
    pipe.call("Page.navigate", {"url": html.as_uri()}, session=session)
    pipe.wait_event("Page.loadEventFired", timeout_s)
    probe = json.loads(pipe.call("Runtime.evaluate", {"expression": _PROBE, "returnByValue": True},
                                 session=session)["result"]["value"])
    check = PageCheck(images=[(s, bool(ok)) for s, ok in probe["images"]], tables=int(probe["tables"]),
                      headings=list(probe["headings"]))
    for e in pipe.events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            check.errors.append(params.get("exceptionDetails", {}).get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            check.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            check.errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            check.requests.append(params.get("request", {}).get("url", "")[:80])
    if screenshot is not None:
        size = pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = pipe.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": {"x": 0, "y": 0, "width": size["width"],
                                                             "height": size["height"], "scale": 1}},
                         session=session, timeout_s=timeout_s)
        Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        check.screenshot = Path(screenshot)
    return check
