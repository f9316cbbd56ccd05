"""Typed readers for environment variables (after healthchecks' ``envbool``): bad values fail loudly at start-up."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false). Received: {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer. Received: {raw!r}") from None


def env_list(name: str, *, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str, *, default: str | None = None) -> str:
    """Read a secret from ``NAME`` or from the file named by ``NAME_FILE`` (Docker/Kubernetes secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text(encoding="utf-8").strip()
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set.")
    return value


_KEY_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _parse_keyring(name: str, raw: str) -> dict[str, str]:
    text = raw.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ImproperlyConfigured(f'{name} is not valid JSON (expected {{"key id": "secret"}}).') from None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise ImproperlyConfigured(f"{name} must map key ids to secret strings.")
        return {str(k): v for k, v in parsed.items()}
    keys: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, secret = item.partition(":")
        if not sep:
            raise ImproperlyConfigured(f"{name} entries must read 'key-id:secret' (or give a JSON object).")
        keys[key_id.strip()] = secret.strip()
    return keys


def env_keyring(name: str, *, default: dict[str, str] | None = None, min_length: int = 1) -> dict[str, str]:
    """Read named secrets (key id -> secret) from ``NAME`` or ``NAME_FILE``: a JSON object or ``id:secret,...``.

    Several keys may be configured at once so that one can be rotated while what it signed still verifies.
    """
    if default is not None and not os.environ.get(f"{name}_FILE") and name not in os.environ:
        return dict(default)
    keys = _parse_keyring(name, env_secret(name))
    if not keys:
        raise ImproperlyConfigured(f"{name} holds no keys.")
    for key_id, secret in keys.items():
        if not key_id or len(key_id) > 32 or not set(key_id) <= _KEY_ID_CHARS:
            raise ImproperlyConfigured(f"{name}: key ids are 1-32 of [A-Za-z0-9._-]. Received: {key_id!r}")
        if len(secret) < min_length:
            raise ImproperlyConfigured(f"{name}: the secret of key {key_id!r} is shorter than {min_length} characters.")
    return keys


def env_key_id(name: str, keys: dict[str, str]) -> str:
    """The id of the key to sign with: ``NAME``, or the only key when there is one. It must be in ``keys``."""
    key_id = os.environ.get(name, "").strip()
    if not key_id:
        if len(keys) != 1:
            raise ImproperlyConfigured(f"{name} must name the current key among: {', '.join(sorted(keys))}.")
        return next(iter(keys))
    if key_id not in keys:
        raise ImproperlyConfigured(f"{name}={key_id!r} is not one of the configured keys ({', '.join(sorted(keys))}).")
    return key_id
