"""Training configuration for the two-phase ResNet50 pneumonia classifier.

The defaults are the values of the training specification
(``reference/model-training.md``): 384 px, batch 32, phase 1 (frozen base) 15 epochs at
1e-3 with patience 5, phase 2 (layers 100+ unfrozen) 20 epochs at 1e-5 with patience 8,
early stopping on validation AUC.

Configuration works the scikit-learn way: a frozen dataclass with keyword defaults and
no logic in ``__init__``; :meth:`TrainConfig.validate` is called where the values are
used (:func:`mlcore.training.train`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass
from typing import Any

from mlcore.rules import check_target_sensitivity, default_version_name, is_valid_version_name

#: Population of the Kermany dataset (see ``shared/data/README.md``).
KERMANY_POPULATION = "Kermany pediatric chest X-rays, ages 1–5 (Guangzhou)"


@dataclass(frozen=True)
class TrainConfig:
    """All knobs of one training run.

    Attributes:
        data_dir: Folder in the ``{train,val,test}/{NORMAL,PNEUMONIA}`` layout.
        output_dir: Folder under which the run folder ``<version>/`` (the artifact) is created.
        image_size: Square model input size in pixels (>= 32, ResNet50's minimum).
        weights: Base initialisation: ``"imagenet"`` (Keras download), ``None`` (random) or a
            local ``.h5`` / ``.weights.h5`` path to the ResNet50 no-top weights.
        batch_size: Images per batch.
        phase1_epochs: Maximum epochs of head training with the base frozen.
        phase1_lr: Adam learning rate of phase 1.
        phase1_patience: Early-stopping patience (epochs without better val AUC) of phase 1.
        phase2_epochs: Maximum fine-tuning epochs; 0 skips phase 2.
        phase2_lr: Adam learning rate of phase 2 (small: fine-tuning pretrained layers).
        phase2_patience: Early-stopping patience of phase 2.
        fine_tune_from_layer: Index (in the ResNet50 layer list, input layer = 0) from which
            base layers are unfrozen in phase 2.
        target_sensitivity: Sensitivity the decision threshold must reach on validation data, in
            [0.5, 1) (:func:`mlcore.rules.check_target_sensitivity`).
        val_fraction: Fraction of train images carved out as validation when the dataset has
            no usable ``val`` split.
        min_val_per_class: A ``val`` split with fewer images than this in either class is
            too small to measure AUC (the public Kermany val has 8 + 8) and is replaced by
            a carved split; a model validated on fewer is marked ``validated=False``.
        seed: Seed for Keras/NumPy/Python RNGs, the split and the augmentation.
        version: Artifact version (:func:`mlcore.rules.is_valid_version_name`); empty means a UTC
            timestamp chosen when training starts (:func:`mlcore.rules.default_version_name`).
        cache: Where preprocessed images are cached: ``"memory"`` (fastest; about
            ``n * image_size**2 * 12`` bytes, 3.1 GB for Kermany train at 224 px),
            ``"none"``, or a directory for a tf.data file cache.
        population: Who the training images come from; stored in the manifest and
            printed on every plot (a pediatric model is not an adult model).
        n_bootstrap: Bootstrap replicates for the 95 % intervals of the metrics.
    """

    data_dir: str
    output_dir: str
    image_size: int = 384
    weights: str | None = "imagenet"
    batch_size: int = 32
    phase1_epochs: int = 15
    phase1_lr: float = 1e-3
    phase1_patience: int = 5
    phase2_epochs: int = 20
    phase2_lr: float = 1e-5
    phase2_patience: int = 8
    fine_tune_from_layer: int = 100
    target_sensitivity: float = 0.95
    val_fraction: float = 0.15
    min_val_per_class: int = 20
    seed: int = 42
    version: str = ""
    cache: str = "memory"
    population: str = KERMANY_POPULATION
    n_bootstrap: int = 1000

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-safe dict (for the manifest)."""
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Check value ranges.

        Raises:
            ValueError: On the first invalid value, naming the field.
        """
        if not self.data_dir:
            raise ValueError("data_dir must not be empty")
        if not self.output_dir:
            raise ValueError("output_dir must not be empty")
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 (ResNet50 minimum), got {self.image_size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.phase1_epochs < 1:
            raise ValueError(f"phase1_epochs must be >= 1, got {self.phase1_epochs}")
        if self.phase2_epochs < 0:
            raise ValueError(f"phase2_epochs must be >= 0, got {self.phase2_epochs}")
        for name in ("phase1_lr", "phase2_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("phase1_patience", "phase2_patience", "fine_tune_from_layer", "min_val_per_class"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        check_target_sensitivity(self.target_sensitivity)
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")
        if isinstance(self.weights, str) and not self.weights:
            raise ValueError('weights must be "imagenet", None or a file path, got ""')
        if self.n_bootstrap < 0:
            raise ValueError(f"n_bootstrap must be >= 0, got {self.n_bootstrap}")
        if not self.cache:
            raise ValueError('cache must be "memory", "none" or a directory path')
        if self.version and not is_valid_version_name(self.version):
            # The version becomes a folder name under output_dir and the name the web app registers.
            raise ValueError(
                "version must be a plain name (letters, digits, '.', '_' or '-', starting with a letter or digit, "
                f"at most 100 characters). Received: {self.version!r}"
            )

    def resolved_version(self, now: _dt.datetime | None = None) -> str:
        """Return ``version``, or a UTC timestamp such as ``"v20250101-120000"`` when empty.

        Args:
            now: Time to format (defaults to the current UTC time); for tests.
        """
        return self.version or default_version_name(now)
