"""DICOMweb routes (namespace ``dicomweb``), included by ``pneumoweb/urls.py`` at ``dicomweb/``: STOW-RS only."""

from __future__ import annotations

from django.urls import URLPattern, path, re_path

from diagnosis.dicomweb import views

app_name = "dicomweb"

urlpatterns: list[URLPattern] = [
    path("studies", views.stow, name="stow"),
    # A Study Instance UID: digits and dots, at most 64 characters; anything else is not a route (404).
    re_path(r"^studies/(?P<study_instance_uid>[0-9]+(?:\.[0-9]+)*)$", views.stow, name="stow-study"),
]
