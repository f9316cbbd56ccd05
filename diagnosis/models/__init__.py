from __future__ import annotations

from .audit import AuditAction, AuditChainHead, AuditEvent
from .model_version import ModelVersion
from .pacs import DicomInstance, DicomNode, DicomStudy, ResultObject, ResultSend
from .study import Prediction, Review, Study
from .training_run import TrainingRun
from .viewer import ViewerPreference
from .worker import WorkerHeartbeat

__all__ = [
    "AuditAction",
    "AuditChainHead",
    "AuditEvent",
    "DicomInstance",
    "DicomNode",
    "DicomStudy",
    "ModelVersion",
    "Prediction",
    "ResultObject",
    "ResultSend",
    "Review",
    "Study",
    "TrainingRun",
    "ViewerPreference",
    "WorkerHeartbeat",
]
