"""Headless Chromium driven over the DevTools protocol: open a page as a person would, collect
what its console said, check what rendered, take screenshots.

Why DevTools over a websocket rather than ``chromium --screenshot``/``--dump-dom``: one
browser serves every page of a test session; the load event is awaited rather than guessed
with a virtual-time budget; console errors, uncaught exceptions and failed loads arrive as
typed events instead of being scraped from a log whose format changes between releases; and
the chart checks run inside the page (each image decoded, its size after layout), so a
broken image is caught even when the screenshot looks plausible.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import ClientConnection, connect

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    """The Chromium binary, installed from Debian's package when it is missing (as root:
    the same command as ``make browser``)."""
    path = find_chromium()
    if path:
        return path
    if os.geteuid() != 0:
        raise RuntimeError("chromium is not installed and this user cannot apt-get it: "
                           "run `make browser` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env,
                   capture_output=True)
    path = find_chromium()
    if not path:
        raise RuntimeError("apt-get installed chromium but no binary is on PATH")
    return path


@dataclass
class PageLoad:
    """What one page load showed: console errors, chart states, where the charts are."""

    url: str
    errors: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)  # id, rendered, width, height, x, y


class Browser:
    """One headless Chromium and a websocket to one page target."""

    def __init__(self, binary: str, width: int = 1280, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="alphaline-chromium-")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = self._port(deadline=time.monotonic() + 60)
        # keep reading Chromium's log, or a full pipe would stall the browser mid-session
        threading.Thread(target=self._drain, daemon=True).start()
        pages = [t for t in self._json(port, "list") if t["type"] == "page"]
        self.ws: ClientConnection = connect(pages[0]["webSocketDebuggerUrl"], max_size=None,
                                            open_timeout=30)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def _port(self, deadline: float) -> int:
        assert self.proc.stderr is not None
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            lines.append(line)
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                return int(found.group(1))
        self.close()
        raise RuntimeError("chromium did not open its DevTools port: " + "".join(lines[-20:]))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for _ in self.proc.stderr:
            pass

    @staticmethod
    def _json(port: int, what: str) -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/{what}", timeout=30) as r:
            return json.load(r)

    def call(self, method: str, timeout: float = 60.0, **params) -> dict:
        """Send one command, keep the events that arrive meanwhile, return its result."""
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv(
                timeout=max(0.1, deadline - time.monotonic()))))

    def evaluate(self, expression: str):
        out = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                        returnByValue=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"evaluate: {out['exceptionDetails']}")
        return out["result"].get("value")

    def open(self, path: Path) -> PageLoad:
        """Load ``path`` as a file:// URL, wait for its load event and for every image to
        decode, and report console errors and the state of each ``figure.chart``."""
        url = path.resolve().as_uri()
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        charts = self.evaluate(_CHART_STATE)
        load = PageLoad(url=url, charts=charts)
        for ev in self.events:
            p = ev.get("params", {})
            if ev.get("method") == "Runtime.consoleAPICalled" and p.get("type") in (
                    "error", "assert"):
                load.errors.append("console: " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif ev.get("method") == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                load.errors.append("exception: " + d.get("exception", {}).get(
                    "description", d.get("text", "")))
            elif ev.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                load.errors.append(f"{p['entry']['source']}: {p['entry']['text']} "
                                   f"{p['entry'].get('url', '')}")
        return load

    def visit(self, url: str) -> None:
        """Navigate to ``url`` (a served page, e.g. a web app) and wait for its load event."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def text(self) -> str:
        """The page's visible text, as a person would read it."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for_text(self, needles: list[str], timeout: float = 60.0) -> str:
        """Poll the visible text until every needle shows (a single-page app renders after
        its load event, from its own API calls); return the text, or fail naming what never
        appeared and what the page said instead."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            missing = [n for n in needles if n not in text]
            if not missing:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout:.0f} s the page still lacks {missing}; "
                                     f"it shows:\n{text[:3000]}")
            time.sleep(0.25)

    def click_text(self, label: str,
                   selector: str = "[role=tab], li, button, a") -> None:
        """Click the first element matching ``selector`` whose text is exactly ``label``
        (a tab, a link), as a person would."""
        found = self.evaluate(f"""(() => {{
            const el = [...document.querySelectorAll({json.dumps(selector)})]
                .find(e => e.textContent.trim() === {json.dumps(label)});
            if (!el) return false;
            el.click();
            return true;
        }})()""")
        if not found:
            raise AssertionError(f"no {selector!r} element reads {label!r}; the page shows:\n"
                                 f"{self.text()[:3000]}")

    def screenshot(self, clip: dict | None = None) -> bytes:
        """A PNG of the page (or of ``clip``: x, y, width, height in CSS pixels)."""
        params: dict = {"format": "png", "captureBeyondViewport": True}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)


# In the page: wait until every image has decoded (or failed), then measure each chart.
_CHART_STATE = """
(async () => {
  await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
  return [...document.querySelectorAll('figure.chart')].map(f => {
    const media = f.querySelector('img, svg, canvas');
    const r = (media || f).getBoundingClientRect();
    const ok = !!media && (media.tagName !== 'IMG' ||
                           (media.complete && media.naturalWidth > 0));
    return {id: f.dataset.chart, rendered: ok && r.width > 50 && r.height > 50,
            width: r.width, height: r.height, x: r.left + window.scrollX,
            y: r.top + window.scrollY};
  });
})()
"""


def pixel_stats(png: bytes, ink: tuple[int, int, int] | None = None) -> dict[str, float]:
    """Grey-level variance, share of non-white pixels, and share of pixels within 40 of the
    colour ``ink`` (a chart's line colour), of a PNG."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype="float64")
    grey = rgb.mean(axis=2)
    out = {"variance": float(grey.var()), "non_white": float((grey < 245).mean())}
    if ink is not None:
        out["ink"] = float((np.abs(rgb - np.array(ink)).max(axis=2) < 40).mean())
    return out
