"""The GPU table of issue 14: fused kernels, grouped MoE, stacked candidates and hot training on CUDA.

``benchmarks/kernels.py`` is the CPU edition (thread CPU time, one thread); this one times the same
comparisons on a GPU, where a borrowed device gives a few minutes, so it is one pass that never stops
as a whole: a section (or one of its tables) that fails prints ``section X failed: ...`` and the next
one runs. Ceilings come first (matmul TFLOP/s in fp32, TF32 and bf16; device-to-device copy GB/s), so
that every comparison can say what share of the fp32 matmul rate it reaches. Comparisons run eager (no
CUDA graphs, no compile) in plain fp32 (TF32 off), round-robin over their contestants, each call timed
by a pair of CUDA events, median over rounds; warm-up calls (Triton compiles on the first) are untimed.

Sections (``--sections``, default all): ``ceilings``, ``kan``, ``bases``, ``moe``, ``stack``, ``train``.

    PYTHONPATH=. python benchmarks/kernels_gpu.py [--rounds 20] [--sections kan,moe]
    PYTHONPATH=. python benchmarks/kernels_gpu.py --device cpu --quick   # smoke test, tiny sizes
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from kernels import count, forward, matched_mlp, saved_mb, stacking_contest, train_step  # noqa: E402  (benchmarks/kernels.py, the CPU edition)

from archsearch.blocks import create_block  # noqa: E402
from archsearch.evaluation.measure import count_flops  # noqa: E402

SECTIONS = ("ceilings", "kan", "bases", "moe", "stack", "train")
START = time.perf_counter()
RATES: dict[str, float] = {}  # measured ceilings: "fp32" matmul TFLOP/s (TF32 off), ...


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def say(text: str = "") -> None:
    print(text, flush=True)


class Clock:
    """Milliseconds of one call: a pair of CUDA events around it on a GPU (``events``), else
    ``perf_counter`` (synchronized on a GPU, so that it covers the queued work)."""

    def __init__(self, device: torch.device, events: bool = True) -> None:
        self.device, self.events = device, events and device.type == "cuda"

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, call: Callable[[], object]) -> float:
        if self.events:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))
        self.sync()
        begin = time.perf_counter()
        call()
        self.sync()
        return (time.perf_counter() - begin) * 1e3


def interleaved(calls: dict[str, Callable[[], object]], rounds: int, clock: Clock,
                warmup: int = 3) -> dict[str, float]:
    """Median ms per call over ``rounds``, timed round-robin after ``warmup`` untimed calls of each."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    clock.sync()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times[name].append(clock(call))
    return {name: statistics.median(t) for name, t in times.items()}


