"""API routes (namespace ``api``), included by ``pneumoweb/urls.py`` at ``api/``: ``v1/`` plus the OpenAPI schema
and its Swagger UI (assets served locally by drf-spectacular-sidecar: a hospital network has no CDN)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from diagnosis.api import study_reports, views

app_name = "api"

v1_patterns: list[URLPattern | URLResolver] = [
    path("studies/", views.StudyListCreateApi.as_view(), name="study-list"),
    path("studies/<uuid:id>/", views.StudyDetailApi.as_view(), name="study-detail"),
    path("studies/<uuid:id>/image/", views.StudyImageApi.as_view(), name="study-image"),
    path("studies/<uuid:id>/heatmap/", views.StudyHeatmapApi.as_view(), name="study-heatmap"),
    path("studies/<uuid:id>/overlay/", views.StudyOverlayApi.as_view(), name="study-overlay"),
    path("studies/<uuid:id>/review/", study_reports.StudyReviewCreateApi.as_view(), name="study-review"),
    path("studies/<uuid:id>/fhir/", study_reports.StudyFhirReportApi.as_view(), name="study-fhir"),
    path("models/", views.ModelVersionListApi.as_view(), name="model-list"),
]

urlpatterns: list[URLPattern | URLResolver] = [
    path("v1/", include(v1_patterns)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file (?script): the CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # Last: any other /api/ URL (a malformed study id, say) is a JSON 404, with DEBUG on too (handler404 is not
    # called then, and `make run` runs with DEBUG on).
    re_path(r"", views.unmatched_api_url),
]
