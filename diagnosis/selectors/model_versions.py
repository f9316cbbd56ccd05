"""Reads of model versions: by name, serving and shadow sets, and the admin list with its live figures."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet

from diagnosis import ml
from diagnosis.models import ModelVersion


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("-created_at")


def model_version_names() -> list[str]:
    return list(ModelVersion.objects.order_by("created_at").values_list("version", flat=True))


def model_version_get_by_name(name: str) -> ModelVersion | None:
    """The version registered under ``name``, or None (callers say which names exist)."""
    return ModelVersion.objects.filter(version=name).first()


def model_version_serving() -> list[ModelVersion]:
    return list(ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE, traffic_share__gt=0).order_by("id"))


def model_version_shadows() -> list[ModelVersion]:
    return list(ModelVersion.objects.filter(status=ModelVersion.Status.SHADOW).order_by("id"))


def model_version_is_refused_demo(version: ModelVersion) -> bool:
    """True for the untrained demo model when this installation does not allow serving it (PNEUMO_ALLOW_DEMO_MODEL)."""
    return not settings.PNEUMO_ALLOW_DEMO_MODEL and ml.is_untrained_demo(version.manifest)


def model_version_refused_demos_in_service() -> list[ModelVersion]:
    """Serving and shadow versions that are untrained demo models this installation refuses to run."""
    return [v for v in (*model_version_serving(), *model_version_shadows()) if model_version_is_refused_demo(v)]


def model_version_traffic_candidates() -> list[ModelVersion]:
    """Versions that could be given traffic or are serving: every one not retired, newest first."""
    return list(ModelVersion.objects.exclude(status=ModelVersion.Status.RETIRED).order_by("-created_at"))


def model_version_ids_by_name(names: list[str]) -> dict[str, int]:
    return dict(ModelVersion.objects.filter(version__in=names).values_list("version", "pk"))


PLOTS_FOLDER = "plots"
_PLOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.png$")


def model_version_plot_names(version: ModelVersion) -> list[str]:
    """The PNG files in ``<artifact>/plots/``: the only names the plot view will serve (no symlinks, no "../")."""
    folder = Path(version.path) / PLOTS_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if _PLOT_NAME.match(p.name) and p.is_file() and not p.is_symlink())


def model_version_plot_path(version: ModelVersion, name: str) -> Path | None:
    """The file of one listed plot, or None when ``name`` is not one of them."""
    if name not in model_version_plot_names(version):
        return None
    return Path(version.path) / PLOTS_FOLDER / name
