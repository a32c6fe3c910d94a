"""The strategy benchmark drives strategies directly (ask, evaluate, tell); a user, and the issue's
held-aside check, go through ``archsearch.search`` with a callable space, ``evaluate=`` and ``measure=``.
The two must propose the same architectures, or the benchmark's figures say nothing about what users get."""

import pytest

import archsearch


@pytest.mark.parametrize("problem", ["zdt3", "nas_digits"])
def test_search_through_the_api_proposes_what_the_benchmark_measured(tmp_path, import_benchmark, problem):
    import_benchmark("nas_table")  # the problem imports it as a neighbour when built
    bench = import_benchmark("strategies")
    p = bench.PROBLEMS[problem]()
    direct = bench.run_archsearch(p, "model", seed=1, n=16)
    run = archsearch.search(space=p.space, evaluate=p.evaluate, measure=p.measure, objectives=p.objectives,
                            budget=16, seed=1, strategy="model", executor="inline", run_dir=tmp_path / "r",
                            quiet=True)
    assert run.trials.to_pandas()[list(p.objectives)].to_numpy().tolist() == direct
