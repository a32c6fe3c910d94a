"""An exported model that takes raw inputs: the task's preprocessing travels with the weights.

Training sees inputs standardized with the training split's statistics (and regression targets
standardized too); :class:`ExportedModel` applies the same statistics, recorded in ``model.json``, so
the user feeds rows as they come and gets logits, class labels or values in the target's own units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


def preprocessing_of(task: Any) -> dict[str, Any]:
    """What a model trained on ``task`` expects of its inputs and how to read its outputs (JSON-able)."""
    return {
        "problem": task.problem,
        "input_kind": task.input_kind,
        "input_shape": [int(n) for n in task.x_train.shape[1:]],
        "input_dtype": "int64" if task.input_kind == "tokens" else "float32",
        "x_mean": task.info.get("x_mean"),
        "x_std": task.info.get("x_std"),
        "y_mean": float(task.y_mean),
        "y_std": float(task.y_std),
        "classes": task.info.get("classes"),
    }


class ExportedModel(nn.Module):
    """A trained network behind the preprocessing of the task it was trained on.

    ``model(x)`` takes a raw input tensor and returns logits (classification) or predictions in the
    target's units (regression); :meth:`predict` takes arrays and returns class labels (the task's own
    labels) or values; :meth:`predict_proba` class probabilities. ``model.network`` is the bare
    network, which takes standardized inputs as during the search.

    Attributes:
        network: the genome's ``nn.Module``.
        preprocessing: the ``preprocessing`` entry of ``model.json``.
    """

    def __init__(self, network: nn.Module, preprocessing: dict[str, Any] | None) -> None:
        super().__init__()
        self.network = network
        self.preprocessing = dict(preprocessing or {})
        mean, std = self.preprocessing.get("x_mean"), self.preprocessing.get("x_std")
        self.register_buffer("x_mean", torch.tensor(mean, dtype=torch.float32) if mean is not None else None)
        self.register_buffer("x_std", torch.tensor(std, dtype=torch.float32) if std is not None else None)
        self.eval()

    @property
    def classification(self) -> bool:
        return self.preprocessing.get("problem", "classification") == "classification"

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.x_mean, self.x_std
        if not isinstance(mean, torch.Tensor) or not isinstance(std, torch.Tensor):
            return x
        return (x.float() - mean) / std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(self.standardize(x))
        if self.classification:
            return out
        return out * self.preprocessing.get("y_std", 1.0) + self.preprocessing.get("y_mean", 0.0)

    def _tensor(self, x: Any) -> torch.Tensor:
        array = np.asarray(x)
        shape = self.preprocessing.get("input_shape")
        if shape is not None and list(array.shape[1:]) != list(shape):
            if list(array.shape) == list(shape):  # one example without its batch axis
                array = array[None]
            else:
                raise ValueError(f"inputs must have shape (n, {', '.join(map(str, shape))}), got {array.shape}")
        dtype = np.int64 if self.preprocessing.get("input_dtype") == "int64" else np.float32
        return torch.from_numpy(np.ascontiguousarray(array, dtype=dtype))

    @torch.no_grad()
    def predict(self, x: Any) -> np.ndarray:
        """Class labels (as the task named them) or regression values for raw inputs ``x`` (n, ...)."""
        out = self(self._tensor(x))
        if not self.classification:
            return out.reshape(len(out), -1).squeeze(-1).numpy()
        index = out.argmax(-1).numpy()
        classes = self.preprocessing.get("classes")
        return np.asarray(classes)[index] if classes is not None else index

    @torch.no_grad()
    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities (n, classes), columns in the order of ``preprocessing["classes"]``."""
        if not self.classification:
            raise ValueError("predict_proba is for classification models; this one does regression")
        return torch.softmax(self(self._tensor(x)), dim=-1).numpy()