def peak_mb(step: Callable[[], object], device: torch.device) -> float | None:
    """Allocator peak of one call above what was allocated before it (``None`` off CUDA)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --- ceilings ---------------------------------------------------------------------------------------


def ceilings_section(device: torch.device, quick: bool) -> None:
    n = 256 if quick else (8192 if device.type == "cuda" else 512)
    copy_bytes = 16 * 2**20 if quick else (2 * 2**30 if device.type == "cuda" else 64 * 2**20)
    repeats = 2 if quick else 10
    clock = Clock(device)

    def median_ms(call: Callable[[], object]) -> float:
        for _ in range(3):
            call()
        clock.sync()
        return statistics.median(clock(call) for _ in range(repeats))

    say(f"\n#### Ceilings: torch.matmul of two {n} x {n} matrices, device-to-device copy of "
        f"{copy_bytes / 2**30:.3g} GiB (median of {repeats} after 3 warm-ups)\n")
    say("| operation | ms | rate |")
    say("|---|---:|---:|")
    def matmul_ms(dtype: torch.dtype) -> float:
        a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
        c = torch.empty(n, n, device=device, dtype=dtype)
        return median_ms(lambda: torch.matmul(a, b, out=c))

    def copy_ms() -> float:
        src = torch.empty(copy_bytes // 4, device=device).normal_()
        dst = torch.empty_like(src)
        return median_ms(lambda: dst.copy_(src))

    tf32 = torch.backends.cuda.matmul.allow_tf32
    for key, label, dtype, allow in [("fp32", "matmul float32, TF32 off", torch.float32, False),
                                     ("tf32", "matmul float32, TF32 on", torch.float32, True),
                                     ("bf16", "matmul bfloat16", torch.bfloat16, False)]:
        try:
            torch.backends.cuda.matmul.allow_tf32 = allow
            ms = matmul_ms(dtype)
            RATES[key] = 2 * n**3 / (ms / 1e3) / 1e12
            say(f"| {label} | {ms:.3f} | {RATES[key]:.2f} TFLOP/s |")
        except Exception as exc:
            say(f"section ceilings ({label}) failed: {one_line(exc)}")
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            release(device)
    try:
        ms = copy_ms()
        RATES["copy"] = 2 * copy_bytes / (ms / 1e3) / 1e9
        say(f"| copy (bytes read + written) | {ms:.3f} | {RATES['copy']:.0f} GB/s |")
    except Exception as exc:
        say(f"section ceilings (copy) failed: {one_line(exc)}")
    release(device)


# --- block comparisons ------------------------------------------------------------------------------


def build_pair(name: str, dim: int, device: torch.device, mlp_activation: str = "silu",
               **params: Any) -> dict[str, torch.nn.Module]:
    """The eager block, its fused variant for ``device`` (eager's weights) and a matched MLP, on ``device``."""
    torch.manual_seed(0)
    eager = create_block(name, dim, **params)
    fused = create_block(name, dim, variant="fused", device=device.type, **params)
    fused.load_state_dict(eager.state_dict())
    mlp = matched_mlp(count(eager), dim, mlp_activation)
    return {"mlp": mlp.to(device), "eager": eager.to(device), "fused": fused.to(device)}


def fused_note(modules: dict[str, torch.nn.Module], x: torch.Tensor) -> str:
    """Which classes ran, whether a fused kernel computes the call, and how far fused is from eager."""
    eager: Any = modules["eager"]
    fused: Any = modules["fused"]
    parts = [f"eager = {type(eager).__name__}, fused = {type(fused).__name__}"]
    if type(fused) is type(eager):
        parts.append(f"no fused implementation for {x.device.type} here: fused is the eager block")
    elif hasattr(fused, "basis_parameters") and hasattr(fused, "family"):
        try:
            from archsearch.kernels.basis import runs_fused

            _, order = fused.basis_parameters()
            parts.append("the fused kernel computes this call" if runs_fused(x, fused.family, order) else
                         "no fused kernel for this call: its forward falls back to eager")
        except Exception as exc:
            parts.append(f"could not tell whether the kernel runs ({one_line(exc)})")
    try:
        with torch.no_grad():
            gap = (fused(x) - eager(x)).abs().max().item()
        parts.append(f"max |fused - eager| = {gap:.2e}")
    except Exception as exc:
        parts.append(f"fused vs eager check failed: {one_line(exc)}")
    return "; ".join(parts)


def compare_blocks(title: str, modules: dict[str, torch.nn.Module], x: torch.Tensor, rounds: int,
                   baseline: str = "mlp") -> None:
    """Forward (no_grad) and forward + backward of each module, against ``baseline`` and against eager."""
    device = x.device
    clock = Clock(device)
    xg = x.clone().requires_grad_()
    note = fused_note(modules, x) if "fused" in modules and "eager" in modules else ""

    # Forward FLOPs: the evaluator's counter (torch's FlopCounterMode on one example) times the batch. It
    # counts aten ops only, so a Triton or C++ kernel is invisible to it: fused takes eager's count.
    flops = {k: count_flops(m, x) * x.shape[0] for k, m in modules.items() if k != "fused"}
    if "fused" in modules:
        flops["fused"] = flops["eager"]
    calls: dict[str, Callable[[], object]] = {f"{k}|fwd": forward(m, x) for k, m in modules.items()}
    calls.update({f"{k}|train": train_step(m, xg) for k, m in modules.items()})
    t = interleaved(calls, rounds, clock)
    peaks = {k: peak_mb(train_step(m, xg), device) for k, m in modules.items()}
    saved = {k: saved_mb(m, xg) for k, m in modules.items()}

    say(f"\n#### {title}\n")
    if note:
        say(f"{note}\n")
    say("| module | params | fwd ms | fwd / mlp | fwd+bwd ms | fwd+bwd / mlp | fwd+bwd / eager | peak MB "
        "| saved MB | fwd+bwd TFLOP/s | % of fp32 matmul |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, m in modules.items():
        f, tr = t[f"{k}|fwd"], t[f"{k}|train"]
        vs_eager = f"{tr / t['eager|train']:.2f}" if "eager" in modules and k != baseline else "-"
        peak = "-" if peaks[k] is None else f"{peaks[k]:.1f}"
        rate = 3 * flops[k] / (tr / 1e3) / 1e12
        share = f"{100 * rate / RATES['fp32']:.1f}" if "fp32" in RATES else "-"
        say(f"| {k} | {count(m):,} | {f:.3f} | {f / t[f'{baseline}|fwd']:.2f} | {tr:.3f} "
            f"| {tr / t[f'{baseline}|train']:.2f} | {vs_eager} | {peak} | {saved[k]:.1f} | {rate:.3f} | {share} |")


def guarded(section: str, what: str, run: Callable[[], None], device: torch.device) -> None:
    """Run one table; a failure prints one line and the section goes on."""
    try:
        run()
    except Exception as exc:
        say(f"section {section} ({what}) failed: {one_line(exc)}")
    finally:
        release(device)


def kan_section(device: torch.device, rounds: int, quick: bool) -> None:
    sizes = [(64, 16)] if quick else [(1024, 64), (256, 32), (1024, 128)]
    if device.type == "cuda" and not quick:
        sizes += [(65536, 64), (16384, 256)]
    for batch, dim in sizes:
        def run(batch: int = batch, dim: int = dim) -> None:
            modules = build_pair("kan_bspline", dim, device, grid_size=5, spline_order=3)
            compare_blocks(f"kan_bspline, batch {batch}, {dim} -> {dim}, grid 5, order 3", modules,
                           torch.randn(batch, 1, dim, device=device), rounds)
        guarded("kan", f"batch {batch}, dim {dim}", run, device)


def bases_section(device: torch.device, rounds: int, quick: bool) -> None:
    sizes = [(64, 16)] if quick else ([(1024, 64), (65536, 64)] if device.type == "cuda" else [(1024, 64)])
    for name, params in [("kan_rbf", {"grid_size": 8}), ("kan_chebyshev", {"degree": 4}),
                         ("kan_fourier", {"frequencies": 4}), ("kan_rational", {"expansion": 2, "groups": 4})]:
        setting = ", ".join(f"{k} {v}" for k, v in params.items())
        for batch, dim in sizes:
            def run(name: str = name, params: dict[str, Any] = params, setting: str = setting, batch: int = batch,
                    dim: int = dim) -> None:
                modules = build_pair(name, dim, device, **params)
                compare_blocks(f"{name} ({setting}), batch {batch}, {dim} -> {dim}", modules,
                               torch.randn(batch, 1, dim, device=device), rounds)
            guarded("bases", f"{name}, batch {batch}, dim {dim}", run, device)


def moe_section(device: torch.device, rounds: int, quick: bool) -> None:
    shapes = [(4, 16, 16)] if quick else [(32, 16, 64)]
    if device.type == "cuda" and not quick:
        shapes.append((1024, 64, 256))
    for batch, tokens, dim in shapes:
        for experts, expansion in [(4, 1.0), (16, 0.25)]:
            def run(batch: int = batch, tokens: int = tokens, dim: int = dim, experts: int = experts,
                    expansion: float = expansion) -> None:
                options = {"experts": experts, "k": 2, "expert": "mlp", "expansion": expansion, "activation": "gelu"}
                modules = build_pair("moe_topk", dim, device, mlp_activation="gelu", **options)
                compare_blocks(f"moe_topk ({experts} experts of expansion {expansion}, top-2), {batch} x {tokens} "
                               f"tokens, width {dim}; mlp: dense, same total parameters, GELU as the experts",
                               modules, torch.randn(batch, tokens, dim, device=device), rounds)
            guarded("moe", f"{experts} experts, {batch} x {tokens} tokens, width {dim}", run, device)


# --- stacked candidates -----------------------------------------------------------------------------


def stack_section(device: torch.device, rounds: int, quick: bool) -> None:
    n_models, steps, n = (4, 5, 256) if quick else (16, 40, 1024)
    calls, params = stacking_contest(n_models, steps, n, device)
    t = interleaved(calls, rounds, Clock(device, events=False), warmup=1)
    base = t["one after another"]
    say(f"\n#### {n_models} MLP candidates ({params:,} parameters each) on {device.type}, {steps} Adam "
        f"steps of batch 64, a learning rate each; wall time of the whole training (synchronized), median of "
        f"{rounds}\n")
    say("| training | wall ms | candidate-steps / s | throughput vs one after another |")
    say("|---|---:|---:|---:|")
    for name, ms in t.items():
        say(f"| {name} | {ms:.0f} | {n_models * steps / (ms / 1e3):,.0f} | {base / ms:.2f} |")


# --- whole evaluations ------------------------------------------------------------------------------


def train_section(device: torch.device, quick: bool) -> None:
    from archsearch.evaluation.training import TaskRef, TrainingEvaluator, TrainingRecipe
    from archsearch.genome import BlockSpec, Genome

    epochs = 1 if quick else 3
    genome = Genome.sequential([BlockSpec("kan_bspline", {}, "silu", residual=True)] * 2, {"width": 64})
    say(f"\n#### One whole evaluation (TrainingEvaluator, task digits, epochs={epochs}, two residual kan_bspline "
        "blocks of width 64, SiLU): each setting evaluated twice, the first call paying one-time costs "
        "(CUDA context, Triton compiles)\n")
    say("| device | hot | call | status | wall s | train_time_s | val_accuracy | latency (ms) | info device "
        "| device_kind | info hot |")
    say("|---|---|---:|---|---:|---:|---:|---|---|---|---|")
    # On a GPU machine the CPU row is the eager baseline only: hot on the CPU would build the C++ kernels
    # there first (tens of seconds of g++, no part of the GPU's figures).
    settings = ([("cuda", False), ("cuda", True), ("cpu", False)] if device.type == "cuda"
                else [("cpu", False), ("cpu", True)])
    for kind, hot in settings:
        try:
            evaluator = TrainingEvaluator(TaskRef("digits"), TrainingRecipe(epochs=epochs, device=kind, hot=hot))
            evaluator.warm_up()
            for call in (1, 2):
                begin = time.perf_counter()
                result = evaluator.evaluate(genome)
                wall = time.perf_counter() - begin
                m, info = result.metrics, result.info
                latency = ", ".join(f"{k} {v:.3g}" for k, v in m.items() if k.startswith("latency"))
                status = result.status if result.error is None else f"{result.status}: {result.error[:120]}"
                say(f"| {kind} | {hot} | {call} | {status} | {wall:.2f} | {m.get('train_time_s', float('nan')):.2f} "
                    f"| {m.get('val_accuracy', float('nan')):.4f} | {latency or '-'} | {info.get('device', '-')} "
                    f"| {info.get('device_kind', '-')} | {info.get('hot', '-')} |")
        except Exception as exc:
            say(f"section train ({kind}, hot {hot}) failed: {one_line(exc)}")
        finally:
            release(device)


# --- main -------------------------------------------------------------------------------------------


def header(device: torch.device, rounds: int) -> str:
    try:
        import triton

        triton_version = f"triton {triton.__version__}"
    except Exception:
        triton_version = "triton not importable"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        where = (f"{torch.cuda.get_device_name(device)} ({props.total_memory / 2**30:.0f} GiB, CUDA "
                 f"{torch.version.cuda})")
        timing = "each call timed by a pair of CUDA events"
    else:
        where = f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
        timing = "each call timed by perf_counter"
    return (f"torch {torch.__version__}, {where}, {triton_version}, Python {platform.python_version()}; "
            f"all comparisons in plain fp32 (torch.backends.cuda.matmul.allow_tf32 = "
            f"torch.backends.cudnn.allow_tf32 = False), eager calls (no CUDA graphs, no compile), "
            f"median of {rounds} interleaved rounds after 3 untimed warm-ups, {timing}.\n\n"
            "In the block tables: peak MB is the allocator's peak of one training step above what was allocated "
            "before it (CUDA only); saved MB what autograd keeps for the backward pass. fwd+bwd TFLOP/s counts "
            "3 x the forward FLOPs, forward FLOPs from archsearch.evaluation.measure.count_flops (torch's "
            "FlopCounterMode: matmuls, not elementwise ops such as a basis evaluation) on one example x batch; "
            "fused takes the eager module's count (the same function; the counter does not see Triton or C++ "
            "kernels); % of fp32 matmul: of the float32 (TF32 off) matmul rate of the ceilings section.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 2 rounds: a smoke test")
    parser.add_argument("--deadline-s", type=float, default=225.0,
                        help="skip the sections not yet started this many seconds after the start (0: never)")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    rounds = 2 if args.quick else args.rounds
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    torch.backends.cuda.matmul.allow_tf32 = False  # eager and fused both in plain fp32
    torch.backends.cudnn.allow_tf32 = False
    try:
        say(header(device, rounds))
    except Exception as exc:
        say(f"header failed: {one_line(exc)}")
    runs: dict[str, Callable[[], None]] = {
        "ceilings": lambda: ceilings_section(device, args.quick),
        "kan": lambda: kan_section(device, rounds, args.quick),
        "bases": lambda: bases_section(device, rounds, args.quick),
        "moe": lambda: moe_section(device, rounds, args.quick),
        "stack": lambda: stack_section(device, 2 if args.quick else 3, args.quick),
        "train": lambda: train_section(device, args.quick),
    }
    for name in SECTIONS:
        if name not in sections:
            continue
        elapsed = time.perf_counter() - START
        if args.deadline_s and elapsed > args.deadline_s:
            say(f"\nsection {name} skipped: {elapsed:.0f} s elapsed, past --deadline-s {args.deadline_s:.0f}")
            continue
        begin = time.perf_counter()
        try:
            runs[name]()
        except Exception as exc:
            say(f"section {name} failed: {one_line(exc)}")
        finally:
            release(device)
        say(f"\n(section {name}: {time.perf_counter() - begin:.1f} s; {time.perf_counter() - START:.0f} s since start)")


if __name__ == "__main__":
    main()
