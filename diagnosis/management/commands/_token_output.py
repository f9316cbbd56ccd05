"""Show a newly issued API token to the operator: once, on stdout only (never through logging)."""

from __future__ import annotations

from django.core.management.base import OutputWrapper

from diagnosis.services.integrators import IssuedToken


def write_token(out: OutputWrapper, token: IssuedToken) -> None:
    expires = f"{token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never"
    out.write(f"API token: {token.key}")
    out.write(
        "It is shown only this once: PneumoWeb keeps a hash of it, not the token. Store it in the integrating "
        f"system's secret store now. It expires {expires}; renew it with `manage.py rotate_integrator_token`."
    )
    out.write("Send it as the header  Authorization: Token <token>")
