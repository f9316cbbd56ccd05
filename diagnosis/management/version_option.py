"""Django reserves ``--version`` (the program's version); our commands use it for a model version name."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class ModelVersionOptionCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # "resolve" lets this command's own --version replace Django's program-version flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)
