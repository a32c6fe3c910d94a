"""Start points (``start_with``): architectures a user already knows, proposed first by every strategy and
learned from; refused in one line before anything is written where the space cannot build them."""

import json

import pytest
from clitools import archsearch_cli

import archsearch
from archsearch.errors import ConfigError
from archsearch.space import as_space
from archsearch.strategies import make_strategy
from archsearch.strategies._start import GIVEN
from archsearch.testing.faults import InterruptAt
from archsearch.testing.toys import toy_evaluate, toy_objectives, toy_space
from archsearch.trial import COMPLETE, EvalResult

STRATEGIES = ["model", "bayes", "evolution", "local", "mcts", "random"]
KNOWN = [{"depth": 2, "width": 32, "kind": "kan", "grid": 5, "lr": 0.003},
         {"depth": 4, "width": 64, "kind": "mlp", "lr": 0.001}]


def search(run_dir, strategy="model", budget=10, **options):
    return archsearch.search(space=toy_space, evaluate=toy_evaluate, objectives=toy_objectives(), budget=budget,
                             seed=1, strategy=strategy, executor="inline", run_dir=run_dir, quiet=True, **options)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_proposes_the_points_first_and_learns_from_them(strategy):
    proposer = make_strategy(strategy, as_space(toy_space), toy_objectives(), seed=0)
    proposer.start_with([*KNOWN, {"depth": 3}])
    proposals = []
    for _ in range(8):
        candidate = proposer.next_proposal()
        proposals.append(candidate)
        proposer.tell(candidate, EvalResult(COMPLETE, toy_evaluate(candidate.architecture)))
    assert [c.decisions for c in proposals[:2]] == KNOWN
    assert proposals[2].decisions["depth"] == 3  # the rest of a partial point is sampled
    assert [c.origin for c in proposals[:3]] == [GIVEN] * 3 and GIVEN not in {c.origin for c in proposals[3:]}
    assert len({c.arch_id for c in proposals}) == 8  # the strategy knows them: it proposes none again


def test_a_point_seen_already_is_skipped_and_the_queue_survives_a_saved_state():
    proposer = make_strategy("evolution", as_space(toy_space), toy_objectives(), seed=0)
    proposer.start_with([KNOWN[0], KNOWN[0], KNOWN[1]])
    assert proposer.next_proposal().decisions == KNOWN[0]
    saved = json.loads(json.dumps(proposer.state_dict()))
    following = [proposer.next_proposal() for _ in range(3)]
    assert following[0].decisions == KNOWN[1] and following[1].origin != GIVEN
    restored = make_strategy("evolution", as_space(toy_space), toy_objectives(), seed=0)
    restored.load_state_dict(saved)
    assert [restored.next_proposal().arch_id for _ in range(3)] == [c.arch_id for c in following]


@pytest.mark.parametrize(("points", "message"), [
    ([{"depth": 2, "colour": "red"}], "start point 1: the space asks no decision 'colour' for these decisions "
                                      "(it asked: depth, width, kind, "),
    ([KNOWN[0], {"depth": 9}], "start point 2: depth=9 is not a value the space allows"),
    ([{"kind": "mlp", "grid": 5}], "start point 1: the space asks no decision 'grid'"),
    ([{}], "start point 1 must be a non-empty mapping of decisions"),
    ([["depth", 2]], "start point 1 must be a non-empty mapping of decisions"),
])
def test_points_the_space_cannot_build_are_refused_before_anything_is_written(tmp_path, points, message):
    with pytest.raises(ConfigError) as caught:
        search(tmp_path / "r", start_with=points)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert not (tmp_path / "r").exists()


def test_a_run_directory_starts_a_search_from_its_front(tmp_path):
    earlier = search(tmp_path / "earlier", strategy="random", budget=8)
    front = [json.loads(text) for text in earlier.pareto().column("decisions_json").to_pylist()]
    run = search(tmp_path / "next", start_with=[tmp_path / "earlier"], budget=len(front) + 2)
    trials = run.trials.to_pandas()
    assert [json.loads(d) for d in trials.decisions_json[:len(front)]] == front
    assert (trials.origin[:len(front)] == GIVEN).all()
    # The config records the decisions, not the path: the earlier run may move or vanish.
    config = (tmp_path / "next" / "config.yaml").read_text()
    assert str(tmp_path / "earlier") not in config and "start_with:" in config


@pytest.mark.parametrize("strategy", ["model", "bayes"])
def test_a_run_cut_among_its_start_points_resumes_to_the_same_proposals(tmp_path, strategy):
    points = [*KNOWN, {"depth": 1, "kind": "kan"}, {"width": 8}]
    whole = search(tmp_path / "whole", strategy, start_with=points).trials.to_pandas()
    with pytest.raises(KeyboardInterrupt):
        archsearch.search(space=toy_space, evaluate=InterruptAt(2, toy_evaluate), objectives=toy_objectives(),
                          budget=10, seed=1, strategy=strategy, executor="inline", run_dir=tmp_path / "cut",
                          quiet=True, start_with=points)
    (tmp_path / "cut" / "strategy_state.json").unlink(missing_ok=True)  # replay the journal from scratch
    archsearch.resume(tmp_path / "cut", space=toy_space, evaluate=toy_evaluate, quiet=True)
    cut = archsearch.load_run(tmp_path / "cut").trials.to_pandas()
    assert cut.arch_id.tolist() == whole.arch_id.tolist() and (cut.origin[:4] == GIVEN).all()


def test_the_command_line_takes_points_as_an_override(tmp_path):
    run_dir = tmp_path / "r"
    archsearch_cli("run", "space=mlp", "budget=2", "executor=inline", "training.epochs=1", f"run_dir={run_dir}",
                   "strategy.start_with=[{depth:1,width:64},{depth:2}]", cwd=tmp_path)
    trials = archsearch.load_run(run_dir).trials.to_pandas()
    first, second = (json.loads(d) for d in trials.decisions_json)
    assert (first["depth"], first["width"], second["depth"]) == (1, 64, 2)
    proc = archsearch_cli("run", "space=mlp", "budget=2", "executor=inline", f"run_dir={tmp_path / 'bad'}",
                          "strategy.start_with=[{depth:7}]", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "start point 1: depth=7 is not a value the space allows" in proc.stderr
    assert not (tmp_path / "bad").exists()
