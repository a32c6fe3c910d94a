"""Trials of one network that differ only in learning rate, trained as one stacked model.

A strategy that proposes an architecture with several learning rates (``strategy.lr_siblings``) hands
the engine trials that the executor runs as one job: their models are stacked
(:class:`~archsearch.evaluation.loop.GroupRun`), one forward and backward serves all of them, and each
trial gets the result it would get alone, up to floating-point summation order: its own initialization
and shuffling (seeded by its own ``arch_id``), learning rate, learning curve, weights and checkpoint.
Two things are shared, and recorded in ``info["stacked_group"]``: the untrained network's measured
metrics (latency, memory; the same network) are measured once, and ``train_time_s`` is the group's
training time divided evenly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from archsearch.builder import build_model, fit_grids
from archsearch.devices import describe_device, resolve_device
from archsearch.errors import one_line
from archsearch.evaluation.checkpoint import Checkpoint
from archsearch.evaluation.checkpoint import pack as pack_checkpoints
from archsearch.evaluation.checkpoint import unpack as unpack_checkpoints
from archsearch.evaluation.latency import torch_threads
from archsearch.evaluation.loop import GroupRun, stack_refusal, tensors
from archsearch.evaluation.measure import count_flops
from archsearch.genome import Genome, content_hash
from archsearch.kernels.stacking import OPTIMIZERS as STACKED_OPTIMIZERS
from archsearch.trial import COMPLETE, REJECTED, EvalResult

if TYPE_CHECKING:
    from archsearch.evaluation.training import TrainingEvaluator


def group_key(evaluator: TrainingEvaluator, genome: Any) -> str | None:
    """What trials must share to train as one group: the network and every recipe value but the learning
    rate. ``None`` where the trial trains alone: stacking is off (``training.stack``), its seeds stack
    within the trial already (``training.seeds`` > 1), or its recipe is one stacking cannot follow (an
    optimizer other than Adam, AdamW or SGD, early stopping, dropout). ``training.hot`` does not stand in
    the way: stacking takes networks of linear layers and norms alone, which have nothing to fuse."""
    if not isinstance(genome, Genome):
        return None
    try:
        recipe = evaluator.recipe.with_overrides(genome.meta.get("recipe"))
    except Exception:  # an invalid recipe fails in evaluate, alone
        return None
    if (not recipe.stack or recipe.seeds > 1 or recipe.optimizer not in STACKED_OPTIMIZERS
            or recipe.early_stopping_patience is not None or recipe.dropout):
        return None
    network = genome.architecture_dict(identity=True)
    network["meta"] = {k: v for k, v in network["meta"].items() if k != "recipe"}
    return content_hash({"network": network, "recipe": {**recipe.to_dict(), "lr": None}})


def evaluate_group(evaluator: TrainingEvaluator, genomes: list[Genome], fidelity: float | None,
                   checkpoints: list[bytes | None]) -> list[EvalResult]:
    """Each trial's result, trained in one stacked group where they can be, else one after another."""
    keys = {group_key(evaluator, genome) for genome in genomes}
    why = "not one network and recipe, or stacking is off"
    if len(genomes) > 1 and len(keys) == 1 and None not in keys:
        try:
            stacked = _stacked(evaluator, genomes, fidelity, checkpoints)
        except Exception as exc:  # divergence of one, memory, a block stacking cannot take: alone, as it would run
            stacked = f"{type(exc).__name__} in the group: {exc}"
        if not isinstance(stacked, str):
            return stacked
        why = stacked
    results = [evaluator.evaluate(genome, fidelity, checkpoint)
               for genome, checkpoint in zip(genomes, checkpoints, strict=True)]
    for result in results:  # the trials table's stacked column says so
        result.info["group_not_stacked"] = one_line(why, 200)
    return results


def _stacked(evaluator: TrainingEvaluator, genomes: list[Genome], fidelity: float | None,
             checkpoints: list[bytes | None]) -> list[EvalResult] | str:
    """The group trained as one, or why it cannot be (then each trains alone)."""
    from archsearch.evaluation.training import stable_seed, weights_to_bytes

    task = evaluator.load_task()
    infos: list[dict[str, Any]] = [{} for _ in genomes]
    trainers = [evaluator.for_genome(genome, info) for genome, info in zip(genomes, infos, strict=True)]
    recipe = trainers[0].recipe
    saved: list[Checkpoint | None] = [unpack_checkpoints(c, 1)[0] if c is not None else None for c in checkpoints]
    fresh = saved[0] is None
    if any((ckpt is None) != fresh for ckpt in saved) or (not fresh and len(
            {(c.loop.step, c.loop.position, c.loop.epoch) for c in saved if c is not None}) != 1):
        return "its trials continue from different points"
    device = resolve_device(recipe.device)
    with torch_threads(evaluator.threads), torch.random.fork_rng(devices=[]):
        x_train, y_train = tensors(task, task.x_train, task.y_train, device)

        def build(genome: Genome) -> torch.nn.Module:
            torch.manual_seed(stable_seed(evaluator.seed, genome.arch_id))
            model = build_model(genome, task.data_spec, dropout=recipe.dropout).to(device)
            if fresh:
                fit_grids(model, x_train)
            return model

        first = build(genomes[0])  # refused before the others are built and measured: a refusal costs little
        flops = count_flops(first, x_train[:1]) if saved[0] is None else saved[0].loop.measured.get("flops")
        refusal = stack_refusal(first, recipe, flops, device)
        if refusal is not None:
            return refusal
        models = [first, *map(build, genomes[1:])]
        measured: dict[str, float] = {}
        if fresh:
            rejected = trainers[0]._measure_untrained(first, x_train, y_train, measured, {})
            if rejected is not None:  # one network: the same verdict for every trial
                return [EvalResult(REJECTED, dict(measured), rejected.error, {**info, **describe_device(device)})
                        for info in infos]
        shuffles = [torch.Generator().manual_seed(stable_seed(evaluator.seed, g.arch_id)) for g in genomes]
        run = GroupRun(recipe, models, task, shuffles, saved, [t.recipe.lr for t in trainers])
        if fresh:  # a continued group has each trial's own, from its checkpoint
            run.measured = [dict(measured) for _ in genomes]
        run.train_to(fidelity, trainers[0]._epoch_end)
        checkpoints_out = run.checkpoints() if run.can_continue() else None
        results = []
        for k, (model, info) in enumerate(zip(run.trained_models(), infos, strict=True)):
            info.update(describe_device(device), best_epoch=None, stopped_early=False, stacked_group=len(genomes))
            if recipe.hot:
                info["hot"] = "nothing to fuse; trained stacked"
            metrics = {**run.measured[k], "train_time_s": run.time_of(k), "epochs_trained": run.epochs_trained(),
                       **trainers[0]._seed_scores([model], task, info)}
            checkpoint = pack_checkpoints([checkpoints_out[k]]) if checkpoints_out is not None else None
            results.append(EvalResult(COMPLETE, metrics, info=info, weights=weights_to_bytes(model),
                                      curve=run.curves[k], checkpoint=checkpoint))
        return results
