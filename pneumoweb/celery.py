"""Celery application. Workers run inference (queue ``inference``) and training (queue ``training``)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pneumoweb.settings.local")

app = Celery("pneumoweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
