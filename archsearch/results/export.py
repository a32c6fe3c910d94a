"""Taking a model out of a run: rebuild a trial's network, with its kept or re-trained weights.

Weights travel as safetensors and genomes as JSON, so neither loading a run nor loading an exported
model can execute code from the files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError, one_line
from archsearch.genome import Genome
from archsearch.versions import EXPORT_SCHEMA_VERSION

GENOME_FILE, WEIGHTS_FILE, MODEL_FILE, README_FILE = "genome.json", "model.safetensors", "model.json", "README.md"


def read_saved_config(path: Path) -> dict[str, Any]:
    """A run's resolved ``config.yaml`` as plain data (``yaml.safe_load``: nothing in it is executed)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ArchsearchError(f"cannot read {path}: {one_line(str(exc))}") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in ("task", "training")):
        raise ArchsearchError(f"cannot read {path}: expected the task and training sections of a run's config")
    return data


def retrain_weights(run: Any, trial_id: int) -> bytes:
    """Train the trial again with the run's recorded recipe and seed: the same weights it had in the run."""
    from archsearch.evaluation.assemble import evaluator_for_saved_run

    info = run.info
    if info.get("user_evaluate") or info.get("user_task"):
        raise ArchsearchError(
            f"run {run.path} trained with your own task or evaluate function; archsearch cannot re-train "
            "its candidates by itself (export a trial whose weights were kept instead)")
    evaluator = evaluator_for_saved_run(read_saved_config(run.path / "config.yaml"))
    row = run.trial_row(trial_id)
    result = evaluator.evaluate(run.genome(trial_id), row["fidelity"])
    if result.weights is None:
        raise ArchsearchError(f"re-training trial {trial_id} did not complete: {result.error}")
    return result.weights


def trial_weights(run: Any, trial_id: int, retrain: bool) -> tuple[bytes, bool]:
    """The trial's kept weights, or (with ``retrain``) freshly re-trained ones; and whether they were."""
    path = run.store.weights_path(trial_id)
    if path.exists():
        return path.read_bytes(), False
    if retrain:
        return retrain_weights(run, trial_id), True
    raise ArchsearchError(
        f"trial {trial_id} has no kept weights (only the Pareto front's are kept); re-train it with the "
        "run's recipe and seed: --retrain on the command line, retrain=True in Python")


def run_preprocessing(run: Any) -> dict[str, Any] | None:
    """The run's task preprocessing: from run.json, else (older runs of a named task) by loading the task."""
    if run.info.get("preprocessing"):
        return dict(run.info["preprocessing"])
    if run.info.get("user_task") or run.info.get("user_evaluate") or not run.info.get("data_spec"):
        return None
    from archsearch.evaluation.assemble import evaluator_for_saved_run
    from archsearch.results.exported import preprocessing_of

    evaluator = evaluator_for_saved_run(read_saved_config(run.path / "config.yaml"))
    return preprocessing_of(evaluator.load_task())


