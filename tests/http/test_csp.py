"""Content-Security-Policy on every page, and templates that need no inline script to work under it.

The browser side (no violation reported on the worklist and study pages) is in tests/dashboard/test_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from diagnosis.models import Study
from tests.factories import PredictionFactory, StudyFactory

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# A <script> element with anything but whitespace (or a Django comment) between its tags.
INLINE_SCRIPT = re.compile(r"<script\b(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.IGNORECASE | re.DOTALL)
EVENT_HANDLER = re.compile(r"""<[a-z][^>]*\son[a-z]+\s*=""", re.IGNORECASE | re.DOTALL)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


def policy(response: Any) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy", "")
    assert header, f"no CSP header on {response.status_code} {response.get('Content-Type')}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_strict_script_policy(response: Any) -> None:
    directives = policy(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


@pytest.fixture
def study(radiologist: Any) -> Study:
    study: Study = PredictionFactory(study__uploaded_by=radiologist).study
    return study


def test_dashboard_pages_carry_the_policy(radiologist: Any, study: Study) -> None:
    client = Client()
    client.force_login(radiologist)
    failed = StudyFactory(status=Study.Status.FAILED, error="The file is damaged.")
    for path in ("/", "/upload/", f"/studies/{study.id}/", f"/studies/{failed.id}/", "/worklist/rows"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_strict_script_policy(response)


def test_login_and_error_pages_carry_the_policy() -> None:
    client = Client()
    assert_strict_script_policy(client.get("/accounts/login/"))
    assert_strict_script_policy(client.get("/no/such/page"))


def test_admin_pages_carry_the_policy(admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    for path in (
        "/admin/",
        "/admin/diagnosis/study/",
        "/admin/diagnosis/modelversion/",
        "/admin/diagnosis/modelversion/traffic/",
        "/admin/diagnosis/auditevent/",
    ):
        response = client.get(path)
        assert response.status_code in (200, 302), (path, response.status_code)
        assert_strict_script_policy(response)


def test_api_docs_work_without_inline_script(anonymous_client: Any) -> None:
    page = anonymous_client.get("/api/docs/")
    assert_strict_script_policy(page)
    assert not [m for m in INLINE_SCRIPT.finditer(page.content.decode()) if m.group("body").strip()]
    script = anonymous_client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def template_files() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_there_are_templates_to_scan() -> None:
    assert len(template_files()) > 10


@pytest.mark.parametrize("template", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_no_inline_script_or_event_handler(template: Path) -> None:
    text = template.read_text()
    inline = [m.group(0)[:80] for m in INLINE_SCRIPT.finditer(text) if m.group("body").strip()]
    assert not inline, f"inline <script> in {template}: {inline}"
    assert not EVENT_HANDLER.search(text), f"on*= event handler attribute in {template}"
    assert not JS_URL.search(text), f"javascript: URL in {template}"
