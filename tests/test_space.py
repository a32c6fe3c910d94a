import math

import numpy as np
import pytest

from archsearch.space import CallableSpace, RandomChooser, ReplayChooser, SpaceError, architecture_id
from archsearch.spaces import BlockGraphSpace
from archsearch.testing import toy_space


def test_random_chooser_is_seeded_and_in_range():
    a, b = RandomChooser(7), RandomChooser(7)
    for i in range(200):
        assert a.suggest_int(f"i{i}", 2, 10, step=2) == b.suggest_int(f"i{i}", 2, 10, step=2)
    assert set(a.decisions.values()) <= {2, 4, 6, 8, 10}
    c = RandomChooser(np.random.default_rng(1))
    floats = [c.suggest_float(f"f{i}", 1e-4, 1e-1, log=True) for i in range(300)]
    assert all(1e-4 <= f <= 1e-1 for f in floats)
    assert np.mean([math.log10(f) < -2.5 for f in floats]) == pytest.approx(0.5, abs=0.1)  # log-uniform
    ints = [c.suggest_int(f"l{i}", 1, 1000, log=True) for i in range(300)]
    assert all(1 <= v <= 1000 for v in ints) and np.median(ints) < 100


def test_labels_must_be_unique():
    chooser = RandomChooser(0)
    chooser.suggest_int("x", 0, 3)
    with pytest.raises(SpaceError, match="asked twice"):
        chooser.suggest_int("x", 0, 3)


def test_invalid_ranges_are_refused():
    chooser = RandomChooser(0)
    with pytest.raises(SpaceError, match="above high"):
        chooser.suggest_int("x", 5, 1)
    with pytest.raises(SpaceError, match="no choices"):
        chooser.suggest_categorical("y", [])
    with pytest.raises(SpaceError, match="log scale"):
        chooser.suggest_float("z", 0.0, 1.0, log=True)


def test_replay_reproduces_the_architecture_and_is_strict():
    space = CallableSpace(toy_space)
    for seed in range(30):
        chooser = RandomChooser(seed)
        arch = space.build(chooser)
        assert architecture_id(space.replay(chooser.decisions)) == architecture_id(arch)
    with pytest.raises(SpaceError, match="no recorded value"):
        space.replay({})
    with pytest.raises(SpaceError, match="no longer allows"):
        space.replay({"depth": 99, "width": 8, "kind": "mlp", "lr": 0.01})


def test_replay_with_fallback_resamples_only_missing_decisions():
    space = CallableSpace(toy_space)
    parent = RandomChooser(3)
    arch = space.build(parent)
    partial = {k: v for k, v in parent.decisions.items() if k != "width"}
    child_chooser = ReplayChooser(partial, fallback=RandomChooser(11))
    child = space.build(child_chooser)
    assert child["depth"] == arch["depth"] and child["kind"] == arch["kind"] and child["lr"] == arch["lr"]
    assert set(child_chooser.decisions) == set(parent.decisions)
    assert child_chooser.decisions["width"] in (8, 16, 32, 64)


def test_block_space_genomes_replay_and_validate():
    space = BlockGraphSpace(name="t", depth={"low": 1, "high": 5}, width=[16, 32],
                            block_params={"mlp": {"expansion": [1, 2]}})
    space.check()
    rng = np.random.default_rng(0)
    for _ in range(50):
        genome = space.sample(rng)
        assert 1 <= len(genome.blocks()) <= 5
        assert space.replay(genome.decisions).arch_id == genome.arch_id
        for node, spec in genome.blocks():  # wiring is one decision per stage
            assert spec.residual == (genome.decisions.get(f"{node}.wiring", "sequential") == "residual")


def test_network_placement_scope_gives_every_block_one_placement_and_mutates():
    from archsearch.spaces.variation import mutate

    space = BlockGraphSpace(name="t", depth={"low": 2, "high": 6}, wiring=["residual", "parallel"],
                            norm_placement=["pre", "post", "peri", "mix"], placement_scope="network")
    space.check()
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        genome = space.sample(rng)
        placements = {spec.norm_placement for _, spec in genome.blocks() if spec.kind != "identity"}
        assert placements == {genome.decisions["norm_placement"]}
        assert not any(label.endswith(".norm_placement") for label in genome.decisions)
        assert space.replay(genome.decisions).arch_id == genome.arch_id
        child = mutate(space, genome, rng, operator="norm_placement")
        seen.add(child.decisions["norm_placement"])
    assert seen == {"pre", "post", "peri", "mix"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"blocks": ["mlp", "transformerz"]}, "unknown value.*transformerz.*valid: attention"),
        ({"activation": ["relu", "sparkle"]}, "sparkle"),
        ({"depth": {"low": 4, "high": 2}}, "low=4 is above high=2"),
        ({"depth": {"low": 0, "high": 2}}, "at least 1"),
        ({"width": []}, "empty list"),
        ({"norm_placement": ["middle"]}, "middle"),
        ({"norm": ["groupnorm"]}, "groupnorm"),
        ({"block_params": {"kan": {"grid": [3]}}}, "unknown block 'kan'"),
        ({"depth": {"high": 2}}, "lacks"),
        ({"placement_scope": "stage"}, "placement_scope.*block, network.*stage"),
    ],
)
def test_space_check_names_the_problem(kwargs, message):
    with pytest.raises(SpaceError, match=message):
        BlockGraphSpace(**kwargs).check()
