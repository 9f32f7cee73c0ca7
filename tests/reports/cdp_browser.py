"""A tiny Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (no websocket, no port,
no dependency): Chromium reads NUL-terminated JSON commands on fd 3 and writes replies and events
on fd 4. Enough to load a page, collect console errors, exceptions and dialogs, evaluate a
script and take a full-page screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--remote-debugging-pipe"]


def _high(fd: int) -> int:
    """The same pipe end on a descriptor >= 10, so that mapping it onto 3 or 4 clobbers nothing."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    evaluated: object = None
    screenshot: bytes = b""


class Browser:
    def __init__(self, chromium: str, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="ipw-chromium-")
        cmd_r, self._cmd_w = os.pipe()  # we write commands -> chromium's fd 3
        self._out_r, out_w = os.pipe()  # chromium's fd 4 -> we read
        cmd_r, out_w = (_high(fd) for fd in (cmd_r, out_w))  # never 3 or 4 themselves

        def to_3_and_4() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        # close_fds=False: Python's own descriptors are non-inheritable (PEP 446); only 3 and 4 pass.
        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"], preexec_fn=to_3_and_4,
            close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict] = []

    # -- protocol --------------------------------------------------------------------------------
    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        return self._next

    def _read_one(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from chromium")
            ready, _, _ = select.select([self._out_r], [], [], left)
            if ready:
                chunk = os.read(self._out_r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe (exit code {self.proc.poll()})")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + self.timeout_s
        while True:
            msg = self._read_one(deadline)
            if msg.get("id") == wanted:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._on_event(msg)

    def wait_for(self, method: str) -> dict:
        for i, e in enumerate(self.events):
            if e["method"] == method:
                return self.events.pop(i)
        deadline = time.monotonic() + self.timeout_s
        while True:
            msg = self._read_one(deadline)
            if "method" in msg:
                self._on_event(msg)
                if msg["method"] == method:
                    self.events.remove(msg)
                    return msg

    def _on_event(self, msg: dict) -> None:
        self.events.append(msg)
        if msg["method"] == "Page.javascriptDialogOpening":  # never leave a page blocked on a dialog
            self._send("Page.handleJavaScriptDialog", {"accept": False}, msg.get("sessionId"))

    # -- one page --------------------------------------------------------------------------------
    def load(self, url: str, expression: str | None = None, screenshot: bool = True, width: int = 1280) -> PageResult:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", {}, session)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
        self.call("Page.navigate", {"url": url}, session)
        self.wait_for("Page.loadEventFired")
        result = PageResult()
        if expression:
            reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
            result.evaluated = reply.get("result", {}).get("value")
        if screenshot:
            size = self.call("Page.getLayoutMetrics", {}, session)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            shot = self.call("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, session)
            result.screenshot = base64.b64decode(shot["data"])
        self.call("Runtime.evaluate", {"expression": "1"}, session)  # drain events sent before this point
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                result.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                result.console_errors.append(str(p.get("exceptionDetails", {}).get("text")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                result.console_errors.append(str(p["entry"].get("text")))
            elif m == "Page.javascriptDialogOpening":
                result.dialogs.append(f"{p.get('type')}: {p.get('message')}")
            elif m == "Network.requestWillBeSent":
                result.requests.append(p.get("request", {}).get("url", ""))
        self.events.clear()
        self.call("Target.closeTarget", {"targetId": target})
        return result

    def close(self) -> None:
        try:
            self._send("Browser.close")
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._out_r)
        shutil.rmtree(self.profile, ignore_errors=True)


def file_url(path: Path) -> str:
    return Path(path).resolve().as_uri()
