"""End-to-end fixtures: the real server as a subprocess, and a headless Chromium.

``live_stack`` is the embedded default exactly as ``make run`` starts it (SQLite under a fresh
temporary ECGSITE_VAR_DIR, the worker thread inside daphne, the in-process channel layer),
with every site setting stripped from its environment. The real-stack tests build the same
``LiveStack`` with DATABASE_URL/REDIS_URL and a separate Celery worker (tests/realstack/).
When a test that used a stack fails, the stack's logs are attached to its report.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.livestack import LiveStack
from tests.e2e.support import pytest_runtest_makereport, require_default_model, start_stack  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def live_stack() -> Iterator[LiveStack]:
    """daphne serving the embedded default on a free loopback port; mail goes to its mail_dir."""
    require_default_model()
    stack = start_stack(LiveStack(label="ecgsite-e2e"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium; a clear failure on CI, a clear skip elsewhere, when it is missing."""
    if shutil.which(CHROMIUM) is None:
        message = f"{CHROMIUM} is missing: install Debian's chromium (`make system-deps`)."
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[object]:
    """Headless Chromium driven by Playwright; never a downloaded browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
