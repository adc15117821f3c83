"""Open an HTML page in headless Chromium and report what happened: the DOM after the scripts
ran, the script errors, the plotly graphs that drew (WebGL scenes checked by their pixels) and
every URL the page asked for.

Chromium is driven over the Chrome DevTools Protocol on `--remote-debugging-pipe` (NUL-
terminated JSON on file descriptors 3 and 4), so this needs nothing beyond the standard
library: no websocket client, no port to pick or leak. Errors come from the protocol's events,
not from parsing Chromium's log:

- `Runtime.exceptionThrown`: uncaught exceptions and unhandled promise rejections;
- `Runtime.consoleAPICalled` of type error or assert: `console.error(...)`;
- `Log.entryAdded` of level error: the browser's own errors (a resource that failed to load,
  a blocked request, a violated policy);
- `Inspector.targetCrashed`: the page's renderer died;
- plotly's "WebGL is not supported" box (`.no-webgl`), which plotly shows without logging an
  error.

Every request goes through `Network.requestWillBeSent`; the host resolver maps every name to
NOTFOUND, so nothing leaves the machine and a page that needs the network fails visibly.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
    # WebGL on the CPU: ANGLE's SwiftShader backend, opted into explicitly (Chromium no longer
    # falls back to it silently); --disable-gpu keeps Chromium off any real GPU
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--window-size=1280,1024",
    # offline: every host name fails to resolve, and the browser phones nowhere by itself
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
)
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
TIMEOUT = 15.0  # seconds for the whole page: load, plots drawn, WebGL checked
QUIET = 0.5  # after the load event, stop waiting for plots once nothing changed this long

_STATE_JS = """(() => {
  const graphs = [...document.querySelectorAll('.plotly-graph-div')];
  return [document.readyState, graphs.length,
          graphs.filter(g => g.querySelector('.main-svg')).length];
})()"""

# The page areas of the WebGL canvases of each graph that plotly did not replace with its
# "WebGL is not supported" box, in document coordinates, after two animation frames.
_WEBGL_AREAS_JS = """(async () => {
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const areas = [];
  for (const graph of document.querySelectorAll('.js-plotly-plot')) {
    const canvases = [...graph.querySelectorAll('.gl-container canvas')]
      .map(c => c.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0);
    if (!canvases.length || graph.querySelector('.no-webgl')) continue;
    const left = Math.min(...canvases.map(r => r.left));
    const top = Math.min(...canvases.map(r => r.top));
    const right = Math.max(...canvases.map(r => r.right));
    const bottom = Math.max(...canvases.map(r => r.bottom));
    areas.push({x: left + scrollX, y: top + scrollY, width: right - left,
                height: bottom - top, scale: 1});
  }
  return areas;
})()"""

# Text that plotly.js clipped: every header and cell text of every plotly table whose drawn
# box sticks out of its cell's box (plotly cuts it at the column's edge: "total_returr").
CLIPPED_TABLE_TEXT_JS = """(() => {
  const clipped = [];
  for (const cell of document.querySelectorAll('.js-plotly-plot .table .column-cell')) {
    const box = cell.querySelector('.cell-rect');
    const text = cell.querySelector('.cell-text');
    if (!box || !text || !text.textContent) continue;
    const b = box.getBoundingClientRect(), t = text.getBoundingClientRect();
    if (t.width > 0 && (t.left < b.left - 0.5 || t.right > b.right + 0.5)) {
      clipped.push(`${text.textContent} (${t.width.toFixed(1)} px in ${b.width.toFixed(1)})`);
    }
  }
  return clipped;
})()"""

# Two screenshots of each WebGL area, without plotly's SVG layers (axes, backgrounds, colour
# bars): with the canvases, then without. They differ only if WebGL drew something.
_HIDE_SVG_CSS = ".js-plotly-plot svg, .no-webgl { visibility: hidden !important; }"
_HIDE_CANVAS_CSS = ".js-plotly-plot .gl-container canvas { visibility: hidden !important; }"


@dataclass
class PageResult:
    """What a page did in headless Chromium.

    dom : the serialized DOM after the scripts ran (`document.documentElement.outerHTML`).
    errors : script and browser errors, one line each (see the module docstring).
    plots : plotly graphs that drew: `.plotly-graph-div` elements holding a `.main-svg`.
    webgl_plots : graphs whose WebGL canvases show a drawing (3D scenes, `scattergl`):
        canvases in `.gl-container`, no `.no-webgl` box, and a screenshot of the graph's
        area (SVG layers hidden) that changes when the canvases are hidden too.
    graphs : `.plotly-graph-div` elements on the page, drawn or not.
    requests : every URL the page requested, in order.
    warnings : console warnings and browser warnings, for diagnosis only.
    values : what each of the `checks` given to `Chromium.open` evaluated to, by name.
    """

    dom: str
    errors: list[str] = field(default_factory=list)
    plots: int = 0
    webgl_plots: int = 0
    graphs: int = 0
    requests: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def external_requests(self) -> list[str]:
        """Requested URLs that are not local (file:, data:, blob:, about:)."""
        return [url for url in self.requests if not url.startswith(LOCAL_SCHEMES)]


class BrowserError(RuntimeError):
    """Chromium did not start, answer, or finish the page in time."""


def find_chromium() -> str | None:
    """The Chromium executable on PATH (`$IVYBT_CHROMIUM` first), or None."""
    override = os.environ.get("IVYBT_CHROMIUM")
    if override:
        return shutil.which(override)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium executable; without one, skip the calling test, or fail it when the
    environment variable CI is set (CI must not skip the browser tests silently)."""
    found = find_chromium()
    if found is None:
        reason = (
            "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it),"
            " so the HTML reports cannot be opened in a browser"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, where these tests must run", pytrace=False)
        pytest.skip(reason)
    return found


def open_in_chromium(
    path: Path, *, extra_flags: Sequence[str] = (), timeout: float = TIMEOUT
) -> PageResult:
    """Open `path` (a local HTML file) in a fresh headless Chromium and report what happened.

    `Chromium(...).open(path)` with a browser of its own; `extra_flags` are added to
    `CHROMIUM_FLAGS`. Raises `BrowserError` if Chromium is missing, fails, or the page
    outlives `timeout` seconds.
    """
    with Chromium(extra_flags) as browser:
        return browser.open(path, timeout=timeout)


class Chromium:
    """A headless Chromium that opens pages one at a time, each in a fresh browser context
    (its own cookies, storage and cache, like an incognito window) that is thrown away after.
    Reusing one browser for several pages saves its start-up (~0.5 s a page)."""

    def __init__(self, extra_flags: Sequence[str] = ()) -> None:
        executable = find_chromium()
        if executable is None:
            raise BrowserError(f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)})")
        self._flags = [*CHROMIUM_FLAGS, *extra_flags]
        self._process = _Process(executable, self._flags)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self._process.process.poll() is None

    def close(self) -> None:
        self._process.close()

    def open(
        self, path: Path, *, timeout: float = TIMEOUT, checks: Mapping[str, str] | None = None
    ) -> PageResult:
        """Open `path` and report what happened.

        Waits for the load event, then until every plotly graph drew (or nothing changed for
        `QUIET` seconds), evaluates each JavaScript expression of `checks` (name ->
        expression; the values come back in `PageResult.values`), then checks the WebGL
        canvases by their pixels; the DOM is taken before that check touches the page.
        Raises `BrowserError` if Chromium fails or the page outlives `timeout` seconds.
        """
        url = Path(path).resolve().as_uri()
        page = _Page(self._process, time.monotonic() + timeout)
        try:
            page.navigate(url)
            page.wait_for_plots()
            dom = page.evaluate("document.documentElement.outerHTML")
            values = {name: page.evaluate(js) for name, js in (checks or {}).items()}
            graphs, plots = page.plot_counts()
            requests = list(page.requests)  # the page's own, before the checks below
            webgl_plots = page.count_webgl_drawings()
            errors = page.errors + page.webgl_errors()
            page.drain()
        finally:
            page.close()
        return PageResult(
            dom=dom,
            errors=errors,
            plots=plots,
            webgl_plots=webgl_plots,
            graphs=graphs,
            requests=requests,
            warnings=page.warnings,
            values=values,
        )


