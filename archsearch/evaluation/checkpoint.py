"""Training checkpoints: where a training run stands, enough to continue it exactly.

A checkpoint is one safetensors blob: the model's weights (``model.*``), the optimizer's state
(``optim.<param index>.<key>``), the best epoch's weights when early stopping keeps them (``best.*``)
and the random states (``rng.torch``, ``rng.shuffle``), with the loop's position as JSON in the
header's metadata (``archsearch.checkpoint``). No pickle: loading a run directory never runs code, and
any safetensors reader opens the file. Continuing from it gives the same weights as training straight
through, because the learning-rate schedule is defined over the run's maximum fidelity and every
random state is restored.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

CHECKPOINT_VERSION = 1
META_KEY = "archsearch.checkpoint"


@dataclass
class LoopState:
    """Position of a training loop between two optimizer steps.

    Attributes:
        step: optimizer steps taken so far.
        epoch: complete passes over the training split.
        position: rows of the current epoch's permutation already used (0 at an epoch boundary).
        loss_sum: sum of this epoch's batch losses so far (for the epoch's mean training loss).
        batches: batches in ``loss_sum``.
        best_score: best validation score so far, as higher-is-better (early stopping).
        best_epoch: the epoch that reached it.
        stale: epochs since it improved.
        stopped_early: early stopping ended training; continuing trains nothing more.
        train_time_s: training seconds over every segment so far.
        measured: metrics measured before the first step (parameters, FLOPs, latency), reused when
            training continues so a continued trial is not measured again.
    """

    step: int = 0
    epoch: int = 0
    position: int = 0
    loss_sum: float = 0.0
    batches: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    stale: int = 0
    stopped_early: bool = False
    train_time_s: float = 0.0
    measured: dict[str, float] = field(default_factory=dict)
    order: torch.Tensor | None = field(default=None, repr=False)  # the current epoch's permutation

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("order")
        data["best_score"] = None if math.isinf(self.best_score) else self.best_score
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoopState:
        data = dict(data)
        if data.get("best_score") is None:
            data["best_score"] = -math.inf
        return cls(**data)


@dataclass
class Checkpoint:
    """A decoded checkpoint: tensors by group and the loop state."""

    model: dict[str, torch.Tensor]
    optimizer: dict[int, dict[str, Any]]
    best: dict[str, torch.Tensor] | None
    rng_torch: torch.Tensor
    rng_shuffle: torch.Tensor
    loop: LoopState


def encode(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loop: LoopState,
           shuffle: torch.Generator, best: dict[str, torch.Tensor] | None) -> bytes:
    """The checkpoint as safetensors bytes (taken between two steps, before best weights are restored)."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {f"model.{k}": v.detach() for k, v in model.state_dict().items()}
    kinds: dict[str, Any] = {}  # optimizer state that is not one tensor: how to give it back its type
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            kinds.update(_flatten_state(f"{index}.{key}", value, tensors))
    if best is not None:
        tensors.update({f"best.{k}": v.detach() for k, v in best.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.shuffle"] = shuffle.get_state()
    if loop.order is not None:
        tensors["loop.order"] = loop.order
    tensors = {k: v.contiguous().clone() for k, v in tensors.items()}  # shared storage is refused
    meta = {"version": CHECKPOINT_VERSION, "loop": loop.to_json(), "optimizer_kinds": kinds}
    return save(tensors, metadata={META_KEY: json.dumps(meta)})


def _flatten_state(name: str, value: Any, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Put one optimizer state entry into ``tensors`` under ``optim.NAME``; returns its kind if it is not a
    tensor. L-BFGS keeps lists of tensors (its curvature pairs, maybe ``None``) and Python numbers, which
    go back as they were (numbers as float64, so a continued run takes exactly the same steps)."""
    if isinstance(value, torch.Tensor):
        tensors[f"optim.{name}"] = value.detach()
        return {}
    if isinstance(value, list | tuple):
        for j, item in enumerate(value):
            if item is not None:
                tensors[f"optim.{name}.{j}"] = item.detach() if isinstance(item, torch.Tensor) else torch.tensor(
                    float(item), dtype=torch.float64)
        return {name: {"list": len(value), "none": [j for j, item in enumerate(value) if item is None],
                       "numbers": [j for j, item in enumerate(value) if isinstance(item, int | float)]}}
    if value is None:
        return {name: "none"}
    tensors[f"optim.{name}"] = torch.tensor(float(value), dtype=torch.float64)
    return {name: "int" if isinstance(value, int) and not isinstance(value, bool) else "float"}


def _unflatten_state(flat: dict[str, torch.Tensor], kinds: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The inverse of :func:`_flatten_state` over a whole optimizer."""
    state: dict[int, dict[str, Any]] = {}
    listed = {name for name, kind in kinds.items() if isinstance(kind, dict)}
    for name, tensor in flat.items():
        owner = name.rsplit(".", 1)[0]
        if owner in listed:
            continue  # an item of a list, gathered below
        index, _, key = name.partition(".")
        kind = kinds.get(name)
        value: Any = tensor if kind is None else int(tensor.item()) if kind == "int" else float(tensor.item())
        state.setdefault(int(index), {})[key] = value
    for name, kind in kinds.items():
        index, _, key = name.partition(".")
        if kind == "none":
            state.setdefault(int(index), {})[key] = None
        elif isinstance(kind, dict):
            items: list[Any] = []
            for j in range(int(kind["list"])):
                item = None if j in kind["none"] else flat[f"{name}.{j}"]
                items.append(float(item.item()) if item is not None and j in kind["numbers"] else item)
            state.setdefault(int(index), {})[key] = items
    return state


def decode(data: bytes) -> Checkpoint:
    """Read a checkpoint written by :func:`encode`; a foreign or newer file is a ``ValueError``."""
    from safetensors.torch import load

    meta = json.loads(header_metadata(data).get(META_KEY) or "null")
    if not isinstance(meta, dict) or meta.get("version") != CHECKPOINT_VERSION:
        raise ValueError("not an archsearch training checkpoint of version "
                         f"{CHECKPOINT_VERSION} (found {meta and meta.get('version')})")
    tensors = load(data)
    model, best = {}, {}
    flat_optimizer: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        group, _, rest = name.partition(".")
        if group == "model":
            model[rest] = tensor
        elif group == "best":
            best[rest] = tensor
        elif group == "optim":
            flat_optimizer[rest] = tensor
    optimizer = _unflatten_state(flat_optimizer, dict(meta.get("optimizer_kinds") or {}))
    loop = LoopState.from_json(meta["loop"])
    loop.order = tensors.get("loop.order")
    return Checkpoint(model, optimizer, best or None, tensors["rng.torch"], tensors["rng.shuffle"], loop)


def header_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob (its JSON header), without loading its tensors."""
    if len(data) < 8:
        raise ValueError("not a safetensors file (too short)")
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    return dict(header.get("__metadata__") or {})


def restore(ckpt: Checkpoint, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            shuffle: torch.Generator) -> None:
    """Put weights, optimizer state and random states back; the caller continues the loop."""
    model.load_state_dict(ckpt.model)
    state = optimizer.state_dict()
    state["state"] = {index: dict(values) for index, values in ckpt.optimizer.items()}
    optimizer.load_state_dict(state)
    torch.set_rng_state(ckpt.rng_torch)
    shuffle.set_state(ckpt.rng_shuffle)


SEEDS_KEY = "archsearch.seed_checkpoints"


def pack(checkpoints: list[bytes]) -> bytes:
    """One blob for a trial's checkpoints, one per seed (``training.seeds``); a single one is itself."""
    from safetensors.torch import save

    if len(checkpoints) == 1:
        return checkpoints[0]
    tensors = {f"seed.{j}": torch.frombuffer(bytearray(data), dtype=torch.uint8) for j, data in enumerate(checkpoints)}
    return save(tensors, metadata={SEEDS_KEY: str(len(checkpoints))})


def unpack(data: bytes, seeds: int) -> list[Checkpoint]:
    """The ``seeds`` checkpoints :func:`pack` put in ``data``, decoded; another count is a ``ValueError``."""
    from safetensors.torch import load

    count = header_metadata(data).get(SEEDS_KEY)
    if count is None:
        parts = [data]
    else:
        tensors = load(data)
        parts = [tensors[f"seed.{j}"].numpy().tobytes() for j in range(int(count))]
    if len(parts) != seeds:
        raise ValueError(f"the checkpoint holds {len(parts)} seed(s) but training.seeds is {seeds}")
    return [decode(part) for part in parts]
