"""The five built-in spaces: sampling, building, training, JSON, mutation and crossover, and the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from archsearch.builder import build_model
from archsearch.config import instantiate
from archsearch.genome import Genome
from archsearch.space import SpaceError
from archsearch.spaces import BlockGraphSpace
from archsearch.spaces.variation import MUTATIONS, n_stages, stage_of
from archsearch.tasks import DataSpec

ROOT = Path(__file__).resolve().parents[1]
SPACES = ("mlp", "kan", "transformer", "moe", "hybrid")
VECTOR = DataSpec("vector", n_features=5, n_outputs=3)
SEQUENCE = DataSpec("sequence", seq_len=4, n_channels=2, n_outputs=3)


def effective(genome: Genome, label: str):
    """A global decision's value, or for ``tokenize`` the tokenization a genome's token mixers imposed."""
    if label == "tokenize" and label not in genome.decisions:
        return genome.meta.get("tokenize", "none")
    return genome.decisions.get(label)


def load_space(name: str) -> BlockGraphSpace:
    from omegaconf import OmegaConf

    space = instantiate(OmegaConf.load(ROOT / "search_spaces" / f"{name}.yaml"), "space")
    space.check()
    return space


def train_one_step(genome: Genome, data: DataSpec) -> None:
    model = build_model(genome, data)
    x = torch.randn(6, data.n_features) if data.input_kind == "vector" else torch.randn(6, data.seq_len, data.n_channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = torch.nn.functional.cross_entropy(model(x), torch.arange(6) % 3)
    aux = model.auxiliary_loss()
    loss = loss + aux if aux is not None else loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()


def check_genome(space: BlockGraphSpace, genome: Genome) -> None:
    assert Genome.from_json(genome.to_json()) == genome
    assert Genome.from_json(genome.to_json()).arch_id == genome.arch_id
    assert space.replay(genome.decisions).arch_id == genome.arch_id


@pytest.mark.parametrize("name", SPACES)
def test_space_samples_valid_genomes_that_build_and_train(name):
    torch.manual_seed(0)
    space = load_space(name)
    rng = np.random.default_rng(0)
    kinds = set()
    for i in range(50):
        genome = space.sample(rng)
        check_genome(space, genome)
        train_one_step(genome, VECTOR if i % 2 else SEQUENCE)
        kinds.update(spec.kind for _, spec in genome.blocks())
    assert set(space.blocks) <= kinds  # 50 samples see every block kind of the space


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("operator", MUTATIONS)
def test_every_mutation_yields_a_valid_genome(name, operator):
    space = load_space(name)
    rng = np.random.default_rng(1)
    changed = 0
    for _ in range(8):
        parent = space.sample(rng)
        if (name, operator) == ("kan", "layer_width"):  # a network of layers with hidden layers
            parent = space.rebuild({"form": "layers", "depth": 3}, rng)
        child = space.mutate(parent, rng, operator=operator)
        check_genome(space, child)
        build_model(child, VECTOR)
        changed += child.arch_id != parent.arch_id
    # mlp has one block kind (nothing to replace it with); only kan has two forms (and so layer widths);
    # no built-in space has a recipe section (tests/test_recipe.py mutates one)
    inapplicable = (name, operator) == ("mlp", "replace") or operator == "recipe" or (
        operator in ("form", "layer_width") and name != "kan")
    if inapplicable:
        assert changed == 0
    else:
        assert changed >= 3  # the edit is applicable to most genomes and changes them


def test_structural_mutations_move_whole_stages():
    space = load_space("transformer")
    rng = np.random.default_rng(3)
    parent = space.sample(rng)
    while n_stages(parent) not in (3, 4, 5):
        parent = space.sample(rng)
    depth = n_stages(parent)
    inserted = space.mutate(parent, rng, "insert")
    removed = space.mutate(parent, rng, "remove")
    assert (n_stages(inserted), n_stages(removed)) == (depth + 1, depth - 1)
    swapped = space.mutate(parent, rng, "swap")
    stage_kinds = sorted(v for k, v in parent.decisions.items() if k.endswith(".kind"))
    assert sorted(v for k, v in swapped.decisions.items() if k.endswith(".kind")) == stage_kinds


def test_default_mutation_changes_the_architecture_and_is_seeded():
    space = load_space("hybrid")
    parent = space.sample(np.random.default_rng(0))
    children = [space.mutate(parent, np.random.default_rng(7)) for _ in range(2)]
    assert children[0] == children[1] and children[0].arch_id != parent.arch_id
    with pytest.raises(ValueError, match="unknown mutation 'grow'"):
        space.mutate(parent, np.random.default_rng(0), operator="grow")


def test_mutation_of_a_space_with_one_architecture_returns_it():
    space = BlockGraphSpace(depth=1, width=[8], wiring=["sequential"], norm_placement=["pre"], activation=["relu"])
    genome = space.sample(0)
    assert space.mutate(genome, np.random.default_rng(0)).arch_id == genome.arch_id


@pytest.mark.parametrize("name", SPACES)
def test_crossover_yields_valid_children_made_of_parent_stages(name):
    space = load_space(name)
    rng = np.random.default_rng(2)
    for _ in range(10):
        a, b = space.sample(rng), space.sample(rng)
        child = space.crossover(a, b, rng)
        check_genome(space, child)
        build_model(child, VECTOR)
        assert n_stages(child) in (n_stages(a), n_stages(b))
        for label, value in child.decisions.items():
            if stage_of(label) is None:  # global decisions come from one parent or the other
                assert value in (effective(a, label), effective(b, label)), label
        for stage in range(n_stages(child)):  # each stage comes whole from one parent
            labels = {k: v for k, v in child.decisions.items() if stage_of(k) == stage}
            assert any(all(parent.decisions.get(k, v) == v for k, v in labels.items()) for parent in (a, b))


def test_parallel_stage_structure():
    space = BlockGraphSpace(depth=1, blocks=["attention"], width=[8], wiring=["parallel"], merge=["concat"],
                            tokenize="features")
    genome = space.sample(0)
    graph = genome.graph
    assert sorted(graph.predecessors("b0m")) == ["b0", "b0p", "input"]
    assert graph.nodes["b0m"]["spec"].kind == "identity" and graph.nodes["b0m"]["spec"].merge == "concat"
    model = build_model(genome, VECTOR)
    assert model.merges["b0m"].proj.in_features == 3 * 8
    assert genome.meta["tokenize"] == "features"


def test_space_check_refuses_unknown_wiring_and_tokenization():
    with pytest.raises(SpaceError, match="braided"):
        BlockGraphSpace(wiring=["braided"]).check()
    with pytest.raises(SpaceError, match="pixels"):
        BlockGraphSpace(tokenize="pixels").check()


def archsearch(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "archsearch.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("name", SPACES)
def test_cli_run_on_digits(name, tmp_path):
    archsearch("run", f"space={name}", "task=digits", "budget=3", "training.epochs=0.3", "seed=0",
               "executor=inline", "run_dir=r", "--quiet", cwd=tmp_path)
    trials = pq.read_table(tmp_path / "r" / "trials.parquet").to_pandas()
    assert len(trials) == 3 and set(trials.status) == {"complete"}, trials.get("error")
    for genome in trials.genome_json:
        assert Genome.from_dict(json.loads(genome)).arch_id in set(trials.arch_id)


def test_cli_lists_the_five_spaces(tmp_path):
    listing = archsearch("list", "spaces", cwd=tmp_path).stdout
    assert all(name in listing for name in SPACES)


@pytest.mark.parametrize("name", ["hybrid", "moe"])
def test_token_mixers_on_vector_inputs_always_see_one_token_per_feature(name):
    """A space offering ``tokenize: [none, features]`` never pairs attention with a single token."""
    from archsearch.blocks import BLOCKS
    from archsearch.space import RandomChooser

    TOKEN_MIXERS = [n for n in BLOCKS.names() if BLOCKS.info(n).mixes_tokens]

    space = load_space(name)
    kinds_and_tokens = []
    for seed in range(60):
        genome = space.build(RandomChooser(np.random.default_rng(seed)))
        kinds = {data["spec"].kind for _, data in genome.graph.nodes(data=True) if "spec" in data}
        kinds_and_tokens.append((bool(kinds & set(TOKEN_MIXERS)), genome.meta.get("tokenize", "none")))
        assert space.rebuild(genome.decisions, np.random.default_rng(0)).arch_id == genome.arch_id
        if kinds & set(TOKEN_MIXERS):
            assert build_model(genome, VECTOR).stem.n_tokens == VECTOR.n_features
    assert all(tokens == "features" for mixes, tokens in kinds_and_tokens if mixes)
    if name == "hybrid":  # without a token mixer the choice is still the search's
        assert {tokens for mixes, tokens in kinds_and_tokens if not mixes} == {"none", "features"}


def test_same_decisions_give_the_same_genome_object_until_the_space_changes():
    """A space keeps the genomes it built by decisions (a search draws the same ones again and again);
    what it hands back must equal a fresh build, even after one of its fixed settings was changed."""
    import pickle

    from archsearch.space import ReplayChooser

    space = BlockGraphSpace(name="memo", blocks=["mlp"], depth=2, width=[8, 16], activation="relu")
    first = space.sample(np.random.default_rng(0))
    again = space.build(ReplayChooser(first.decisions))
    assert again is first
    space.activation = "gelu"  # asks nothing, so the decisions are the same; the graph is not
    changed = space.build(ReplayChooser(first.decisions))
    assert changed.arch_id != first.arch_id and changed == Genome(changed.graph, changed.meta, changed.decisions)
    assert "_memo" not in pickle.loads(pickle.dumps(space)).__dict__  # a space sent to a worker travels light
