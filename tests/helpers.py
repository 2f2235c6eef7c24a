"""Helpers the tests share: running the command, temporary folders, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gridmap.settings import PROJECT_ROOT

DEMO_DIR = PROJECT_ROOT / "data" / "demo"
BIN = Path(sys.executable).parent
#: Debian's chromium, which the browser tests drive through Playwright.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def make_tempdir(prefix: str) -> Path:
    """A temporary folder the ``postgres`` user can reach (when tests run as root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def cli_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for running the ``gridmap`` command against a test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    if database_url:
        env["GRIDMAP_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """Run ``gridmap ARGS`` as a user would, from the installed entry point."""
    result = subprocess.run(
        [str(BIN / "gridmap"), *args], env=env, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"gridmap {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


def offline_page(browser, origin: str, context=None):
    """A page that refuses every request leaving the local origins, and records
    failed requests, console errors and answers of 400 or more.

    Parameters
    ----------
    browser
        The Playwright browser (the ``browser`` fixture).
    origin
        The server's base URL (requests to 127.0.0.1 and data: URIs go through).
    context
        A browser context to open the page in (to share its cookies); a new one
        when not given.

    Returns
    -------
    tuple
        The page and the list its problems are added to.
    """
    page = (context or browser).new_page()
    problems: list[str] = []
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))
    page.on(
        "console", lambda m: problems.append(f"console {m.text}") if m.type == "error" else None
    )
    page.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )

    def route(r):
        if r.request.url.startswith(("http://127.0.0.1", "data:")):
            r.continue_()
        else:
            problems.append(f"external {r.request.url}")
            r.abort()

    page.route("**/*", route)
    return page, problems


def wait_for(page, expression: str, timeout: float = 15.0) -> None:
    """Wait until a JavaScript expression is true on ``page``.

    Playwright's ``wait_for_function`` polls with ``eval`` inside the page, which
    gridmap's Content-Security-Policy refuses; ``evaluate`` runs through the
    debugging protocol instead, so this polls from here.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.1)
