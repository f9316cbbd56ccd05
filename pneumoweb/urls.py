from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from diagnosis import health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("", include("diagnosis.urls")),
]
