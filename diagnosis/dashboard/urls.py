"""Dashboard routes (namespace ``dashboard``), included by ``pneumoweb/urls.py`` at the site root."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from diagnosis.dashboard import review_views, viewer, views, worklist

app_name = "dashboard"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", worklist.worklist, name="worklist"),
    path("worklist/rows", worklist.worklist_rows, name="worklist_rows"),
    path("upload/", views.upload, name="upload"),
    path("upload/file", views.upload_file, name="upload_file"),
    path("studies/<uuid:study_id>/", views.study_detail, name="study"),
    path("studies/<uuid:study_id>/review", review_views.study_review, name="study_review"),
    path("studies/<uuid:study_id>/status", views.study_status, name="study_status"),
    path("studies/<uuid:study_id>/image16", viewer.study_image16, name="study_image16"),
    path("studies/<uuid:study_id>/activation", viewer.study_activation, name="study_activation"),
    path("viewer/preferences", viewer.viewer_preferences, name="viewer_preferences"),
    path("studies/<uuid:study_id>/thumbnail", worklist.study_thumbnail, name="study_thumbnail"),
    path("help/", views.help_page, name="help"),
]
