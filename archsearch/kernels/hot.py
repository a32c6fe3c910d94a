"""Hot candidates: the fastest module that computes the same function as a given one.

Policy (:func:`make_hot`), in order:

1. **Fuse.** Every block whose registry entry has a fused implementation that runs on the module's
   device (and every fused part: the group rationals of ``kan_rational``, the PAU activation) is switched
   to it in place of its class, which keeps every parameter, buffer and state-dict key. Fused kernels are
   kept only if a measured step (forward + backward when ``training``, forward otherwise) is faster than
   the eager step on ``example_input``; measurements run under a forked RNG, so training that follows is
   unchanged. Without timing (``by_timing=False``, what ``training.hot`` does) a fixed rule decides
   (:func:`fusion_pays`): the blocks of ``FASTER_FUSED`` always, the dense bases of ``FUSED_FROM_WORK``
   when a layer's work reaches ``DENSE_MIN_WORK``, the top-k MoE while its work stays under ``MOE_MAX_WORK``.
2. **Compile** (``torch.compile``) only where it repays: compiling costs seconds to tens of seconds per
   architecture on a CPU and often slows small models, so with ``compile="auto"`` it is tried only when
   ``expected_calls`` (the remaining steps: promotion to a higher rung, retraining of the front, export)
   times the measured step time times the gain compilation usually gives (``COMPILE_GAIN``) exceeds the
   compile cost last measured in this process (``COMPILE_COST_S`` before any). A compiled module is kept
   only if its measured step is faster; inductor caches compiled graphs on disk by graph, so another
   worker or run compiling the same architecture pays less.

The decisions, with the figures they rest on, are in ``module.hot_report`` (:class:`HotReport`).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

FASTER_FUSED = ("kan_bspline", "kan_rational")
"""Blocks whose fused implementation beat the eager block at every size measured on a CPU (widths 2-128,
batches 64-1024): B-spline 1.4-2.9x, the rational 2.9-4.2x."""
MOE_MAX_WORK = 2048 * 64
"""``moe_topk`` is grouped (no loop over experts) while its routed rows per expert x width stay under
this: grouping saves the loop's per-expert overhead (1.1-2.0x on a CPU at up to 1,280 routed rows per
expert), and its packing costs more than that saves from about 2,560 rows per expert at width 64
(0.77-0.95x), where the loop's few large matmuls run at full rate."""
FUSED_FROM_WORK = ("kan_rbf", "kan_chebyshev", "kan_fourier", "kan_selectable")
"""Dense bases: their fused kernel is one GEMM over the basis values like the eager block, and wins by
building the values cheaply in cache (Fourier by angle addition), which repays its fixed cost of a few
tens of microseconds only on enough rows x inputs x bases (``DENSE_MIN_WORK`` per kernel call). Measured
on a 2-core AVX2 CPU, forward + backward (``benchmarks/kernels.py --sections dense-sizes``): 1.2-1.5x
faster at batch 600 from width 16 (Chebyshev of degree 2: 0.94-1.03x), 0.85-1.0x at width 4 or batch 64."""
DENSE_MIN_WORK = 32768
COMPILE_GAIN = 0.2  # share of a step's time compilation is assumed to save before it is measured
COMPILE_COST_S = 20.0  # compile time assumed before one is measured here (5-40 s per architecture on a CPU)
_measured_compile_s: list[float] = []


@dataclass
class HotReport:
    """What :func:`make_hot` did and why, in milliseconds per step."""

    fused: list[str] = field(default_factory=list)
    eager_ms: float | None = None
    fused_ms: float | None = None
    kept_fused: bool = False
    compiled: bool = False
    compile_s: float | None = None
    compiled_ms: float | None = None
    reason: str = ""

    def summary(self) -> str:
        """One line for a run's ``hot`` column."""
        parts = []
        if self.fused:
            verdict = "kept" if self.kept_fused else "dropped"
            parts.append(f"fused {len(self.fused)} {verdict} ({self.eager_ms:.3g} -> {self.fused_ms:.3g} ms)")
        else:
            parts.append("nothing to fuse")
        parts.append(f"compiled ({self.compiled_ms:.3g} ms, {self.compile_s:.1f} s)" if self.compiled
                     else f"not compiled: {self.reason}")
        return "; ".join(parts)


