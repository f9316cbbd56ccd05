# Issue 8: API tokens move from rest_framework.authtoken (keys stored in clear) to django-rest-knox (SHA-512
# digests with an expiry). Each existing key is carried over as a knox token (digest only) that expires
# PNEUMO_API_TOKEN_TTL_DAYS from now, so integrators keep working until they rotate; then the old table, which
# holds the keys in clear, is dropped. New databases never had that table: nothing to do.

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

DRF_TABLE = "authtoken_token"


def carry_over_and_drop(apps, schema_editor):
    connection = schema_editor.connection
    if DRF_TABLE not in connection.introspection.table_names():
        return
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    auth_token = apps.get_model("knox", "AuthToken")
    expiry = timezone.now() + timedelta(days=settings.PNEUMO_API_TOKEN_TTL_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {DRF_TABLE}")  # noqa: S608 (constant table name)
        rows = cursor.fetchall()
    for key, user_id in rows:
        digest = hash_token(key)
        if not auth_token.objects.filter(digest=digest).exists():
            auth_token(
                digest=digest, token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH], user_id=user_id, expiry=expiry
            ).save(force_insert=True)
    schema_editor.execute(f"DROP TABLE {DRF_TABLE}")


class Migration(migrations.Migration):
    dependencies = [
        ("diagnosis", "0008_audit_auth_actions"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(carry_over_and_drop, migrations.RunPython.noop)]
