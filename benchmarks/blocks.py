"""Forward+backward time of every block relative to ``mlp`` at (about) the same parameter count.

Each block gets the setting of its size knob whose closed-form parameter count
(``archsearch.blocks.block_param_count``) is closest to the baseline MLP's. Blocks without such a knob
(attention, token mixing) run at their natural size and are compared instead with an MLP of their own
parameter count (its expansion matched the same way), timed in the same rounds: the "vs" column names
the baseline of each row.
Timings are interleaved round-robin over the blocks, so drift on a shared machine hits them all
alike, on one thread. Each step records the thread's CPU time (``time.thread_time``: what the block
itself costs, unaffected by other processes taking the core) and the wall-clock time (which on a
loaded machine includes preemption); the table gives the median of each over the rounds.

    python benchmarks/blocks.py [--dim 64] [--tokens 16] [--batch 32] [--rounds 60]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from archsearch.blocks import BLOCKS, block_param_count, create_block

# Size knob per block: (parameter name, candidate values). Blocks absent here have no knob.
KNOBS: dict[str, tuple[str, list]] = {
    "mlp": ("expansion", [4]),
    "glu": ("expansion", [round(x / 12, 3) for x in range(6, 72)]),
    "kan_bspline": ("grid_size", list(range(1, 30))),
    "kan_rbf": ("grid_size", list(range(2, 30))),
    "kan_fourier": ("frequencies", list(range(1, 15))),
    "kan_chebyshev": ("degree", list(range(1, 30))),
    "kan_rational": ("expansion", [x / 8 for x in range(2, 64)]),
    "kan_selectable": ("basis", list(range(1, 12))),
    "moe_topk": ("expansion", [x / 16 for x in range(1, 64)]),
    "moe_soft": ("expansion", [x / 16 for x in range(1, 64)]),
}
FIXED = {"moe_topk": {"experts": 4, "k": 2}, "moe_soft": {"experts": 4}, "attention": {"heads": 4},
         "linear_attention": {"heads": 4}}


def matched_params(name: str, dim: int, tokens: int, target: int) -> dict:
    """The block's parameters whose closed-form size is closest to ``target``."""
    fixed = dict(FIXED.get(name, {}))
    if name not in KNOBS:
        return fixed
    knob, values = KNOBS[name]
    options = [{**fixed, knob: v} for v in values]
    return min(options, key=lambda p: abs(block_param_count(name, dim, n_tokens=tokens, **p) - target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    target = block_param_count("mlp", args.dim, expansion=4)
    names = [n for n in BLOCKS.names() if n != "identity"]
    blocks, params, baseline = {}, {}, {}
    for name in names:
        params[name] = matched_params(name, args.dim, args.tokens, target)
        blocks[name] = create_block(name, args.dim, n_tokens=args.tokens, **params[name])
        baseline[name] = "mlp"
    for name in [n for n in names if n not in KNOBS]:  # natural size: an MLP of the same size is the baseline
        own = block_param_count(name, args.dim, n_tokens=args.tokens, **params[name])
        expansion = min((x / 64 for x in range(1, 513)),
                        key=lambda e: abs(block_param_count("mlp", args.dim, expansion=e) - own))
        twin = f"mlp@{name}"
        params[twin] = {"expansion": expansion}
        blocks[twin] = create_block("mlp", args.dim, n_tokens=args.tokens, expansion=expansion)
        baseline[name] = baseline[twin] = twin
    names = list(blocks)
    x = torch.randn(args.batch, args.tokens, args.dim, requires_grad=True)

    def step(block: torch.nn.Module) -> tuple[float, float]:
        cpu, wall = time.thread_time(), time.perf_counter()
        out = block(x)
        loss = out.square().mean()
        aux = getattr(block, "aux_loss", None)
        (loss + aux if aux is not None else loss).backward()
        elapsed = time.thread_time() - cpu, time.perf_counter() - wall
        block.zero_grad(set_to_none=True)
        x.grad = None
        return elapsed

    for block in blocks.values():
        for _ in range(args.warmup):
            step(block)
    cpu: dict[str, list[float]] = {name: [] for name in names}
    wall: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            c, w = step(blocks[name])
            cpu[name].append(c)
            wall[name].append(w)

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread; "
          f"input ({args.batch}, {args.tokens}, {args.dim}); mlp target {target:,} params; "
          f"median of {args.rounds} interleaved rounds")
    print("| block | setting | params | vs | params / vs | CPU ms | CPU / vs | wall ms | wall / vs |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for name in sorted(names, key=lambda n: statistics.median(cpu[n]) / statistics.median(cpu[baseline[n]])):
        if name.startswith("mlp@"):
            continue
        base = baseline[name]
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        count = sum(p.numel() for p in blocks[name].parameters())
        base_count = sum(p.numel() for p in blocks[base].parameters())
        setting = ", ".join(f"{k}={v}" for k, v in params[name].items()) or "-"
        vs = base if base == "mlp" else f"mlp, expansion={params[base]['expansion']:.3g}"
        print(f"| {name} | {setting} | {count:,} | {vs} | {count / base_count:.2f} | {c * 1e3:.2f} "
              f"| {c / statistics.median(cpu[base]):.2f} | {w * 1e3:.2f} | {w / statistics.median(wall[base]):.2f} |")


if __name__ == "__main__":
    main()