def fused_classes(device: torch.device, blocks: Collection[str] | None = None,
                  present: Collection[Any] | None = None) -> dict[Any, tuple[str, Any]]:
    """Eager class -> (block name, fused class) for everything with a fused implementation that runs on
    ``device`` (of the blocks named in ``blocks``, if given; the rational activations go with
    ``kan_rational``). With ``present`` (the classes of a network), only those are looked at, so a network
    with nothing to fuse never builds the CPU kernels."""
    from archsearch.blocks import BLOCKS
    from archsearch.kernels.rational import FUSED_RATIONAL

    def wanted(name: str, eager: Collection[Any]) -> bool:
        return (blocks is None or name in blocks) and (present is None or any(c in present for c in eager))

    mapping: dict[Any, tuple[str, Any]] = {}
    for name in BLOCKS.names():
        impl = BLOCKS.implementations(name).get("fused")
        if impl is None or not wanted(name, [BLOCKS.get(name)]) or BLOCKS.unavailable_reason(name, "fused", device.type):
            continue
        mapping[BLOCKS.get(name)] = (name, impl.load())
    if wanted("kan_rational", list(FUSED_RATIONAL)) and BLOCKS.unavailable_reason("kan_rational", "fused",
                                                                                   device.type) is None:
        mapping.update({eager: ("kan_rational", fused) for eager, fused in FUSED_RATIONAL.items()})
    return mapping


def fusion_pays(name: str, module: nn.Module, rows: int) -> bool:
    """The rule ``training.hot`` fuses by (no timing): ``FASTER_FUSED`` always, ``FUSED_FROM_WORK`` on
    ``rows`` (what the layer sees of a batch: tokens count) x inputs x bases per kernel call of at least
    ``DENSE_MIN_WORK`` (S-KAN makes a call per basis family), ``moe_topk`` under ``MOE_MAX_WORK``."""
    if name in FASTER_FUSED:
        return True
    if name == "moe_topk":
        experts = len(getattr(module, "experts", ())) or 1
        width = int(getattr(getattr(module, "router", None), "in_features", 0))
        return rows * int(getattr(module, "k", 1)) / experts * width < MOE_MAX_WORK
    if name in FUSED_FROM_WORK:
        calls = len(getattr(module, "families", ())) or 1
        return rows * getattr(module, "dim", 0) * getattr(module, "n_basis", 0) >= DENSE_MIN_WORK * calls
    return False


def fuse(module: nn.Module, device: torch.device | None = None, blocks: Collection[str] | None = None,
         example: torch.Tensor | None = None) -> list[str]:
    """Switch, in place, every submodule with a fused implementation (of ``blocks``, if given; with an
    ``example`` batch, only where :func:`fusion_pays`) to it; returns their names."""
    plan = fusion_plan(module, device, blocks, example)
    _switch(plan)
    return list(plan)


def _switch(plan: dict[str, tuple[nn.Module, type]]) -> None:
    """Give each submodule of ``plan`` its class (a fused one, or back its eager one)."""
    for sub, cls in plan.values():
        sub.__class__ = cls


def fusion_plan(module: nn.Module, device: torch.device | None = None, blocks: Collection[str] | None = None,
                example: torch.Tensor | None = None) -> dict[str, tuple[nn.Module, type]]:
    """What :func:`fuse` would switch: submodule name -> (submodule, fused class). With ``example``, one
    forward pass on it (eval mode, no gradient, nothing kept) tells the rows each candidate sees, which
    the rule weighs: tokens multiply a batch's rows, an MoE expert sees only the rows routed to it."""
    if device is None:
        device = next(module.parameters(), torch.empty(0)).device
    mapping = fused_classes(device, blocks, present={type(sub) for sub in module.modules()})
    candidates = {name or type(sub).__name__: (sub, mapping[type(sub)]) for name, sub in module.named_modules()
                  if type(sub) in mapping}
    if example is None or not candidates:
        return {name: (sub, fused) for name, (sub, (_, fused)) in candidates.items()}
    rows = rows_seen(module, example, [sub for sub, _ in candidates.values()])
    return {name: (sub, fused) for name, (sub, (block, fused)) in candidates.items()
            if fusion_pays(block, sub, rows.get(id(sub), 0))}


def rows_seen(module: nn.Module, example: torch.Tensor, subs: list[nn.Module]) -> dict[int, int]:
    """id(submodule) -> rows of its first input in one forward pass of ``module`` on ``example``."""
    rows: dict[int, int] = {}

    def record(sub: nn.Module, inputs: tuple[Any, ...]) -> None:
        first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        if first is not None:
            rows[id(sub)] = rows.get(id(sub), 0) + (first.shape[:-1].numel() if first.dim() > 1 else 1)

    hooks = [sub.register_forward_pre_hook(record) for sub in subs]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            module(example)
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    return rows


