"""The integration fixtures (a real worker, a serving demo model, the live broker) for the PACS tests too."""

from __future__ import annotations

from tests.integration.conftest import active_model, demo_artifact_dir, live_broker, roles, worker_env

__all__ = ["active_model", "demo_artifact_dir", "live_broker", "roles", "worker_env"]