def export_model(run: Any, trial_id: int, out_dir: str | os.PathLike[str], retrain: bool = False) -> Path:
    """Write genome.json, model.safetensors, model.json and a README for one trial into ``out_dir``."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ArchsearchError(f"export directory {out} is not empty; choose a new or empty directory")
    row = run.trial_row(trial_id)
    genome = run.genome(trial_id)
    data, retrained = trial_weights(run, trial_id, retrain)
    metrics = {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)
               and k not in ("trial_id", "attempts", "fidelity", "duration_s") and not k.startswith("gene.")}
    out.mkdir(parents=True, exist_ok=True)
    (out / GENOME_FILE).write_text(genome.to_json() + "\n")
    (out / WEIGHTS_FILE).write_bytes(data)
    description = {
        "schema_version": EXPORT_SCHEMA_VERSION,
        "trial_id": trial_id,
        "arch_id": genome.arch_id,
        "run_dir": os.fspath(run.path),
        "task": run.info.get("task"),
        "seed": run.info.get("seed"),
        "data_spec": run.info["data_spec"],
        "preprocessing": run_preprocessing(run),
        "metrics": metrics,
        "retrained": retrained,
    }
    (out / MODEL_FILE).write_text(json.dumps(description, indent=2) + "\n")
    (out / README_FILE).write_text(_readme(description, genome))
    return out


def load_model(path: str | os.PathLike[str]) -> Any:
    """Rebuild an exported model (``archsearch export``) that takes raw inputs.

    Returns an :class:`~archsearch.results.exported.ExportedModel` in eval mode: ``model(x)`` on a raw
    tensor, ``model.predict(x)`` / ``model.predict_proba(x)`` on arrays, ``model.network`` the bare
    network (standardized inputs, as during the search). Every file is checked first (see
    :mod:`archsearch.results.model_files`): a damaged or tampered one is a one-line error naming it, and
    sizes are compared with the weights before anything is allocated.
    """
    from archsearch.results.exported import ExportedModel
    from archsearch.results.model_files import ModelFileError, build_checked, read_genome, read_json

    folder = Path(path)
    for name in (GENOME_FILE, WEIGHTS_FILE, MODEL_FILE):
        if not (folder / name).is_file():
            raise ArchsearchError(f"{folder} is not an exported model: {name} is missing")
    description = read_json(folder / MODEL_FILE)
    if not isinstance(description, dict) or description.get("schema_version") != EXPORT_SCHEMA_VERSION:
        version = description.get("schema_version") if isinstance(description, dict) else None
        raise ModelFileError(f"{folder / MODEL_FILE} has export schema_version {version!r}; "
                             f"this archsearch reads {EXPORT_SCHEMA_VERSION}")
    genome = read_genome(read_json(folder / GENOME_FILE), str(folder / GENOME_FILE))
    network = build_checked(genome, description.get("data_spec"), folder / WEIGHTS_FILE, str(folder))
    preprocessing = description.get("preprocessing")
    try:
        if preprocessing is not None and not isinstance(preprocessing, dict):
            raise TypeError("it must be an object")
        return ExportedModel(network, preprocessing)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{folder / MODEL_FILE}: unusable preprocessing: {one_line(str(exc))}") from None


def describe_input(spec: dict[str, Any]) -> str:
    """``a vector of 64 features``, ``a sequence of 40 steps with 1 channel``, ``17 token ids below 20``."""
    kind = spec.get("input_kind")
    if kind == "vector":
        return f"a vector of {spec['n_features']} features"
    if kind == "tokens":
        return f"{spec['seq_len']} token ids below {spec['vocab_size']}"
    channels = spec.get("n_channels", 1)
    return f"a sequence of {spec['seq_len']} steps with {channels} channel{'s' if channels != 1 else ''}"


def _readme(description: dict[str, Any], genome: Genome) -> str:
    from archsearch.console import describe_architecture, format_value

    metrics = "\n".join(f"| {k} | {format_value(k, v)} |" for k, v in sorted(description["metrics"].items()))
    spec = description["data_spec"]
    prep = description.get("preprocessing") or {}
    outputs = (f"{spec['n_outputs']} class logits" if prep.get("problem", "classification") == "classification"
               else "one value in the target's units")
    standardized = ("The model standardizes its inputs itself with the training split's statistics "
                    "(`preprocessing` in `model.json`): feed rows as they come."
                    if prep.get("x_mean") is not None else "Inputs are used as they are (no standardization).")
    return f"""# archsearch model {description['arch_id']}

Trial {description['trial_id']} of the run `{description['run_dir']}` (task `{description['task']}`,
seed {description['seed']}).

Architecture: `{describe_architecture(genome.to_json())}`

Input: {describe_input(spec)}; output: {outputs}. {standardized}

| metric | value |
| --- | --- |
{metrics}

```python
import archsearch
model = archsearch.load_model("path/to/this/folder")   # torch.nn.Module, eval mode, takes raw inputs
labels = model.predict(x)                               # x: numpy array (n, ...) of raw inputs
logits = model(torch.as_tensor(x))                      # model.network: the bare network
```

Files: `genome.json` (the architecture, `archsearch.Genome.from_json`), `model.safetensors` (weights),
`model.json` (shapes, preprocessing, metrics, provenance).
"""
