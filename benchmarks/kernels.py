"""Fused kernels, grouped MoE, stacked candidates and hot training against their baselines, in one process.

Every comparison is timed in the same run, round-robin over its contestants so that load on a shared
machine hits them alike, on one torch thread. Each figure is the median over rounds of the thread's CPU
time (``time.thread_time``: what the code itself costs) beside the wall-clock time; "saved MB" is what
autograd keeps for the backward pass of one training step (the activation memory a fused kernel avoids;
CPU has no allocator peak to read per call). Ratios are against the row named in "vs".

Sections (``--sections``, default all):

- ``kan``: ``kan_bspline`` eager and fused against an MLP of equal parameters, forward (inference) and
  forward + backward, at batch 1024, 64 -> 64, grid 5, order 3, and two other sizes;
- ``bases``: the other fused bases (RBF, Chebyshev, Fourier, S-KAN) and the group-rational KAN likewise;
- ``dense-sizes``: the dense bases eager against fused at the small sizes searches train (widths 4-64,
  batches 64 and 600), beside what ``training.hot``'s rule (``fusion_pays``) picks for each;
- ``moe``: ``moe_topk`` (4 and 16 experts, top-2) with the expert loop and grouped, against a dense MLP
  of the same total parameters;
- ``stack``: 16 small MLP candidates trained one after another against stacked (``train_stacked``);
- ``seeds``: ``training.seeds=4`` trials of ``space=mlp`` architectures, the seeds stacked against one
  after another, through the evaluator a search uses;
- ``groups``: learning-rate siblings (``strategy.lr_siblings=4``): four trials of one ``space=mlp``
  architecture at other learning rates, trained as one stacked group against one after another through
  the evaluator a search uses, and whole searches that offer them with ``training.stack`` on and off;
- ``groups-quality`` (not in the default): whether siblings pay in search quality, the ``model`` strategy
  with and without them at equal trials and at about equal wall-clock;
- ``search``: whole searches with ``training.hot`` off and on (same seed and budget), wall time and front;
  strategy ``random``, whose proposals do not depend on measured timings, so both runs train the same
  candidates (``model``, the default, learns from ``latency_ms`` and would propose differently).

    python benchmarks/kernels.py [--rounds 30] [--sections kan,bases,dense-sizes,moe,stack,seeds,groups,search]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import torch
import torch.nn.functional as F

from archsearch.blocks import block_param_count, create_block


def saved_mb(module: torch.nn.Module, x: torch.Tensor) -> float:
    """Bytes autograd saves for one forward + backward of ``module`` on ``x`` (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen: set[int] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        key = t.untyped_storage().data_ptr()
        if key not in seen and key not in params:
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x).square().mean()
    return total / 2**20


