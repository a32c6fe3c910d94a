"""Property-based tests: random and mutated inputs to every loader are accepted and valid, or refused
with an ArchsearchError (a one-line message), never another exception."""

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.errors import ArchsearchError
from archsearch.genome import BlockSpec, Genome
from archsearch.space import RandomChooser

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


def valid_genome_dict():
    specs = [BlockSpec("mlp", {"expansion": 2}, "gelu"), BlockSpec("mlp", {}, "relu", residual=True)]
    return Genome.sequential(specs, {"width": 16}, {"depth": 2}).to_dict()


@st.composite
def mutated_genome(draw):
    data = valid_genome_dict()
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(["top", "node", "spec", "edge"]))
        if target == "top":
            key = draw(st.sampled_from(["nodes", "edges", "meta", "decisions", "schema_version", "extra"]))
            if draw(st.booleans()):
                data.pop(key, None)
            else:
                data[key] = draw(JSON)
        elif target == "node" and isinstance(data.get("nodes"), list) and data["nodes"]:
            index = draw(st.integers(0, len(data["nodes"]) - 1))
            node = data["nodes"][index]
            replace_whole = draw(st.booleans()) or not isinstance(node, dict)
            data["nodes"][index] = draw(JSON) if replace_whole else {**node, "id": draw(JSON)}
        elif target == "spec" and isinstance(data.get("nodes"), list) and data["nodes"] and isinstance(data["nodes"][0], dict):
            spec = data["nodes"][0].get("spec")
            if isinstance(spec, dict):
                spec[draw(st.sampled_from(["kind", "params", "activation", "norm", "norm_placement", "residual",
                                           "merge", "other"]))] = draw(JSON)
        elif target == "edge" and isinstance(data.get("edges"), list):
            data["edges"].append(draw(st.lists(st.sampled_from(["input", "output", "b0", "b1", "zz"]), max_size=3)))
    return data


@settings(max_examples=300, deadline=None)
@given(mutated_genome())
def test_genome_json_is_valid_or_refused(data):
    try:
        genome = Genome.from_dict(data)
    except ArchsearchError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    again = Genome.from_json(genome.to_json())
    assert again == genome and again.arch_id == genome.arch_id


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_genome_text_is_valid_or_refused(text):
    with contextlib.suppress(ArchsearchError):
        Genome.from_json(text)


DOMAIN = (st.lists(st.sampled_from(["mlp", "relu", "gelu", "pre", "post", "none", "layernorm", "rmsnorm", "residual",
                                    "sequential", "bogus", 0, 1, 2, 64, -3, 1.5, None, True]), max_size=4)
          | st.fixed_dictionaries({"low": st.integers(-3, 8) | st.floats(-2, 8) | st.text(max_size=2),
                                   "high": st.integers(-3, 8) | st.floats(-2, 8)})
          | st.dictionaries(st.sampled_from(["low", "high", "step", "log"]), st.integers(-2, 6), max_size=3)
          | st.integers(-2, 300) | st.text(max_size=4) | st.none())
OPTIONS = st.dictionaries(
    st.sampled_from(["blocks", "depth", "width", "wiring", "norm", "norm_placement", "activation", "final_norm",
                     "block_params"]),
    DOMAIN, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPTIONS)
def test_space_options_are_valid_or_refused(options):
    from archsearch import config

    node = {"_target_": "archsearch.spaces.BlockGraphSpace", "name": "fuzz", **options}
    try:
        space = config.instantiate(node, "space fuzz")
        space.check()
    except ArchsearchError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for seed in range(3):
        genome = space.build(RandomChooser(seed))
        assert space.replay(genome.decisions).arch_id == genome.arch_id
        assert Genome.from_json(genome.to_json()) == genome


OVERRIDE_KEYS = st.sampled_from(["space", "strategy", "task", "executor", "budget", "seed", "objectives",
                                 "space.depth.high", "space.width", "space.activation", "training.epochs",
                                 "training.optimizer", "constraints.max_params", "latency.repeats", "nope.x",
                                 "+space.extra", "~budget", "executor.workers", "keep_weights"])
OVERRIDE_VALUES = st.sampled_from(["mlp", "kan", "random", "0", "-1", "3", "1.5", "10m", "[relu,gelu]", "[", "{a:b}",
                                   "null", "adam", "lion", "{val_accuracy:max}", "[x:up]", "'quoted'", "", "inline",
                                   "front", "sometimes", "=="])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(OVERRIDE_KEYS, OVERRIDE_VALUES), max_size=3) | st.lists(st.text(max_size=12), max_size=2))
def test_overrides_are_valid_or_refused(pairs):
    from archsearch._plan import plan_run

    overrides = [f"{k}={v}" for k, v in pairs] if pairs and isinstance(pairs[0], tuple) else list(pairs)
    try:
        plan = plan_run([*overrides, "run_dir=/nonexistent/never-created"])
    except ArchsearchError as exc:
        assert str(exc) and "\n" not in str(exc), str(exc)
        return
    assert plan.budget.max_trials is None or plan.budget.max_trials > 0
    json.dumps(plan.run_info)
