"""make_hot: the same function, fused where it is faster, compiled only where the policy says so."""

import pytest
import torch

from archsearch.builder import build_model
from archsearch.genome import BlockSpec, Genome
from archsearch.kernels import make_hot
from archsearch.kernels.cpu import unavailable_reason
from archsearch.kernels.hot import _compile_decision, fuse
from archsearch.tasks import DataSpec

GENOME = Genome.sequential([
    BlockSpec("kan_bspline", {}, "silu", residual=True, norm_placement="pre"),
    BlockSpec("kan_rational", {}, "identity", residual=True),
    BlockSpec("moe_topk", {"experts": 3, "k": 2}, "gelu", residual=True),
    BlockSpec("mlp", {}, "pau"),
], {"width": 16})
DATA = DataSpec("vector", n_features=8, n_outputs=3)


def model():
    torch.manual_seed(0)
    return build_model(GENOME, DATA)


def test_hot_module_computes_the_same_function_and_changes_no_weight_or_rng():
    eager, x = model(), torch.randn(32, 8)
    state = {k: v.clone() for k, v in eager.state_dict().items()}
    hot = make_hot(eager, x, compile="never")
    report = hot.hot_report
    assert report.eager_ms > 0 and not report.compiled and report.reason == "compile=never"
    names = set(report.fused)
    assert "blocks.b2.block" in names  # moe_topk's grouped matmuls need no compiler
    if unavailable_reason() is None:
        assert {"blocks.b0.block", "blocks.b1.block.rational1", "blocks.b3.block.act"} <= names
    torch.manual_seed(5)
    expected = eager(x)
    torch.manual_seed(5)
    torch.testing.assert_close(hot(x), expected, atol=1e-5, rtol=1e-4)
    assert all(torch.equal(state[k], v) for k, v in eager.state_dict().items())  # the eager model is untouched
    assert hot.state_dict().keys() == eager.state_dict().keys()


def test_fusing_in_place_keeps_the_parameters_an_optimizer_holds():
    m = model()
    params = list(m.parameters())
    swapped = fuse(m, torch.device("cpu"))
    assert swapped and list(m.parameters()) == params


@pytest.mark.parametrize("policy, calls, step_ms, expected", [
    ("never", 10**9, 10.0, False), ("always", None, 1.0, True), ("auto", None, 10.0, False),
    ("auto", 100, 10.0, False), ("auto", 10**6, 10.0, True)])
def test_compile_only_where_the_expected_saving_exceeds_the_cost(policy, calls, step_ms, expected):
    assert _compile_decision(policy, calls, step_ms)[0] is expected


def test_bad_compile_policy_is_refused():
    with pytest.raises(ValueError, match="compile must be"):
        make_hot(model(), torch.randn(2, 8), compile="sometimes")


def untimed_fusion(genome: Genome, rows: int) -> list[str]:
    """What ``training.hot``'s rule fuses in ``genome``'s network for a batch of ``rows``."""
    torch.manual_seed(0)
    return make_hot(build_model(genome, DATA), torch.randn(rows, 8), compile="never", by_timing=False).hot_report.fused


needs_kernels = pytest.mark.skipif(unavailable_reason() is not None, reason="the CPU extension is not built here")


@needs_kernels
def test_without_timing_only_the_blocks_whose_kernels_are_faster_are_fused():
    genome = Genome.sequential([BlockSpec("kan_rbf", {}, "identity"), BlockSpec("kan_bspline", {}, "identity"),
                                BlockSpec("kan_chebyshev", {}, "identity")], {"width": 8})
    assert untimed_fusion(genome, 16) == ["blocks.b1.block"]  # RBF and Chebyshev: too little work to repay
    timed = make_hot(build_model(genome, DATA), torch.randn(16, 8), compile="never")
    assert len(timed.hot_report.fused) == 3  # timed, every fused block is tried


