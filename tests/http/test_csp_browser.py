"""Pages we do not write ourselves (Swagger UI, Django's admin login) also run under the CSP without a refusal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser_support import wait_until, watch_csp_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_and_the_admin_login_run_without_csp_violations(live_server: Any, page: Any) -> None:
    violations = watch_csp_violations(page)
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".swagger-ui .info .title").wait_for()  # rendered by the bundle from the schema: scripts ran
    assert "PneumoWeb API" in page.locator(".swagger-ui .info .title").inner_text()
    page.goto(f"{live_server.url}/admin/login/")
    page.locator("#login-form").wait_for()
    assert violations == []


def test_the_witness_sees_a_violation(live_server: Any, page: Any, settings: Any) -> None:
    # Scripts forbidden altogether: the Swagger UI bundle is refused, and the watcher must say so.
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'self'"], "script-src": ["'none'"]}}
    violations = watch_csp_violations(page)
    page.goto(f"{live_server.url}/api/docs/")
    wait_until(page, "document.readyState === 'complete'")
    assert any("script-src" in text for text in violations), violations
