"""A small headless-Chromium driver over the DevTools protocol (websocket), for the report tests."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--remote-debugging-port=0", "--remote-allow-origins=*",
]


def find_chromium() -> str | None:
    """Path of the Chromium binary, or None when it is not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    """What loading one page produced."""

    url: str
    errors: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    title: str = ""


class Chromium:
    """Headless Chromium with a fresh profile, driven through one DevTools page session."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="featurelake-chromium-")
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        ws_url = self._read_ws_url()
        self.ws = connect(ws_url, max_size=None, open_timeout=timeout)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _read_ws_url(self) -> str:
        deadline = time.monotonic() + self.timeout
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode}")
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                return match.group(1)
        raise RuntimeError("chromium did not report its DevTools address")

    def call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        """Send one DevTools command and return its result (events met meanwhile are kept)."""
        message_id = next(self.ids)
        message = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv(timeout=self.timeout))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(method)

    def _wait_for(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if any(e.get("method") == method for e in self.events):
                return
            self.events.append(json.loads(self.ws.recv(timeout=self.timeout)))
        raise TimeoutError(method)

    def load(self, url: str) -> PageResult:
        """Open ``url``, wait for the load event and report console errors, exceptions and links."""
        self.events.clear()
        result = self.call("Page.navigate", {"url": url}, session=True)
        page = PageResult(url)
        if result.get("errorText"):
            page.errors.append(f"navigation failed: {result['errorText']}")
            return page
        self._wait_for("Page.loadEventFired")
        time.sleep(0.2)  # let late console messages arrive
        self.call("Runtime.evaluate", {"expression": "1"}, session=True)
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                page.errors.append("console: " + " ".join(str(a.get("value", a.get("description")))
                                                          for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                page.errors.append("exception: " + json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                page.errors.append("log: " + params["entry"].get("text", ""))
            elif method == "Network.loadingFailed":
                page.errors.append("network: " + params.get("errorText", ""))
        page.links = self.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        page.title = self.evaluate("document.title")
        return page

    def evaluate(self, expression: str):
        """Evaluate JavaScript in the page and return its value."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, target: Path, width: int = 1280) -> Path:
        """Save a PNG of the whole current page."""
        height = int(self.evaluate("document.documentElement.scrollHeight") or 800)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": False},
                  session=True)
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session=True)["data"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data))
        return target

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)
