from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from diagnosis.ops import favicon, health, prometheus

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", prometheus.metrics_view, name="metrics"),
    path("favicon.ico", favicon.favicon, name="favicon"),  # issue 10: no 404 on every page
    # Dashboard login/logout (LOGIN_URL = "login"); Django's views pass the request to authenticate() for axes.
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # issue 10 (onboarding): a radiologist replaces the one-time password of create_radiologist here.
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("api/", include("diagnosis.api.urls")),  # REST API v1, OpenAPI schema and docs
    path("dicomweb/", include("diagnosis.dicomweb.urls")),  # STOW-RS from a PACS (issue 9)
    path("", include("diagnosis.dashboard.urls")),
]

# JSON under /api/, Django's pages elsewhere (a malformed study id matches no URL: 404 JSON, not an HTML page).
handler400 = "diagnosis.api.exceptions.bad_request"
handler403 = "diagnosis.api.exceptions.permission_denied"
handler404 = "diagnosis.api.exceptions.not_found"
# An unreachable database answers 503 + Retry-After (see diagnosis.ops.errors), every other error a 500 (JSON under
# /api/).
handler500 = "diagnosis.ops.errors.server_error"
