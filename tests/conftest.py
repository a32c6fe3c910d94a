import os

import pytest
from hypothesis import settings

os.environ.setdefault("OMP_NUM_THREADS", "1")

# CI must give the same verdict on the same code: property tests draw the same examples on every run.
# HYPOTHESIS_PROFILE=explore draws new ones (what found a newline in an error message on 2026-12-05).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def digits():
    from archsearch.tasks import load_task

    return load_task("digits", seed=0)


@pytest.fixture(scope="session")
def import_benchmark():
    """Imports a script of ``benchmarks/`` by name (they import each other as neighbours)."""
    import importlib
    import sys
    from pathlib import Path

    folder = str(Path(__file__).resolve().parent.parent / "benchmarks")

    def load(name: str):
        sys.path.insert(0, folder)
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(folder)

    return load


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests share two cores with whatever else runs; one intra-op thread keeps timings sane."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_collection_modifyitems(config, items):
    """Tests that start Ray run one after another on one xdist worker (``--dist loadgroup``): two local
    Ray clusters at once on a 2-core machine would only slow both down."""
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))


def pytest_runtest_setup(item):
    """Tests marked ``gpu`` run where a CUDA device is present and skip, saying so, elsewhere."""
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA device; none is visible here")
