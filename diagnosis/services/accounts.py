"""Dashboard accounts created outside admin: a radiologist from the command line (``create_radiologist``).

The password is either given by the operator (checked by ``AUTH_PASSWORD_VALIDATORS``) or generated here and
returned once, to be shown once; it never reaches the audit log or any other log.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from diagnosis.exceptions import InvalidInputError
from diagnosis.models import AuditAction
from diagnosis.selectors.studies import RADIOLOGIST_GROUP
from diagnosis.services.audit import audit_record

GENERATED_PASSWORD_BYTES = 12  # 16 URL-safe characters, ~96 bits


def _check_email(email: str) -> str:
    email = email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise InvalidInputError(f"Not an e-mail address. Received: {email!r}") from None
    return email


@transaction.atomic
def radiologist_create(
    *, username: str, email: str = "", password: str | None = None, actor: User | None = None
) -> tuple[User, str | None]:
    """Create a dashboard account in the radiologist group and audit it.

    Returns the user and the generated password (None when ``password`` was given). The caller decides who may
    create accounts (the command line: whoever runs ``manage.py``).
    """
    username = username.strip()
    user_model = get_user_model()
    if not username:
        raise InvalidInputError("Give a user name.")
    if user_model.objects.filter(username=username).exists():
        raise InvalidInputError(f"An account named {username!r} already exists.")
    email = _check_email(email)
    generated = password is None
    secret = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES) if password is None else password
    user = user_model(username=username, email=email)
    try:
        password_validation.validate_password(secret, user)
    except ValidationError as exc:
        raise InvalidInputError("The password was refused: " + " ".join(exc.messages)) from None
    user.set_password(secret)
    user.save()
    user.groups.add(Group.objects.get(name=RADIOLOGIST_GROUP))
    audit_record(
        action=AuditAction.USER_CREATED,
        subject_type="user",
        subject_id=username,
        actor=actor,
        details={"groups": [RADIOLOGIST_GROUP], "password": "generated" if generated else "given", "email": email},
    )
    return user, secret if generated else None


@transaction.atomic
def first_admin_ensure(*, username: str = "admin") -> tuple[User, str | None]:
    """The site's first admin (``make run``): created with a generated password when no superuser exists, audited.

    Returns the admin and its password, shown once; the password is None when an admin already existed. The first
    account also reads and reviews studies, so a new site can try the whole flow at once.
    """
    user_model = get_user_model()
    existing = user_model.objects.filter(is_superuser=True).order_by("pk").first()
    if existing is not None:
        return existing, None
    secret = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    admin = user_model.objects.create_superuser(username, email="", password=secret)
    admin.groups.add(Group.objects.get(name=RADIOLOGIST_GROUP))
    audit_record(
        action=AuditAction.USER_CREATED,
        subject_type="user",
        subject_id=username,
        details={"groups": [RADIOLOGIST_GROUP], "superuser": True, "password": "generated"},
    )
    return admin, secret
