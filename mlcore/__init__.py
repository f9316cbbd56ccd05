"""PneumoWeb's machine-learning core: image loading, preprocessing, model and training.

A plain Python package: it never imports Django, Celery, ``diagnosis`` or
``pneumoweb`` (enforced by ``tests/mlcore/test_mlcore_is_framework_free.py``).
Keep this file free of imports so that ``import mlcore.errors`` and
``import mlcore.rules`` stay cheap in the web process, which must not load
TensorFlow.
"""

from __future__ import annotations