def interleaved(calls: dict[str, Callable[[], None]], rounds: int, warmup: int = 3) -> dict[str, tuple[float, float]]:
    """Median (CPU ms, wall ms) per call, timed round-robin."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    wall: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            c, w = time.thread_time(), time.perf_counter()
            call()
            cpu[name].append((time.thread_time() - c) * 1e3)
            wall[name].append((time.perf_counter() - w) * 1e3)
    return {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in calls}


def matched_mlp(params: int, dim: int, activation: str = "silu") -> torch.nn.Module:
    """An MLP block of ``params`` parameters; SiLU, the KANs' base activation, unless told otherwise."""
    expansion = min((e / 64 for e in range(1, 64 * 64)),
                    key=lambda e: abs(block_param_count("mlp", dim, expansion=e, activation=activation) - params))
    return create_block("mlp", dim, expansion=expansion, activation=activation)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_step(m: torch.nn.Module, xg: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``m`` on ``xg`` (a leaf that wants its gradient), the MoE's loss included."""
    def call() -> None:
        out = m(xg)
        aux = getattr(m, "aux_loss", None)
        (out.square().mean() + (aux if aux is not None else 0)).backward()
        m.zero_grad(set_to_none=True)
        xg.grad = None
    return call


def forward(m: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One inference forward of ``m`` on ``x``."""
    def call() -> None:
        with torch.no_grad():
            m(x)
    return call


def compare_blocks(title: str, modules: dict[str, torch.nn.Module], x: torch.Tensor, rounds: int,
                   baseline: str = "mlp") -> None:
    """Forward and forward+backward of each module against ``baseline`` (and against eager)."""
    xg = x.clone().requires_grad_()
    calls = {f"{k}|fwd": forward(m, x) for k, m in modules.items()}
    calls.update({f"{k}|train": train_step(m, xg) for k, m in modules.items()})
    t = interleaved(calls, rounds)
    print(f"\n#### {title}\n")
    print("| module | params | fwd CPU ms | fwd wall ms | fwd / mlp | fwd+bwd CPU ms | fwd+bwd wall ms "
          "| fwd+bwd / mlp | fwd+bwd / eager | saved MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, m in modules.items():
        f, tr = t[f"{k}|fwd"], t[f"{k}|train"]
        vs_eager = f"{tr[0] / t['eager|train'][0]:.2f}" if "eager" in modules and k != baseline else "-"
        print(f"| {k} | {count(m):,} | {f[0]:.2f} | {f[1]:.2f} | {f[0] / t[f'{baseline}|fwd'][0]:.2f} "
              f"| {tr[0]:.2f} | {tr[1]:.2f} | {tr[0] / t[f'{baseline}|train'][0]:.2f} | {vs_eager} "
              f"| {saved_mb(m, xg):.1f} |")


def eager_and_fused(name: str, dim: int, **params: Any) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Block ``name`` built eager and fused from seed 0, the fused one holding the eager one's weights."""
    torch.manual_seed(0)
    eager = create_block(name, dim, **params)
    fused = create_block(name, dim, variant="fused", **params)
    fused.load_state_dict(eager.state_dict())
    return eager, fused


def kan_section(rounds: int) -> None:
    for batch, dim in [(1024, 64), (256, 32), (1024, 128)]:
        eager, fused = eager_and_fused("kan_bspline", dim, grid_size=5, spline_order=3)
        modules = {"mlp": matched_mlp(count(eager), dim), "eager": eager, "fused": fused}
        compare_blocks(f"kan_bspline, batch {batch}, {dim} -> {dim}, grid 5, order 3", modules,
                       torch.randn(batch, 1, dim), rounds)


def bases_section(rounds: int) -> None:
    batch, dim = 1024, 64
    for name, params in [("kan_rbf", {"grid_size": 8}), ("kan_chebyshev", {"degree": 4}),
                         ("kan_fourier", {"frequencies": 4}), ("kan_selectable", {"basis": 4}),
                         ("kan_rational", {"expansion": 2, "groups": 4})]:
        eager, fused = eager_and_fused(name, dim, **params)
        modules = {"mlp": matched_mlp(count(eager), dim), "eager": eager, "fused": fused}
        setting = ", ".join(f"{k} {v}" for k, v in params.items())
        compare_blocks(f"{name} ({setting}), batch {batch}, {dim} -> {dim}", modules,
                       torch.randn(batch, 1, dim), rounds)


def dense_sizes_section(rounds: int) -> None:
    from archsearch.kernels.hot import fusion_pays

    print("\n#### Dense bases at search sizes: forward + backward, fused against eager (CPU time)\n")
    print("| block | width | batch | eager ms | fused ms | eager / fused | hot rule fuses |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, params in [("kan_rbf", {"grid_size": 8}), ("kan_chebyshev", {"degree": 2}),
                         ("kan_chebyshev", {"degree": 6}), ("kan_fourier", {"frequencies": 2}),
                         ("kan_fourier", {"frequencies": 8}), ("kan_selectable", {"basis": 3})]:
        for dim in (4, 16, 64):
            for batch in (64, 600):
                eager, fused = eager_and_fused(name, dim, **params)
                xg = torch.randn(batch, dim, requires_grad=True)
                t = interleaved({"eager": train_step(eager, xg), "fused": train_step(fused, xg)}, rounds)
                setting = ", ".join(f"{k} {v}" for k, v in params.items())
                print(f"| {name} ({setting}) | {dim} | {batch} | {t['eager'][0]:.3f} | {t['fused'][0]:.3f} "
                      f"| {t['eager'][0] / t['fused'][0]:.2f} | {'yes' if fusion_pays(name, eager, batch) else 'no'} |")


def moe_section(rounds: int) -> None:
    batch, tokens, dim = 32, 16, 64
    for experts, expansion in [(4, 1.0), (16, 0.25)]:
        options = {"experts": experts, "k": 2, "expert": "mlp", "expansion": expansion, "activation": "gelu"}
        eager, fused = eager_and_fused("moe_topk", dim, **options)
        modules = {"mlp": matched_mlp(count(eager), dim, "gelu"), "eager": eager, "fused": fused}
        compare_blocks(f"moe_topk ({experts} experts of expansion {expansion}, top-2), {batch} x {tokens} tokens, "
                       f"width {dim}; mlp: dense, same total parameters, GELU as the experts", modules, torch.randn(batch, tokens, dim),
                       rounds)


def stacking_contest(n_models: int, steps: int, n: int = 1024,
                     device: torch.device | None = None) -> tuple[dict[str, Callable[[], None]], int]:
    """``n_models`` small MLP candidates of one architecture, a learning rate each, trained ``steps`` Adam
    steps of batch 64 on ``n`` random rows: one after another and stacked (``train_stacked``), as the two
    calls to time; and one candidate's parameter count. Shuffles come from CPU generators, as in the
    evaluator's loop, wherever the data lie."""
    from archsearch.builder import build_model
    from archsearch.genome import BlockSpec, Genome
    from archsearch.kernels.stacking import train_stacked
    from archsearch.tasks import DataSpec

    device = device or torch.device("cpu")
    genome = Genome.sequential([BlockSpec("mlp", {"expansion": 2}, "relu", residual=True)] * 2, {"width": 32})
    data = DataSpec("vector", n_features=64, n_outputs=10)
    x, y = torch.randn(n, 64).to(device), torch.randint(0, 10, (n,)).to(device)
    lrs = [10 ** (-3 + 2 * k / n_models) for k in range(n_models)]  # a learning-rate sweep

    def models() -> list[torch.nn.Module]:
        torch.manual_seed(0)
        return [build_model(genome, data).to(device) for _ in range(n_models)]

    def one_by_one() -> None:
        for k, model in enumerate(models()):
            opt = torch.optim.Adam(model.parameters(), lr=lrs[k], fused=True)
            generator = torch.Generator().manual_seed(k)
            order, begin = torch.randperm(n, generator=generator), 0
            for _ in range(steps):
                if begin >= n:
                    order, begin = torch.randperm(n, generator=generator), 0
                idx = order[begin:begin + 64].to(device)
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                begin += 64

    def stacked() -> None:
        train_stacked(models(), x, y, F.cross_entropy, lrs, steps, 64,
                      [torch.Generator().manual_seed(k) for k in range(n_models)])

    return {"one after another": one_by_one, "stacked": stacked}, count(models()[0])


def stack_section(rounds: int, n_models: int = 16, steps: int = 40) -> None:
    calls, params = stacking_contest(n_models, steps)
    t = interleaved(calls, rounds, warmup=1)
    base = t["one after another"]
    print(f"\n#### {n_models} MLP candidates ({params:,} parameters each), {steps} Adam steps of "
          "batch 64, a learning rate each\n")
    print("| training | CPU ms | wall ms | candidate-steps / CPU s | throughput vs one after another |")
    print("|---|---:|---:|---:|---:|")
    for name, (c, w) in t.items():
        print(f"| {name} | {c:.0f} | {w:.0f} | {n_models * steps / (c / 1e3):,.0f} | {base[0] / c:.2f} |")


def seeds_section(rounds: int, n_archs: int = 8, seeds: int = 4) -> None:
    """``training.seeds`` through the evaluator: a trial's seeds stacked against one after another, on
    architectures the ``mlp`` space samples (the trials of a search), digits and MNIST-1D. CPU and wall
    time are whole evaluations (measurement and scoring included); training time is the trials'
    ``train_time_s``, the part stacking changes."""
    from archsearch import config
    from archsearch.evaluation.training import TaskRef, TrainingEvaluator, TrainingRecipe

    space = config.instantiate(config.compose(["space=mlp"]).space, "space mlp")
    genomes = [space.sample(k) for k in range(n_archs)]
    print(f"\n#### training.seeds={seeds}: {n_archs} architectures of space=mlp, 1 epoch, batch 64, Adam; "
          f"the trial's seeds one after another and stacked (sum over the architectures)\n")
    print("| task | seeds trained | CPU s | wall s | vs one after another | training s | training vs one after another "
          "| stacked trials | largest score gap |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for task, task_rounds in (("digits", rounds), ("mnist1d", 1)):  # an MNIST-1D pass takes minutes
        evaluators = {name: TrainingEvaluator(TaskRef(task), TrainingRecipe(epochs=1, seeds=seeds, stack=stack))
                      for name, stack in (("one after another", False), ("stacked", True))}
        for evaluator in evaluators.values():
            evaluator.warm_up()
        contestants = {name: (lambda genome, e=evaluator: [e.evaluate(genome)]) for name, evaluator in evaluators.items()}
        stacked_against_alone(task, genomes, contestants, task_rounds, lambda r: bool(r.info.get("stacked")),
                              lambda r: [v for key in sorted(r.info["per_seed"]) for v in r.info["per_seed"][key]],
                              "{:.4f}")


def stacked_against_alone(task: str, items: list[Any], contestants: dict[str, Callable[[Any], list[Any]]],
                          rounds: int, stacked_of: Callable[[Any], bool], scores_of: Callable[[Any], list[float]],
                          gap_format: str) -> None:
    """Evaluate every item with each contestant ("one after another", "stacked"), interleaved so that load
    hits both alike, and print a row each: CPU, wall and training time (the results' ``train_time_s``)
    against one after another, how many items trained stacked, and the largest gap between their scores."""
    totals = {name: [0.0, 0.0, 0.0] for name in contestants}  # CPU s, wall s, training s
    scores: dict[str, list[float]] = {name: [] for name in contestants}
    stacked = 0
    for _ in range(rounds):
        for item in items:
            for name, evaluate in contestants.items():
                c, w = time.thread_time(), time.perf_counter()
                results = evaluate(item)
                totals[name][0] += (time.thread_time() - c) / rounds
                totals[name][1] += (time.perf_counter() - w) / rounds
                totals[name][2] += sum(r.metrics["train_time_s"] for r in results) / rounds
                scores[name] += [v for r in results for v in scores_of(r)]
                stacked += name == "stacked" and stacked_of(results[0])
    gap = max(abs(a - b) for a, b in zip(scores["stacked"], scores["one after another"], strict=True))
    base, base_training = totals["one after another"][0], totals["one after another"][2]
    for name, (c, w, training) in totals.items():
        share = f"{stacked // rounds} of {len(items)}" if name == "stacked" else "-"
        print(f"| {task} | {name} | {c:.1f} | {w:.1f} | {base / c:.2f} | {training:.1f} | "
              f"{base_training / training:.2f} | {share} | {gap_format.format(gap) if name == 'stacked' else '-'} |")


LR_RECIPE = "+space.recipe={lr:{low:1.0e-3,high:3.0e-2,log:true}}"


def groups_section(rounds: int, budget: int, n_archs: int = 6, k: int = 4) -> None:
    """Learning-rate groups: the evaluator's ``evaluate_group`` against ``evaluate`` trial by trial on the
    groups a ``lr_siblings`` strategy proposes, then whole searches offering them, stacking on and off."""
    import tempfile

    import numpy as np

    import archsearch
    from archsearch import config
    from archsearch.evaluation.training import TaskRef, TrainingEvaluator, TrainingRecipe
    from archsearch.strategies import make_strategy

    space = config.instantiate(config.compose(["space=mlp", LR_RECIPE]).space, "space mlp")
    strategy = make_strategy("random", space, {"val_accuracy": "maximize"}, seed=0)
    strategy.use_siblings(k)
    groups = [[strategy.next_proposal().architecture for _ in range(k)] for _ in range(n_archs)]
    print(f"\n#### {n_archs} groups of {k} trials (a space=mlp architecture, learning rates around the proposal's in "
          "[1e-3, 3e-2]), 1 epoch, batch 64, Adam: one after another and stacked (sum over the groups)\n")
    print("| task | trials trained | CPU s | wall s | vs one after another | training s | training vs one after "
          "another | stacked groups | largest score gap |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for task, task_rounds in (("digits", rounds), ("mnist1d", 1)):
        evaluator = TrainingEvaluator(TaskRef(task), TrainingRecipe(epochs=1))
        evaluator.warm_up()
        contestants = {"one after another": lambda group, e=evaluator: [e.evaluate(genome) for genome in group],
                       "stacked": lambda group, e=evaluator: e.evaluate_group(group, None, [None] * k)}
        stacked_against_alone(task, groups, contestants, task_rounds, lambda r: bool(r.info.get("stacked_group")),
                              lambda r: [r.metrics["val_accuracy"]], "{:.2g}")

    print(f"\n#### Whole searches offering learning-rate siblings: space=mlp with recipe.lr searched, task digits, "
          f"strategy random, strategy.lr_siblings={k}, budget {budget * 2}, seed 0, inline executor, objectives "
          "val_accuracy and n_params (a measured latency would differ between runs by noise alone); "
          "training.stack off and on\n")
    print("| stack | wall s | CPU s | wall vs off | CPU vs off | trials in groups | front (arch ids) | same front "
          "| largest val_accuracy gap |")
    print("|---|---:|---:|---:|---:|---:|---|---|---:|")
    outcome = {}
    for stack in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            c, w = time.process_time(), time.perf_counter()
            run = archsearch.search(space="mlp", task="digits", budget=budget * 2, seed=0, executor="inline",
                                    strategy="random", run_dir=f"{tmp}/run", quiet=True,
                                    objectives={"val_accuracy": "maximize", "n_params": "minimize"},
                                    overrides=[f"strategy.lr_siblings={k}", LR_RECIPE, "training.epochs=2",
                                               f"training.stack={str(stack).lower()}"])
            c, w = time.process_time() - c, time.perf_counter() - w
            trials = run.trials.to_pandas()
            grouped = int(trials.stacked.fillna("").str.startswith("group").sum())
            outcome[stack] = (c, w, sorted(run.pareto()["arch_id"].to_pylist()), trials.val_accuracy.to_numpy())
        c0, w0, front0, val0 = outcome[False]
        front, val = outcome[stack][2], outcome[stack][3]
        same = "-" if not stack else ("yes" if front == front0 else "no")
        gap = f"{float(np.max(np.abs(val - val0))):.2g}" if stack else "-"
        print(f"| {'on' if stack else 'off'} | {w:.1f} | {c:.1f} | {w0 / w:.2f} | {c0 / c:.2f} | {grouped} of "
              f"{len(trials)} | {len(front)}: {' '.join(a[:6] for a in front)} | {same} | {gap} |")


def group_quality_section(seeds: int, budget: int = 40, k: int = 4) -> None:
    """Are siblings worth their trials? The ``model`` strategy with and without ``lr_siblings`` (learning
    rate searched over [1e-4, 3e-2]), the front's hypervolume over (val_accuracy, log10 n_params), against
    wall-clock: the siblings' trials are cheaper, but each spends a proposal on a learning rate."""
    import tempfile

    import numpy as np

    import archsearch
    from archsearch.pareto import hypervolume

    recipe = "+space.recipe={lr:{low:1.0e-4,high:3.0e-2,log:true}}"
    runs = [(1, budget), (k, budget), (k, 2 * budget)]
    print(f"\n#### Search quality with learning-rate siblings: space=mlp, task digits, strategy model, 2 epochs, "
          f"inline executor, mean over seeds 0-{seeds - 1}; hypervolume of (val_accuracy, log10 n_params) from "
          "(0, 7)\n")
    print("| lr_siblings | trials | wall s | CPU s | hypervolume | best val_accuracy |")
    print("|---:|---:|---:|---:|---:|---:|")
    for siblings, trials in runs:
        figures = []
        for seed in range(seeds):
            with tempfile.TemporaryDirectory() as tmp:
                c, w = time.process_time(), time.perf_counter()
                run = archsearch.search(space="mlp", task="digits", budget=trials, seed=seed, executor="inline",
                                        strategy="model", run_dir=f"{tmp}/run", quiet=True,
                                        objectives={"val_accuracy": "maximize", "n_params": "minimize"},
                                        overrides=[f"strategy.lr_siblings={siblings}", recipe, "training.epochs=2"])
                c, w = time.process_time() - c, time.perf_counter() - w
                done = run.trials.to_pandas().query("status == 'complete'")
                points = np.stack([-done.val_accuracy.to_numpy(), np.log10(done.n_params.to_numpy())], axis=1)
                figures.append((w, c, hypervolume(points, np.array([0.0, 7.0])), done.val_accuracy.max()))
        w, c, hv, best = np.mean(figures, axis=0)
        print(f"| {siblings} | {trials} | {w:.1f} | {c:.1f} | {hv:.4f} | {best:.4f} |")


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def search_section(budget: int, repeats: int = 1) -> None:
    """Off and on alternate ``repeats`` times, so a drift in the machine's speed hits both alike."""
    import tempfile

    import archsearch
    from archsearch.devices import describe_device, resolve_device

    where = describe_device(resolve_device("auto"))["device"]
    print(f"\n#### Whole searches, budget {budget}, seed 0, inline executor, on {where}: training.hot off and on\n")
    print("| space, task | round | hot | wall s | CPU s | front (arch ids) | same front | same front on the off run's latencies |")
    print("|---|---:|---|---:|---:|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:  # first-search costs (imports, kernel load) paid once, untimed
        archsearch.search(space="kan", task="kan_toy", budget=1, seed=0, executor="inline", run_dir=f"{tmp}/w",
                          overrides=["training.hot=true"])
    notes, ratios = [], {}
    for space, task, extra in [("kan", "kan_toy", []), ("hybrid", "mnist1d", ["training.epochs=2"])]:
        for round_ in range(1, repeats + 1):
            fronts, rows, walls = {}, {}, {}
            for hot in (False, True):
                with tempfile.TemporaryDirectory() as tmp:
                    c, w = time.process_time(), time.perf_counter()
                    run = archsearch.search(space=space, task=task, budget=budget, seed=0, executor="inline",
                                            strategy="random", run_dir=f"{tmp}/run",
                                            overrides=[f"training.hot={str(hot).lower()}", *extra])
                    c, walls[hot] = time.process_time() - c, time.perf_counter() - w
                    fronts[hot] = sorted(run.pareto()["arch_id"].to_pylist())
                    rows[hot], objectives = run.trials, run.objectives
                same = same_latency = "-"
                if hot:
                    same = "yes" if fronts[True] == fronts[False] else "no"
                    same_latency = "yes" if _front_with_latencies(rows[True], rows[False], objectives) == \
                        _front_with_latencies(rows[False], rows[False], objectives) else "no"
                print(f"| {space}, {task} | {round_} | {'on' if hot else 'off'} | {walls[hot]:.1f} | {c:.1f} | "
                      f"{len(fronts[hot])}: {' '.join(a[:6] for a in fronts[hot])} | {same} | {same_latency} |")
            ratios.setdefault(space, []).append(walls[False] / walls[True])
            notes += _front_differences(space, round_, fronts, rows, objectives)
    print("\nLess wall-clock with hot (off / on), per round: " + "; ".join(
        f"{space} {' '.join(f'{r:.2f}x' for r in values)} (median {statistics.median(values):.2f}x)"
        for space, values in ratios.items()))
    if notes:
        print("\nFront members in one run of a round only (their objectives in both; the same candidates trained):\n")
        print("\n".join(f"- {note}" for note in notes))


def _front_with_latencies(trials: Any, latencies_from: Any, objectives: dict[str, str]) -> list[str]:
    """The front of ``trials`` with every latency objective taken from ``latencies_from`` (same arch ids):
    whether hot changed what was trained, apart from timings measured afresh in each run."""
    from archsearch.results.tables import pareto_table

    timed = [k for k in objectives if k.startswith("latency")]
    if not timed:
        return sorted(pareto_table(trials, objectives)["arch_id"].to_pylist())
    source = {row["arch_id"]: row for row in latencies_from.to_pylist()}
    for name in timed:
        values = [source.get(a, {}).get(name) for a in trials["arch_id"].to_pylist()]
        trials = trials.set_column(trials.schema.get_field_index(name), name, pa.array(values, pa.float64()))
    return sorted(pareto_table(trials, objectives)["arch_id"].to_pylist())


def _front_differences(space: str, round_: int, fronts: dict[bool, list[str]], rows: dict[bool, Any],
                       objectives: dict[str, str]) -> list[str]:
    values = {hot: {row["arch_id"]: row for row in rows[hot].to_pylist()} for hot in (False, True)}
    notes = []
    for arch in sorted(set(fronts[True]) ^ set(fronts[False])):
        figures = ", ".join(f"{k} {_figure(values[False][arch][k])} off / {_figure(values[True][arch][k])} on"
                            for k in objectives)
        notes.append(f"{space}, round {round_}: {arch[:6]} on the front {'with' if arch in fronts[True] else 'without'} "
                     f"hot only; {figures}")
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--sections", default="kan,bases,dense-sizes,moe,stack,seeds,groups,search")
    parser.add_argument("--search-budget", type=int, default=12)
    parser.add_argument("--search-repeats", type=int, default=1, help="rounds of off and on in --sections search")
    parser.add_argument("--quality-seeds", type=int, default=3, help="seeds of --sections groups-quality")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sections = args.sections.split(",")
    if sections != ["search"]:  # the search alone may run on a GPU, where the CPU kernels are not needed
        from archsearch.kernels.cpu import unavailable_reason

        reason = unavailable_reason()
        print(f"torch {torch.__version__}, {platform.machine()}, 1 thread; fused CPU kernels: "
              f"{'built' if reason is None else reason}; median of {args.rounds} interleaved rounds")
    for name, run in [("kan", kan_section), ("bases", bases_section), ("dense-sizes", dense_sizes_section),
                      ("moe", moe_section), ("stack", stack_section)]:
        if name in sections:
            run(args.rounds if name != "stack" else max(3, args.rounds // 6))
    if "seeds" in sections:
        seeds_section(max(1, args.rounds // 10))
    if "groups" in sections:
        groups_section(max(1, args.rounds // 10), args.search_budget)
    if "groups-quality" in sections:
        group_quality_section(args.quality_seeds)
    if "search" in sections:
        search_section(args.search_budget, args.search_repeats)


if __name__ == "__main__":
    main()
