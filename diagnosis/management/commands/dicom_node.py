"""``manage.py dicom_node add|list|remove``: DICOM nodes for scripted set-ups (the admin does the same by hand).

A DICOMweb password is never an argument (it would sit in the shell history and the process list): give the name
of an environment variable that holds it with ``--password-env``.
"""

from __future__ import annotations

import os
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from diagnosis.exceptions import ApplicationError
from diagnosis.interop.dicom_send import url_without_credentials
from diagnosis.models import DicomNode
from diagnosis.selectors.pacs_results import dicom_nodes_list
from diagnosis.services.dicom_nodes import dicom_node_create, dicom_node_remove


class Command(BaseCommand):
    help = "Add, list or remove DICOM nodes (PACS, modalities) that send studies to PneumoWeb or receive results."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="Add a node.")
        add.add_argument("name", help="A short unique name (letters, digits, - and _).")
        add.add_argument("--ae-title", default="", help="The node's AE title (its calling AE when it sends to us).")
        add.add_argument("--host", default="", help="Host name or address for C-STORE of results.")
        add.add_argument("--port", type=int, default=None, help="DICOM port for C-STORE of results.")
        add.add_argument("--sends", action="store_true", help="The node may send studies to PneumoWeb.")
        add.add_argument("--receives-results", action="store_true", help="PneumoWeb sends its SR and SC here.")
        add.add_argument("--dicomweb-url", default="", help="DICOMweb base URL: results go by STOW-RS instead.")
        add.add_argument("--username", default="", help="HTTP Basic user for the DICOMweb server.")
        add.add_argument(
            "--password-env", default="", metavar="VAR", help="Environment variable holding the HTTP Basic password."
        )
        add.add_argument("--disabled", action="store_true", help="Add it disabled.")
        actions.add_parser("list", help="List the nodes (credentials are never shown).")
        remove = actions.add_parser("remove", help="Remove a node.")
        remove.add_argument("name", help="The node's name.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "add":
            self._add(options)
        elif action == "list":
            self._list()
        else:
            self._remove(options["name"])

    def _add(self, options: dict[str, Any]) -> None:
        password = ""
        if options["password_env"]:
            if options["password_env"] not in os.environ:
                raise CommandError(f"Environment variable {options['password_env']} is not set.")
            password = os.environ[options["password_env"]]
        try:
            node = dicom_node_create(
                name=options["name"],
                ae_title=options["ae_title"],
                host=options["host"],
                port=options["port"],
                dicomweb_url=options["dicomweb_url"],
                username=options["username"],
                password=password,
                sends_studies=options["sends"],
                receives_results=options["receives_results"],
                enabled=not options["disabled"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Added DICOM node {node}."))

    def _list(self) -> None:
        nodes = list(dicom_nodes_list())
        if not nodes:
            self.stdout.write("No DICOM nodes.")
            return
        self.stdout.write(f"{'NAME':<20} {'AE TITLE':<16} {'ADDRESS':<40} SENDS RESULTS ENABLED CREDENTIALS")
        for node in nodes:
            address = url_without_credentials(node.dicomweb_url) or (f"{node.host}:{node.port}" if node.host else "-")
            self.stdout.write(
                f"{node.name:<20} {node.ae_title or '-':<16} {address:<40} {_yes(node.sends_studies):<5} "
                f"{_yes(node.receives_results):<7} {_yes(node.enabled):<7} {_yes(bool(node.username or node.password))}"
            )

    def _remove(self, name: str) -> None:
        node = DicomNode.objects.filter(name=name).first()
        if node is None:
            raise CommandError(f"No DICOM node named {name!r}.")
        dicom_node_remove(node=node)
        self.stdout.write(self.style.SUCCESS(f"Removed DICOM node {name}."))


def _yes(value: bool) -> str:
    return "yes" if value else "no"