@needs_kernels
def test_without_timing_dense_bases_are_fused_where_the_work_repays_the_kernels_fixed_cost():
    from archsearch.kernels.hot import DENSE_MIN_WORK

    genome = Genome.sequential([BlockSpec("kan_fourier", {"frequencies": 4}, "identity"),
                                BlockSpec("kan_selectable", {"basis": 4, "families": "bspline+rbf"}, "identity")],
                               {"width": 32})
    per_row = 32 * 8  # inputs x bases of the Fourier layer
    per_call = 32 * (7 + 4) / 2  # S-KAN: a kernel call per family, (4 + 3) B-splines and 4 RBF bases
    for rows, expected in [(DENSE_MIN_WORK // per_row, ["blocks.b0.block"]),
                           (DENSE_MIN_WORK // per_row - 1, []),
                           (int(DENSE_MIN_WORK // per_call) + 1, ["blocks.b0.block", "blocks.b1.block"])]:
        assert untimed_fusion(genome, rows) == expected, rows


@pytest.mark.parametrize("overrides, needed", [
    (["space=kan"], True),
    (["space=kan", "training.hot=false"], False),
    (["space=mlp"], False),
    (["space=hybrid"], True),
    (["space=mlp", "space.activation=[relu,pau]"], True),  # PAU runs on the rational kernel
])
def test_a_run_warms_the_kernels_only_where_its_space_lists_a_block_that_has_them(overrides, needed, tmp_path):
    from archsearch._plan import needs_cpu_kernels, plan_run

    plan = plan_run([*overrides, "budget=1", "executor=inline", f"run_dir={tmp_path / 'run'}"])
    assert needs_cpu_kernels(plan.space, plan.evaluator) is needed


def test_a_run_announces_the_kernel_build_before_its_first_trial_and_an_mlp_run_never_builds(tmp_path):
    """With no compiler: the KAN run says it is building, then why it cannot, once each, and trains eager;
    the MLP run has nothing that needs the kernels and says nothing of them."""
    import os
    import subprocess
    import sys

    code = """
import logging, sys
logging.basicConfig(format="%(message)s")
import archsearch
space, task = sys.argv[1:3]
run = archsearch.search(space=space, task=task, budget=1, seed=0, executor="inline", quiet=True,
                        run_dir=sys.argv[3], overrides=["training.epochs=1"])
print(run.trials["status"].to_pylist())
"""
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "ARCHSEARCH_KERNEL_CACHE": str(tmp_path / "cache")}
    for space, task, expected in [("mlp", "digits", 0), ("kan", "kan_toy", 1)]:
        done = subprocess.run([sys.executable, "-c", code, space, task, str(tmp_path / space)], capture_output=True,
                              text=True, env=env, check=True, timeout=300)
        assert done.stdout.split() == ["['complete']"], done.stderr
        assert done.stderr.count("building the fused CPU kernels") == expected, done.stderr
        assert done.stderr.count("fused CPU kernels unavailable") == expected, done.stderr


def test_without_timing_the_moe_is_grouped_while_its_experts_see_few_rows():
    from archsearch.kernels.hot import MOE_MAX_WORK

    genome = Genome.sequential([BlockSpec("moe_topk", {"experts": 2, "k": 2}, "gelu")], {"width": 64})
    limit = MOE_MAX_WORK // 64  # rows per expert at width 64; top-2 of 2 experts: every row goes to both
    for rows, fused in [(limit - 1, ["blocks.b0.block"]), (limit, [])]:
        assert untimed_fusion(genome, rows) == fused, rows


@needs_kernels
def test_without_timing_the_rule_weighs_the_rows_a_layer_sees_tokens_included():
    """One token per feature: a layer sees batch x features rows, which the rule counts."""
    from archsearch.kernels.hot import DENSE_MIN_WORK

    genome = Genome.sequential([BlockSpec("kan_fourier", {"frequencies": 4}, "identity")],
                               {"width": 16, "tokenize": "features"})
    batch = DENSE_MIN_WORK // (16 * 8 * DATA.n_features)  # width x bases x tokens per example
    for rows, fused in [(batch, ["blocks.b0.block"]), (batch - 1, [])]:
        assert untimed_fusion(genome, rows) == fused, rows
