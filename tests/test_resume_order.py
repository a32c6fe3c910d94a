"""A run interrupted mid-training and resumed proposes what an uninterrupted run of its seed proposes.

The in-flight trial and the trials after the saved strategy state come back from the journal; each
candidate's decisions must keep the order they were made in, because strategies read it (mutation picks
a decision by position, encoders add columns as labels appear). ``toy_space`` makes its decisions in an
order that is not alphabetical, so a journal that sorted them would show here. And the strategy state
saved on the way out of a Ctrl-C must hold exactly the journal records the strategy has absorbed.
"""

import pytest

import archsearch
from archsearch.engine import FrontWeights
from archsearch.testing.faults import InterruptAt
from archsearch.testing.toys import toy_evaluate, toy_objectives, toy_space

BUDGET = 20


def run(run_dir, evaluate, strategy):
    return archsearch.search(space=toy_space, evaluate=evaluate, objectives=toy_objectives(), budget=BUDGET,
                             seed=4, strategy=strategy, executor="inline", run_dir=run_dir, quiet=True)


@pytest.mark.parametrize("strategy", ["model", "evolution", "local", "mcts", "bayes", "random"])
@pytest.mark.parametrize("interrupt_at", [3, 11])
def test_resume_after_ctrl_c_mid_trial_proposes_what_an_uninterrupted_run_does(tmp_path, strategy, interrupt_at):
    whole = run(tmp_path / "whole", toy_evaluate, strategy).trials.to_pandas()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", InterruptAt(interrupt_at, toy_evaluate), strategy)
    archsearch.resume(tmp_path / "cut", space=toy_space, evaluate=toy_evaluate, quiet=True)
    cut = archsearch.load_run(tmp_path / "cut").trials.to_pandas()
    assert len(cut) == len(whole) == BUDGET
    assert cut.arch_id.tolist() == whole.arch_id.tolist()


@pytest.mark.parametrize("strategy", ["model", "evolution"])
def test_ctrl_c_after_a_result_is_journaled_but_before_the_strategy_hears_it(tmp_path, monkeypatch, strategy):
    """Keeping the front's weights comes between journaling a result and telling the strategy (saving
    weights takes time, so Ctrl-C lands there); the state saved on the way out must not claim the tell."""
    whole = run(tmp_path / "whole", toy_evaluate, strategy).trials.to_pandas()
    update, calls = FrontWeights.update, []

    def interrupted_update(self, trial_id, result):
        calls.append(trial_id)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return update(self, trial_id, result)

    monkeypatch.setattr(FrontWeights, "update", interrupted_update)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", toy_evaluate, strategy)
    monkeypatch.setattr(FrontWeights, "update", update)
    archsearch.resume(tmp_path / "cut", space=toy_space, evaluate=toy_evaluate, quiet=True)
    cut = archsearch.load_run(tmp_path / "cut").trials.to_pandas()
    assert cut.arch_id.tolist() == whole.arch_id.tolist()
