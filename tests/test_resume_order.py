"""A run interrupted mid-training and resumed proposes what an uninterrupted run of its seed proposes.

The in-flight trial and the trials after the saved strategy state come back from the journal; each
candidate's decisions must keep the order they were made in, because strategies read it (mutation picks
a decision by position, encoders add columns as labels appear). ``toy_space`` makes its decisions in an
order that is not alphabetical, so a journal that sorted them would show here.
"""

import pytest

import archsearch
from archsearch.testing.toys import toy_evaluate, toy_objectives, toy_space

BUDGET = 20


class InterruptAt:
    """``toy_evaluate`` that raises KeyboardInterrupt (Ctrl-C) at its ``n``-th call, mid-trial."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, arch):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return toy_evaluate(arch)


def run(run_dir, evaluate, strategy):
    return archsearch.search(space=toy_space, evaluate=evaluate, objectives=toy_objectives(), budget=BUDGET,
                             seed=4, strategy=strategy, executor="inline", run_dir=run_dir, quiet=True)


@pytest.mark.parametrize("strategy", ["model", "evolution", "local", "mcts", "bayes", "random"])
@pytest.mark.parametrize("interrupt_at", [3, 11])
def test_resume_after_ctrl_c_mid_trial_proposes_what_an_uninterrupted_run_does(tmp_path, strategy, interrupt_at):
    whole = run(tmp_path / "whole", toy_evaluate, strategy).trials.to_pandas()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", InterruptAt(interrupt_at), strategy)
    archsearch.resume(tmp_path / "cut", space=toy_space, evaluate=toy_evaluate, quiet=True)
    cut = archsearch.load_run(tmp_path / "cut").trials.to_pandas()
    assert len(cut) == len(whole) == BUDGET
    assert cut.arch_id.tolist() == whole.arch_id.tolist()
