"""The block registry: torch-free metadata that matches the classes, and implementation choice."""

import inspect
import subprocess
import sys

import pytest

from archsearch.blocks import BLOCKS, Implementation, create_block
from archsearch.blocks.registry import own_params


def test_building_and_checking_a_genome_does_not_import_torch():
    code = """
import sys
import numpy as np
from archsearch.blocks import BLOCKS, block_param_count, expert_kinds
from archsearch.space import RandomChooser
from archsearch.spaces.block_graph import BlockGraphSpace
space = BlockGraphSpace(blocks=BLOCKS.names(), tokenize=["none", "features"], activation=["prelu", "gelu"])
space.check()
for seed in range(20):
    genome = space.build(RandomChooser(np.random.default_rng(seed)))
for name in BLOCKS.names():
    block_param_count(name, 8, n_tokens=3)
assert expert_kinds() and BLOCKS.info("attention").mixes_tokens
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", BLOCKS.names())
def test_declared_parameters_are_the_class_signature(name):
    cls = BLOCKS.get(name)
    if not cls.__module__.startswith("archsearch."):
        pytest.skip("test-only block")
    assert dict(BLOCKS.info(name).params) == own_params(cls)
    has_activation = "activation" in inspect.signature(cls).parameters
    assert BLOCKS.info(name).uses_activation <= has_activation


def test_a_fused_implementation_is_chosen_per_device_and_falls_back_when_unavailable():
    import torch

    class Doubled(torch.nn.Module):
        def __init__(self, dim, activation="relu"):
            super().__init__()
            self.dim = dim

        def forward(self, x):
            return 2 * x

    @BLOCKS.register("test_registry_block", "test-only: doubles", can_be_expert=False)
    class Reference(Doubled):
        pass

    BLOCKS.add_implementation("test_registry_block", Implementation("fused", Doubled, devices=("cpu",)))
    assert type(create_block("test_registry_block", 4)) is Reference
    assert type(create_block("test_registry_block", 4, variant="fused")) is Doubled
    assert type(create_block("test_registry_block", 4, variant="fused", device="cuda")) is Reference
    BLOCKS.add_implementation("test_registry_block",
                              Implementation("compiled", Doubled, available=lambda kind: "no compiler here"))
    assert BLOCKS.resolve("test_registry_block", prefer=("compiled", "eager")).variant == "eager"
    assert BLOCKS.unavailable_reason("test_registry_block", "compiled") == "no compiler here"
    with pytest.raises(ValueError, match="variant"):
        BLOCKS.add_implementation("test_registry_block", Implementation("eager", Doubled))
