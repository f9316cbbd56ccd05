"""PACS tests reuse the integration fixtures (real worker, live broker, demo model) where they test the task flow."""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    active_model,
    demo_artifact_dir,
    live_broker,
    roles,
    worker_env,
)
