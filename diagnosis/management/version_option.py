"""What the model-version commands share: their own ``--version`` option and the lookup of a version by name."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from diagnosis.models import ModelVersion
from diagnosis.selectors.model_versions import model_version_get_by_name, model_version_names


class ModelVersionOptionCommand(BaseCommand):
    """Django reserves ``--version`` (the program's version); these commands use it for a model version name."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # "resolve" lets this command's own --version replace Django's program-version flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)


def version_or_command_error(name: str) -> ModelVersion:
    """The registered version called ``name``, or a ``CommandError`` that lists the registered names."""
    version = model_version_get_by_name(name)
    if version is None:
        raise CommandError(f"No model version {name!r}. Registered: {', '.join(model_version_names()) or 'none'}")
    return version
