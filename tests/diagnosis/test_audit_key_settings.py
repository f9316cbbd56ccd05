"""The audit keys come from outside the database and are required in production (issue 8, point 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from pneumoweb.env import env_key_id, env_keyring

ROOT = Path(__file__).resolve().parents[2]
STRONG = "s" * 40


def test_keys_are_read_as_json_or_as_an_id_secret_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PNEUMO_AUDIT_KEYS", f'{{"2026-10": "{STRONG}", "2026-11": "{STRONG}x"}}')
    assert env_keyring("PNEUMO_AUDIT_KEYS", min_length=32) == {"2026-10": STRONG, "2026-11": STRONG + "x"}
    monkeypatch.setenv("PNEUMO_AUDIT_KEYS", f"old:{STRONG}, new:{STRONG}y")
    keys = env_keyring("PNEUMO_AUDIT_KEYS")
    assert keys == {"old": STRONG, "new": STRONG + "y"}
    monkeypatch.setenv("PNEUMO_AUDIT_KEY_ID", "new")
    assert env_key_id("PNEUMO_AUDIT_KEY_ID", keys) == "new"
    monkeypatch.setenv("PNEUMO_AUDIT_KEY_ID", "gone")
    with pytest.raises(ImproperlyConfigured, match="'gone' is not one of"):
        env_key_id("PNEUMO_AUDIT_KEY_ID", keys)
    monkeypatch.delenv("PNEUMO_AUDIT_KEY_ID")
    with pytest.raises(ImproperlyConfigured, match="must name the current key"):
        env_key_id("PNEUMO_AUDIT_KEY_ID", keys)


def test_keys_can_come_from_a_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "audit-keys"
    secret.write_text(f"k1:{STRONG}\n")
    monkeypatch.delenv("PNEUMO_AUDIT_KEYS", raising=False)
    monkeypatch.setenv("PNEUMO_AUDIT_KEYS_FILE", str(secret))
    assert env_keyring("PNEUMO_AUDIT_KEYS", default={"dev": "x"}) == {"k1": STRONG}


@pytest.mark.parametrize(
    "raw",
    ["k1", "k 1:" + STRONG, '{"k1": 5}', "{not json", "k1:short"],
    ids=["no-secret", "bad-id", "json-type", "json", "short"],
)
def test_bad_keys_fail_at_start_up(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PNEUMO_AUDIT_KEYS", raw)
    with pytest.raises(ImproperlyConfigured):
        env_keyring("PNEUMO_AUDIT_KEYS", min_length=32)


def _production(**extra: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PNEUMO_AUDIT_", "DJANGO_SETTINGS"))}
    env.update(
        DJANGO_SETTINGS_MODULE="pneumoweb.settings.production",
        DJANGO_SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://app@127.0.0.1:5432/pneumoweb",
        REDIS_URL="redis://127.0.0.1:6379/0",
        **extra,
    )
    code = "import django; django.setup(); from django.conf import settings; print(settings.PNEUMO_AUDIT_KEY_ID)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_production_refuses_to_start_without_real_audit_keys() -> None:
    missing = _production()
    assert missing.returncode != 0 and "PNEUMO_AUDIT_KEYS (or PNEUMO_AUDIT_KEYS_FILE) must be set" in missing.stderr
    dev = _production(PNEUMO_AUDIT_KEYS=f"dev-insecure:{STRONG}")
    assert dev.returncode != 0 and "development key id" in dev.stderr
    started = _production(PNEUMO_AUDIT_KEYS=f"2026-11:{STRONG}")
    assert started.returncode == 0 and started.stdout.strip() == "2026-11", started.stderr[-2000:]
