from __future__ import annotations

from .audit import AuditAction, AuditChainHead, AuditEvent
from .model_version import ModelVersion
from .study import Prediction, Review, Study
from .training_run import TrainingRun
from .worker import WorkerHeartbeat

__all__ = [
    "AuditAction",
    "AuditChainHead",
    "AuditEvent",
    "ModelVersion",
    "Prediction",
    "Review",
    "Study",
    "TrainingRun",
    "WorkerHeartbeat",
]