def step_ms(module: nn.Module, example: torch.Tensor, training: bool, repeats: int = 5) -> float:
    """Median milliseconds of one forward (+ backward when ``training``) on ``example``.

    The RNG and the buffers (BatchNorm statistics) are left as they were, so timing changes no result.
    """
    from archsearch.devices import synchronize

    samples = []
    buffers = [(b, b.detach().clone()) for b in module.buffers()]
    was_training = module.training
    module.train(training)
    with torch.random.fork_rng(devices=[]):
        for i in range(repeats + 1):  # the first call warms up (and compiles, for a compiled module)
            synchronize(example.device)
            start = time.perf_counter()
            if training:
                out = module(example)
                torch.autograd.grad(out.float().square().mean(), [p for p in module.parameters() if p.requires_grad],
                                    allow_unused=True)
            else:
                with torch.no_grad():
                    module(example)
            synchronize(example.device)
            if i:
                samples.append((time.perf_counter() - start) * 1e3)
    with torch.no_grad():
        for buffer, saved in buffers:
            buffer.copy_(saved)
    module.train(was_training)
    return statistics.median(samples)


def make_hot(module: nn.Module, example_input: torch.Tensor, *, training: bool = True,
             expected_calls: int | None = None, compile: str = "auto", inplace: bool = False,
             repeats: int = 5, by_timing: bool = True) -> nn.Module:
    """The fastest module computing the same function as ``module`` (see the module docstring).

    Args:
        example_input: a batch like those the module will see (its timing decides).
        training: time forward + backward (training) or forward alone (inference).
        expected_calls: steps the module still has ahead; ``compile="auto"`` needs it to weigh a compile.
        compile: ``"auto"``, ``"never"`` or ``"always"`` (tried, kept only if faster).
        inplace: switch ``module``'s own blocks (its parameters stay the same objects) instead of a copy.
        by_timing: keep the fused blocks only if the measured step is faster; ``False`` fuses where
            :func:`fusion_pays` (timed all the same, for the report), so the choice, and with it the
            floating-point result of training, does not depend on the machine's load.
    """
    if compile not in ("auto", "never", "always"):
        raise ValueError(f"compile must be auto, never or always, got {compile!r}")
    target = module if inplace else copy.deepcopy(module)
    report = HotReport()
    device = example_input.device
    plan = fusion_plan(target, device, example=None if by_timing else example_input)
    if compile == "never" and not plan:
        report.reason = "compile=never"  # nothing to decide: no step is timed
        target.hot_report = report  # type: ignore[assignment]
        return target
    eager: dict[str, tuple[nn.Module, type]] = {name: (sub, type(sub)) for name, (sub, _) in plan.items()}
    report.eager_ms = step_ms(target, example_input, training, repeats)
    _switch(plan)
    report.fused = list(plan)
    best_ms = report.eager_ms
    if report.fused:
        report.fused_ms = step_ms(target, example_input, training, repeats)
        report.kept_fused = report.fused_ms < report.eager_ms or not by_timing
        if report.kept_fused:
            best_ms = report.fused_ms
        else:
            _switch(eager)
    hot: nn.Module = target
    decision, report.reason = _compile_decision(compile, expected_calls, best_ms)
    if decision:
        compiled, report.compile_s, report.compiled_ms = _compiled(target, example_input, training, repeats)
        if report.compiled_ms < best_ms:
            hot, report.compiled = compiled, True
        else:
            report.reason = f"compiled step {report.compiled_ms:.3g} ms is not faster than {best_ms:.3g} ms"
    hot.hot_report = report  # type: ignore[assignment]
    return hot


def _compile_decision(policy: str, expected_calls: int | None, step: float) -> tuple[bool, str]:
    if policy == "never":
        return False, "compile=never"
    if policy == "always":
        return True, ""
    if expected_calls is None:
        return False, "no expected_calls to weigh a compile against"
    cost = _measured_compile_s[-1] if _measured_compile_s else COMPILE_COST_S
    saving = expected_calls * step / 1e3 * COMPILE_GAIN
    if saving <= cost:
        return False, f"expected saving {saving:.2g} s < compile cost {cost:.2g} s"
    return True, ""


def _compiled(module: nn.Module, example: torch.Tensor, training: bool,
              repeats: int) -> tuple[nn.Module, float, float]:
    compiled: Callable[..., Any] = torch.compile(module)
    start = time.perf_counter()
    step_ms(compiled, example, training, repeats=1)  # type: ignore[arg-type]  # the first call compiles
    compile_s = time.perf_counter() - start
    _measured_compile_s.append(compile_s)
    return compiled, compile_s, step_ms(compiled, example, training, repeats)  # type: ignore[return-value,arg-type]
