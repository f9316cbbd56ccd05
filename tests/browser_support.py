"""Headless Chromium for browser tests: Debian's chromium driven by Playwright's sync API (no browser download)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

CHROMIUM = Path("/usr/bin/chromium")
# As the machine's own probe starts it: without the background-networking flags, Chromium's connections to the
# outside are refused many at a time on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENS = Path("/tmp/pneumoweb-screens")
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (make browser installs it)")
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        # transactional_db empties tables with DELETE on SQLite, which the append-only audit trigger refuses;
        # PostgreSQL's flush is a TRUNCATE, which the trigger allows.
        pytest.skip("browser tests need PostgreSQL: set DATABASE_URL (make test does)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make between browser steps
    # are still synchronous and safe.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def screenshot(page: Any, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / name), full_page=True)


def watch_csp_violations(page: Any) -> list[str]:
    """Collect Content-Security-Policy violations of every page this tab loads from now on.

    Two witnesses: the ``securitypolicyviolation`` events (an init script, which the policy itself does not
    block) and Chromium's console errors ("Refused to ... because it violates the following Content Security
    Policy directive").
    """
    seen: list[str] = []
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )

    def on_console(message: Any) -> None:
        text = message.text
        if "CSP violation" in text or "Content Security Policy" in text:
            seen.append(text)

    page.on("console", on_console)
    return seen


def wait_until(page: Any, expression: str, *, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until a JavaScript expression is truthy in the page.

    Playwright's ``wait_for_function`` re-evaluates its string with ``eval`` inside the page, which the
    Content-Security-Policy refuses (no 'unsafe-eval') as soon as the first check is false. ``page.evaluate``
    goes through the DevTools protocol, which the policy does not govern.
    """
    for _ in range(max(timeout_ms // 50, 1)):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"not true within {timeout_ms} ms: {expression}")
