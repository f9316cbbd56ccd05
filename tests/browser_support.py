"""Headless Chromium for browser tests: Debian's chromium driven by Playwright's sync API (no browser download)."""

from __future__ import annotations

import os
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
ROOT = Path(__file__).resolve().parents[1]
# Screenshots land inside the checkout (var/ is ignored by git; CI keeps var/screenshots as an artifact), or where
# PNEUMO_SCREENSHOT_DIR says.
SCREENS = Path(os.environ.get("PNEUMO_SCREENSHOT_DIR") or ROOT / "var" / "screenshots")
TIMEOUT_MS = 15_000
# axe-core from npm, installed by `make axe` (a prerequisite of `make test`), or the file PNEUMO_AXE_JS names.
AXE_JS = Path(os.environ.get("PNEUMO_AXE_JS") or ROOT / "var" / "node" / "node_modules" / "axe-core" / "axe.min.js")
AXE_IMPACTS = ("serious", "critical")
# Screen sizes of the acceptance screenshots (issue 10): a reading-room monitor, a large one, a phone.
SCREEN_SIZES = ((1440, 900), (1920, 1080), (390, 844))


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


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def horizontal_overflow(page: Any) -> int:
    """CSS pixels the page scrolls sideways (0: it fits the viewport's width)."""
    return int(page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth"))


def sideways_scrollers(page: Any) -> list[str]:
    """Visible elements that scroll sideways inside a page that itself fits (a wide table in an overflow box hides
    its right-hand columns just the same): tag#id.class and how many CSS pixels they hide."""
    found: list[str] = page.evaluate(
        """() => Array.from(document.querySelectorAll("body *")).filter(el => {
            const style = getComputedStyle(el);
            return ["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1
                && el.getClientRects().length > 0 && style.visibility !== "hidden";
        }).map(el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
            + (el.classList.length ? "." + Array.from(el.classList).join(".") : "")
            + " (" + (el.scrollWidth - el.clientWidth) + " px)")"""
    )
    return found


def axe_violations(page: Any, *, impacts: tuple[str, ...] = AXE_IMPACTS) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; return its violations of the given impacts (serious, critical).

    The Content-Security-Policy refuses inline scripts, so ``page.add_script_tag(content=...)`` would be blocked;
    ``page.evaluate`` goes through the DevTools protocol, which the policy does not govern (as in ``wait_until``).
    Each violation: ``{"id", "impact", "help", "nodes": [CSS selectors, at most 8]}``.
    """
    if not AXE_JS.is_file():
        pytest.skip(f"needs axe-core at {AXE_JS} (make axe installs it from npm)")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(
        """async (impacts) => {
            const result = await window.axe.run(document, {resultTypes: ["violations"]});
            return result.violations.filter(v => impacts.includes(v.impact)).map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 8).map(n => n.target.join(" ")),
            }));
        }""",
        list(impacts),
    )
    return violations


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
