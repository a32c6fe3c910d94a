"""Reading a model back from files someone else may have written: checked, bounded, one-line errors.

An exported model (``genome.json``, ``model.json``, ``model.safetensors``) or a run's kept weights are
read without executing anything (JSON and safetensors, no pickle). Before the network is allocated, it
is built on PyTorch's ``meta`` device (shapes only, no memory) and its tensor shapes are compared with
the ones the safetensors header declares: a ``width`` of three million in a tampered ``genome.json``
is refused with a message instead of allocating terabytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError

MAX_JSON_BYTES = 16 * 1024 * 1024
DATA_SPEC_KINDS = {"input_kind": str, "n_features": int, "seq_len": int, "n_channels": int, "vocab_size": int,
                   "n_outputs": int}
MAX_DIMENSION = 10**7  # any size in a data spec above this is damage, not a task


class ModelFileError(ArchsearchError):
    """A model file that is missing, damaged or inconsistent; the message names it."""


def read_json(path: Path) -> Any:
    """A JSON file's value, or a one-line :class:`ModelFileError` naming the file."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ModelFileError(f"{path} is larger than {MAX_JSON_BYTES // 2**20} MiB; not a file archsearch wrote")
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "not UTF-8 JSON"
        raise ModelFileError(f"{path} is damaged: {reason}") from None


def check_data_spec(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping) or "input_kind" not in spec:
        raise ModelFileError(f"{where}: data_spec must be an object with input_kind, n_features, ..., n_outputs")
    for key, value in spec.items():
        kind = DATA_SPEC_KINDS.get(key)
        if kind is None:
            raise ModelFileError(f"{where}: data_spec has an unknown field {key!r}")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DIMENSION):
            raise ModelFileError(f"{where}: data_spec.{key} must be an integer from 0 to {MAX_DIMENSION}, got {value!r}")
        if kind is str and not isinstance(value, str):
            raise ModelFileError(f"{where}: data_spec.{key} must be text, got {value!r}")
    return dict(spec)


def read_genome(text_or_data: Any, where: str) -> Any:
    from archsearch.genome import Genome

    try:
        if isinstance(text_or_data, str):
            return Genome.from_json(text_or_data)
        return Genome.from_dict(text_or_data)
    except RecursionError:
        raise ModelFileError(f"{where}: the genome is nested too deeply") from None
    except (ArchsearchError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{where}: not a valid genome ({type(exc).__name__}: {str(exc)[:200]})") from None


def _declared_shapes(weights: Path | bytes, where: str) -> dict[str, tuple[int, ...]]:
    """Tensor shapes a safetensors file declares in its header (nothing is loaded)."""
    import struct

    try:
        header = weights[:8] if isinstance(weights, bytes) else weights.open("rb").read(8)
        size = struct.unpack("<Q", header)[0] if len(header) == 8 else -1
        total = len(weights) if isinstance(weights, bytes) else weights.stat().st_size
        if not 0 < size <= min(total - 8, MAX_JSON_BYTES):
            raise ValueError("bad header length")
        raw = weights[8:8 + size] if isinstance(weights, bytes) else weights.read_bytes()[8:8 + size]
        table = json.loads(raw.decode("utf-8"))
        return {name: tuple(int(d) for d in entry["shape"]) for name, entry in table.items() if name != "__metadata__"}
    except (OSError, ValueError, KeyError, TypeError, RecursionError, struct.error):
        raise ModelFileError(f"{where} is not a safetensors file archsearch can read") from None


def build_checked(genome: Any, data_spec: Any, weights: Path | bytes, where: str) -> Any:
    """The genome's network with the weights loaded, refusing (before allocating) shapes the weights do
    not declare; every failure is a one-line :class:`ModelFileError` naming ``where``."""
    import torch

    from archsearch.builder import build_model
    from archsearch.tasks import DataSpec

    declared = _declared_shapes(weights, where)
    spec = DataSpec(**check_data_spec(data_spec, where))
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build_model(genome, spec).state_dict().items()}
    except RuntimeError:  # a block whose construction reads values (meta tensors have none)
        shapes = None
    except Exception as exc:
        raise ModelFileError(f"{where}: cannot build this architecture ({type(exc).__name__}: {str(exc)[:200]})") from None
    if shapes is not None and shapes != declared:
        needed = sum(math.prod(s) for s in shapes.values())
        held = sum(math.prod(s) for s in declared.values())
        raise ModelFileError(f"{where}: the architecture needs {needed:,} values in {len(shapes)} tensors but the "
                             f"weights declare {held:,} in {len(declared)}; the files do not belong together")
    if shapes is None and any(isinstance(v, int) and v > MAX_DIMENSION for v in _numbers(genome.to_dict())):
        raise ModelFileError(f"{where}: the architecture has a size above {MAX_DIMENSION}")
    try:
        from safetensors.torch import load, load_file

        state = load(weights) if isinstance(weights, bytes) else load_file(weights)
        model = build_model(genome, spec)
        model.load_state_dict(state)
    except Exception as exc:
        raise ModelFileError(f"{where}: the weights do not fit the architecture "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    return model.eval()


def _numbers(node: Any) -> list[Any]:
    if isinstance(node, Mapping):
        return [n for v in node.values() for n in _numbers(v)]
    if isinstance(node, list | tuple):
        return [n for v in node for n in _numbers(v)]
    return [node]
