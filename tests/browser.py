"""Drive headless Chromium over the DevTools protocol: load a page, collect console errors,
evaluate a script, take a screenshot. Uses aiohttp's websocket client (installed with Ray)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
         "--remote-debugging-port=0", "--window-size=1500,1200"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def inspect_page(url: str, expression: str, screenshot: Path | None = None, timeout: float = 90) -> dict[str, Any]:
    """Load ``url``; return console/JS errors, the value of ``expression`` (awaited) and optionally a PNG."""
    exe = chromium()
    if exe is None:
        raise RuntimeError("no chromium binary")
    profile = tempfile.mkdtemp(prefix="avfuse-chromium-")
    # TMPDIR inside the profile: Chromium's own temporary folders go away with it
    proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, start_new_session=True,
                            env={**os.environ, "TMPDIR": profile})
    try:
        ws_url = None
        deadline = time.time() + 60
        while time.time() < deadline and ws_url is None:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                ws_url = m.group(1)
            elif not line and proc.poll() is not None:
                raise RuntimeError("chromium exited before it was ready")
        if ws_url is None:
            raise RuntimeError("chromium did not open its debugging port")
        port = re.search(r":(\d+)/", ws_url).group(1)
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t.get("type") == "page")["webSocketDebuggerUrl"]
        return asyncio.run(asyncio.wait_for(_session(page, url, expression, screenshot), timeout))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _session(page_ws: str, url: str, expression: str, screenshot: Path | None) -> dict[str, Any]:
    import aiohttp

    errors: list[str] = []
    pending: dict[int, asyncio.Future] = {}
    loaded = asyncio.Event()
    counter = iter(range(1, 1 << 30))
    async with aiohttp.ClientSession() as session, session.ws_connect(page_ws, max_msg_size=0) as ws:

        async def reader() -> None:
            async for msg in ws:
                data = json.loads(msg.data)
                if "id" in data and data["id"] in pending:
                    pending.pop(data["id"]).set_result(data)
                method = data.get("method")
                params = data.get("params", {})
                if method == "Page.loadEventFired":
                    loaded.set()
                elif method == "Runtime.exceptionThrown":
                    errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
                elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    errors.append(json.dumps(params.get("args", []))[:500])
                elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                    errors.append(params["entry"].get("text", "")[:500])

        async def call(method: str, **params: Any) -> dict:
            i = next(counter)
            fut = asyncio.get_running_loop().create_future()
            pending[i] = fut
            await ws.send_json({"id": i, "method": method, "params": params})
            return await fut

        task = asyncio.create_task(reader())
        for domain in ("Page", "Runtime", "Log"):
            await call(f"{domain}.enable")
        await call("Page.navigate", url=url)
        await loaded.wait()
        res = await call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        value = res.get("result", {}).get("result", {}).get("value")
        if screenshot is not None:
            shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
            screenshot.write_bytes(base64.b64decode(shot["result"]["data"]))
        await asyncio.sleep(0.2)  # let late console messages arrive
        task.cancel()
        return {"errors": errors, "value": value}


REPORT_PROBE = """
(async () => {
  const imgs = Array.from(document.images);
  const decoded = await Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth > 0, () => false)));
  const pick = (sel, key) => Object.fromEntries(Array.from(document.querySelectorAll(sel))
      .map(e => [e.dataset[key], e.textContent.trim()]));
  return {
    images: decoded,
    counts: pick('[data-count]', 'count'),
    labels: pick('[data-label-count]', 'labelCount'),
    failed: Array.from(document.querySelectorAll('[data-failed]')).map(e => e.dataset.failed),
    links: Array.from(document.querySelectorAll('a[href^="#"]'))
      .map(a => !!document.getElementById(a.getAttribute('href').slice(1))),
  };
})()
"""
