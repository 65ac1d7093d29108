"""A real web server and a real headless browser for the companion page's tests.

``serve(folder)`` runs ``python -m http.server`` on 127.0.0.1 (a free port) as users are told to;
``chromium()`` drives Debian's ``chromium`` through its ``chromium-driver`` with Selenium. Both stop
when their ``with`` block ends, also on failure. ``make setup`` installs the two Debian packages.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``python -m http.server`` serving ``folder``; yields its base URL (ending in ``/``)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    err = server.stderr.read().decode()
                    raise RuntimeError(f"http.server did not start: {err}") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _which(names: tuple[str, ...]) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(f"{names[0]} not found: the companion page's browser tests need the Debian packages "
                       "'chromium' and 'chromium-driver' (`make setup` installs them as root; or "
                       "`sudo apt-get install chromium chromium-driver`)")


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator:
    """A headless Chromium under Selenium, its console log kept (``driver.get_log("browser")``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _which(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_which((DRIVER,))))
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list[str]:
    """The console's error messages since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(driver, script: str, timeout: float = 20.0):
    """Poll the page until ``script`` (a JavaScript expression) is truthy; returns its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(f"return {script};"), message=f"page never satisfied: {script}")


MEDIA_STATE = """
return [...document.querySelectorAll('audio')].map(a => ({src: a.getAttribute('src'),
  ready: a.readyState, error: a.error && a.error.code}))
  .concat([...document.querySelectorAll('img')].map(i => ({src: i.getAttribute('src'),
  ready: i.complete && i.naturalWidth > 0 ? 4 : 0, error: null})));
"""


def check_page_media(driver, folder: Path) -> int:
    """Every ``<audio>`` of the loaded page has decoded its metadata and every ``<img>`` its picture,
    each from a file in ``folder``; returns how many were checked. (The page's players load nothing
    until played: they are told to here.)"""
    driver.execute_script(
        "document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; });"
        "document.querySelectorAll('audio').forEach(a => { a.preload = 'metadata'; a.load(); });"
    )
    wait_for(driver, "[...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)"
                     " && [...document.querySelectorAll('img')].every(i => i.complete)")
    media = driver.execute_script(MEDIA_STATE)
    bad = [m for m in media if m["error"] or m["ready"] < 1 or not (folder / m["src"]).is_file()]
    assert not bad, f"media that did not load from {folder}: {bad[:5]}"
    return len(media)