class _Process:
    """A headless Chromium process and its DevTools pipe: `call` sends a command and returns
    its result, keeping the events that arrive meanwhile in `events`."""

    def __init__(self, executable: str, flags: Sequence[str]) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="ivybt-chromium-")
        self._stderr = tempfile.TemporaryFile()
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The pipe must be fds 3 (Chromium reads) and 4 (it writes): hand them over as stdin
        # and stdout, which the shell moves to 3 and 4 before exec'ing Chromium.
        command = [
            "/bin/sh",
            "-c",
            'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null',
            executable,
            *flags,
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}",
            "about:blank",
        ]
        try:
            self.process = subprocess.Popen(
                command,
                stdin=to_browser_r,
                stdout=from_browser_w,
                stderr=self._stderr,
                start_new_session=True,  # its own process group, ended as one in close()
            )
        finally:
            os.close(to_browser_r)
            os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._closed = False
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise BrowserError(f"Chromium exited{self._stderr_tail()}") from None
        return self._next_id

    def receive(self, until: float) -> dict[str, Any] | None:
        """The next message, or None if none arrives before the monotonic time `until`."""
        while b"\0" not in self._buffer:
            left = until - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium exited{self._stderr_tail()}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(
        self, method: str, params: dict | None = None, session: str | None = None, *, until: float
    ) -> dict[str, Any]:
        number = self.send(method, params, session)
        while True:
            message = self.receive(until)
            if message is None:
                raise BrowserError(f"no answer to {method} in time")
            if message.get("id") == number:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            self.events.append(message)

    def close(self) -> None:
        """Ask Chromium to quit; after 5 s, or if a helper process of it outlives it, end its
        process group (the one it was started in, which only it and its helpers are in)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._stderr.close()
        self._profile.cleanup()

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return ": " + " | ".join(lines[-5:]) if lines else ""


class _Page:
    """One tab of `browser` in a browser context of its own, attached with its own session;
    collects errors, warnings and requests from the events."""

    def __init__(self, browser: _Process, deadline: float) -> None:
        self.browser = browser
        self.deadline = deadline
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.requests: list[str] = []
        self.loaded = False
        browser.events.clear()  # one page at a time: earlier pages' events are done with
        self._seen = 0
        self.context = browser.call("Target.createBrowserContext", until=deadline)[
            "browserContextId"
        ]
        self.target = browser.call(
            "Target.createTarget",
            {"url": "about:blank", "browserContextId": self.context},
            until=deadline,
        )["targetId"]
        attached = browser.call(
            "Target.attachToTarget", {"targetId": self.target, "flatten": True}, until=deadline
        )
        self.session = attached["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page", "Inspector"):
            self.call(f"{domain}.enable")

    def close(self) -> None:
        """Close the tab and throw its browser context away (not if Chromium is gone)."""
        until = time.monotonic() + 5
        with contextlib.suppress(BrowserError):
            self.browser.call("Target.closeTarget", {"targetId": self.target}, until=until)
            self.browser.call(
                "Target.disposeBrowserContext", {"browserContextId": self.context}, until=until
            )

    def call(self, method: str, params: dict | None = None) -> dict[str, Any]:
        result = self.browser.call(method, params, self.session, until=self.deadline)
        self._digest()
        return result

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluating a check failed: {_describe(result)}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        while not self.loaded:
            self._pump(self.deadline, f"the load event of {url}")

    def wait_for_plots(self) -> None:
        """Until every graph drew; or nothing changed for `QUIET` seconds; or the deadline."""
        state, since = None, time.monotonic()
        while time.monotonic() < self.deadline:
            new = (*self.evaluate(_STATE_JS), len(self.errors))
            ready, graphs, drawn = new[:3]
            if ready == "complete" and drawn == graphs:
                return
            if new != state:
                state, since = new, time.monotonic()
            elif time.monotonic() - since > QUIET:
                return
            self._pump(min(self.deadline, time.monotonic() + 0.05), None)

    def plot_counts(self) -> tuple[int, int]:
        _, graphs, drawn = self.evaluate(_STATE_JS)
        return graphs, drawn

    def count_webgl_drawings(self) -> int:
        areas = self.evaluate(_WEBGL_AREAS_JS, await_promise=True)
        if not areas:
            return 0
        self._add_style(_HIDE_SVG_CSS)
        with_canvas = [self._screenshot(area) for area in areas]
        self._add_style(_HIDE_CANVAS_CSS)
        without = [self._screenshot(area) for area in areas]
        return sum(a != b for a, b in zip(with_canvas, without, strict=True))

    def _add_style(self, css: str) -> None:
        self.evaluate(
            "(() => { const s = document.createElement('style');"
            f" s.textContent = {json.dumps(css)}; document.head.appendChild(s); }})()"
        )

    def _screenshot(self, area: dict[str, float]) -> str:
        shot = self.call(
            "Page.captureScreenshot",
            {"format": "png", "clip": area, "captureBeyondViewport": True},
        )
        return shot["data"]

    def webgl_errors(self) -> list[str]:
        boxes = self.evaluate("document.querySelectorAll('.no-webgl').length")
        if not boxes:
            return []
        return [f"plotly: WebGL is not available ({boxes} graph(s) show .no-webgl)"]

    def drain(self) -> None:
        """Collect the events already sent (late console messages, a last request)."""
        self._pump(time.monotonic() + 0.05, None)

    def _pump(self, until: float, waiting_for: str | None) -> None:
        message = self.browser.receive(until)
        if message is None:
            if waiting_for is not None:
                raise BrowserError(f"timed out waiting for {waiting_for}")
            return
        self.browser.events.append(message)
        self._digest()

    def _digest(self) -> None:
        events = self.browser.events
        for event in events[self._seen :]:
            if event.get("sessionId") == self.session:
                self._take(event.get("method", ""), event.get("params", {}))
        self._seen = len(events)

    def _take(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self.loaded = True
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            self.errors.append(_describe(params))
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(_console_arg(arg) for arg in params.get("args", []))
            kind = params.get("type")
            if kind in ("error", "assert"):
                self.errors.append(f"console.{kind}: {text}{_where(params.get('stackTrace'))}")
            elif kind in ("warning", "trace"):
                self.warnings.append(f"console.{kind}: {text}")
        elif method == "Log.entryAdded":
            entry = params["entry"]
            line = f"{entry.get('source')}: {entry.get('text')}"
            line += f" ({entry['url']})" if entry.get("url") else ""
            if entry.get("level") == "error":
                self.errors.append(line)
            elif entry.get("level") == "warning":
                self.warnings.append(line)
        elif method == "Inspector.targetCrashed":
            self.errors.append("the page's renderer crashed")


def _describe(params: dict[str, Any]) -> str:
    details = params.get("exceptionDetails", {})
    exception = details.get("exception", {})
    text = exception.get("description") or exception.get("value") or ""
    first_line = str(text).splitlines()[0] if text else ""
    place = f" ({details.get('url', '')}:{details.get('lineNumber', 0) + 1})"
    return f"{details.get('text', 'Uncaught')} {first_line}".strip() + place


def _console_arg(arg: dict[str, Any]) -> str:
    if "value" in arg:
        return str(arg["value"])
    return str(arg.get("description", arg.get("type", "")))


def _where(stack: dict[str, Any] | None) -> str:
    frames = (stack or {}).get("callFrames") or []
    if not frames:
        return ""
    frame = frames[0]
    return f" ({frame.get('url', '')}:{frame.get('lineNumber', 0) + 1})"
