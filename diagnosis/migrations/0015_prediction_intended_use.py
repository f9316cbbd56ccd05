from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0014_viewer")]

    operations = [
        migrations.AddField(
            model_name="prediction",
            name="intended_use_warnings",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="How the study is outside the model's intended use (age, view, modality), when it was screened.",
            ),
        ),
    ]
