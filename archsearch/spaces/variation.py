"""Mutation and crossover for :class:`~archsearch.spaces.block_graph.BlockGraphSpace`, by editing decisions.

Every edit works on a genome's decisions (``{label: value}``) and rebuilds the genome through the space
with a :class:`~archsearch.space.ReplayChooser` whose fallback samples whatever the edit removed. The
child is therefore valid by construction (the space built it) and its decisions replay to the same
``arch_id``, which is what lets evolution, resume and the run store treat mutated genomes like sampled
ones. Structural edits (insert, remove, swap) renumber the stage labels ``b{i}...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.genome import Genome

if TYPE_CHECKING:
    from archsearch.spaces.block_graph import BlockGraphSpace, Domain

Decisions = dict[str, Any]

MUTATIONS = ("insert", "remove", "swap", "replace", "width", "rewire", "norm", "norm_placement",
             "activation", "param", "layer_width", "form", "recipe")
"""insert / remove a stage, swap two stages, replace a block's kind, change the width, rewire a stage
(sequential / residual / parallel, or a parallel stage's merge), change the norm type or one block's
norm placement, change one block's activation, re-sample one block parameter (e.g. its expansion),
re-sample one hidden width of a network of layers, switch between the blocks and layers forms,
re-sample one training-recipe decision (``recipe.*``)."""

_STAGE = re.compile(r"^b(\d+)([pm]?)\.")
_MAX_TRIES = 20


def stage_of(label: str) -> int | None:
    match = _STAGE.match(label)
    return int(match.group(1)) if match else None


def renumber(decisions: Mapping[str, Any], mapping: Mapping[int, int | None]) -> Decisions:
    """Move stage ``i``'s labels to stage ``mapping[i]`` (dropped when None); other labels stay."""
    moved: Decisions = {}
    for label, value in decisions.items():
        stage = stage_of(label)
        if stage is None or stage not in mapping:
            moved[label] = value
        elif mapping[stage] is not None:
            moved[re.sub(r"^b\d+", f"b{mapping[stage]}", label)] = value
    return moved


def n_stages(genome: Genome) -> int:
    return sum(1 for node in genome.graph if re.fullmatch(r"b\d+", str(node)))


def allows(domain: Domain, value: Any) -> bool:
    """Whether ``domain`` (list, range or fixed value) contains ``value``."""
    if isinstance(domain, Mapping):
        step = domain.get("step") or 1
        return domain["low"] <= value <= domain["high"] and (value - domain["low"]) % step == 0
    if isinstance(domain, list | tuple):
        return value in domain
    return bool(domain == value)


def _without(decisions: Decisions, rng: np.random.Generator, pattern: str) -> Decisions | None:
    """Drop one label matching ``pattern`` (drawn at random) so the rebuild re-samples it."""
    labels = sorted(label for label in decisions if re.fullmatch(pattern, label))
    if not labels:
        return None
    chosen = labels[int(rng.integers(len(labels)))]
    return {k: v for k, v in decisions.items() if k != chosen}


def _insert(space: BlockGraphSpace, decisions: Decisions, depth: int, rng: np.random.Generator) -> Decisions | None:
    if "depth" not in decisions or not allows(space.depth, depth + 1):
        return None
    at = int(rng.integers(depth + 1))
    edited = renumber(decisions, {i: i + 1 for i in range(at, depth)})
    edited["depth"] = depth + 1
    return edited


def _remove(space: BlockGraphSpace, decisions: Decisions, depth: int, rng: np.random.Generator) -> Decisions | None:
    if "depth" not in decisions or depth < 2 or not allows(space.depth, depth - 1):
        return None
    at = int(rng.integers(depth))
    edited = renumber(decisions, {at: None, **{i: i - 1 for i in range(at + 1, depth)}})
    edited["depth"] = depth - 1
    return edited


def _swap(space: BlockGraphSpace, decisions: Decisions, depth: int, rng: np.random.Generator) -> Decisions | None:
    if depth < 2:
        return None
    i, j = (int(v) for v in rng.choice(depth, size=2, replace=False))
    return renumber(decisions, {i: j, j: i})


def _replace(space: BlockGraphSpace, decisions: Decisions, depth: int, rng: np.random.Generator) -> Decisions | None:
    labels = sorted(label for label in decisions if re.fullmatch(r"b\d+[p]?\.(layer_)?kind", label))
    if not labels:
        return None
    label = labels[int(rng.integers(len(labels)))]
    node = label.split(".")[0]
    prefix = f"{node}.{decisions[label]}."
    return {k: v for k, v in decisions.items() if k != label and not k.startswith(prefix)}


def _resampler(pattern: str) -> Callable[..., Decisions | None]:
    def edit(space: BlockGraphSpace, decisions: Decisions, depth: int, rng: np.random.Generator) -> Decisions | None:
        return _without(decisions, rng, pattern)

    return edit


_OPERATORS: dict[str, Callable[..., Decisions | None]] = {
    "insert": _insert,
    "remove": _remove,
    "swap": _swap,
    "replace": _replace,
    "width": _resampler(r"width"),
    "rewire": _resampler(r"b\d+\.(wiring|merge)"),
    "norm": _resampler(r"norm"),
    "norm_placement": _resampler(r"(b\d+[p]?\.)?norm_placement"),
    "activation": _resampler(r"b\d+[p]?\.activation"),
    "param": _resampler(r"b\d+[p]?\.[a-z0-9_]+\.[a-z0-9_]+"),
    "layer_width": _resampler(r"b\d+\.width"),
    "form": _resampler(r"form"),
    "recipe": _resampler(r"recipe\..+"),
}


def mutate(space: BlockGraphSpace, genome: Genome, rng: np.random.Generator, operator: str | None = None) -> Genome:
    """One applicable edit drawn at random (or ``operator``), retried until the architecture changes.

    Returns the parent's rebuild when no edit changes anything (a space with a single architecture).
    """
    if operator is not None and operator not in _OPERATORS:
        raise ValueError(f"unknown mutation {operator!r}; valid: {', '.join(MUTATIONS)}")
    decisions, depth = dict(genome.decisions), n_stages(genome)
    candidates = [operator] if operator else list(MUTATIONS)
    for _ in range(_MAX_TRIES):
        if not candidates:
            break
        name = candidates[int(rng.integers(len(candidates)))]
        edited = _OPERATORS[name](space, decisions, depth, rng)
        if edited is None:  # not applicable to this genome in this space
            candidates.remove(name)
            continue
        child = space.rebuild(edited, rng)
        if child.arch_id != genome.arch_id:
            return child
    return space.rebuild(decisions, rng)


def crossover(space: BlockGraphSpace, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
    """Uniform crossover over global decisions and whole stages (a stage keeps its blocks together).

    A parent whose token mixers made its tokenization for it (no ``tokenize`` decision) donates the
    tokenization it has, so a child without token mixers still inherits one of its parents'.
    """
    parents = [{"tokenize": g.meta.get("tokenize", "none"), **g.decisions} for g in (a, b)]
    depths = [n_stages(a), n_stages(b)]
    child: Decisions = {}
    global_labels = sorted({k for p in parents for k in p if stage_of(k) is None})
    for label in global_labels:
        donors = [p for p in parents if label in p]
        child[label] = donors[int(rng.integers(len(donors)))][label]
    depth = int(child["depth"]) if "depth" in child else depths[int(rng.integers(2))]
    for stage in range(depth):
        owners = [k for k in (0, 1) if depths[k] > stage]
        if not owners:
            break
        donor = parents[owners[int(rng.integers(len(owners)))]]
        child.update({k: v for k, v in donor.items() if stage_of(k) == stage})
    return space.rebuild(child, rng)
