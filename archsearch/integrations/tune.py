"""Ray Tune integration: archsearch's spaces and strategies as a Tune ``Searcher``.

For people whose training code already lives in Tune::

    from ray import tune
    from archsearch.integrations.tune import ArchsearchSearcher, genome_from_config

    def trainable(config):
        model = archsearch.build_model(genome_from_config(config), data_spec)
        ...
        tune.report({"val_accuracy": acc, "n_params": n})

    searcher = ArchsearchSearcher("mlp", objectives={"val_accuracy": "maximize", "n_params": "minimize"})
    tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=50)).fit()

Tune owns the loop and the trials; archsearch proposes architectures and learns from every reported
objective (Tune itself only knows the first one as ``metric``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ray.tune.search import Searcher

from archsearch.genome import Genome
from archsearch.space import SearchSpace, architecture_to_json, as_space
from archsearch.strategies._base import Strategy
from archsearch.trial import COMPLETE, Candidate, EvalResult

CONFIG_KEY = "architecture"


def genome_from_config(config: dict[str, Any]) -> Genome:
    """The genome a trial's ``config`` carries (for built-in spaces)."""
    return Genome.from_dict(config[CONFIG_KEY])


def _resolve_space(space: str | SearchSpace | Callable[..., Any]) -> SearchSpace:
    if isinstance(space, str):
        from archsearch import config

        cfg = config.compose([f"space={space}"])
        built = config.instantiate(cfg.space, f"space {space}")
        built.check()
        return built
    return as_space(space)


class ArchsearchSearcher(Searcher):
    """A Tune searcher that asks an archsearch strategy for each trial's architecture.

    Args:
        space: a space name (``search_spaces/NAME.yaml``), a :class:`SearchSpace` or a callable space.
        objectives: ``{metric: "maximize" | "minimize"}`` the trainable reports; the first one is the
            metric Tune sees.
        strategy: a strategy name or an already-built :class:`Strategy` (then ``space``/``seed`` are its own).
        seed: seeds the strategy.
        strategy_options: options for a named strategy (as in ``strategies/NAME.yaml``); ``lr_siblings``
            too, each sibling a Tune trial of its own (Tune trains trials apart, so they are not stacked);
            and ``start_with``, decisions to suggest first (Tune's ``points_to_evaluate``, learned from).
    """

    def __init__(
        self,
        space: str | SearchSpace | Callable[..., Any],
        objectives: dict[str, str],
        strategy: str | Strategy = "random",
        seed: int = 0,
        **strategy_options: Any,
    ) -> None:
        first, direction = next(iter(objectives.items()))
        super().__init__(metric=first, mode="max" if direction == "maximize" else "min")
        self.objectives = dict(objectives)
        siblings = strategy_options.pop("lr_siblings", 1)
        start = strategy_options.pop("start_with", None) or []
        if isinstance(strategy, Strategy):
            self.strategy = strategy
        else:
            from archsearch.strategies import make_strategy

            self.strategy = make_strategy(strategy, _resolve_space(space), self.objectives, seed, **strategy_options)
        if siblings != 1:
            self.strategy.use_siblings(siblings)
        if start:
            self.strategy.start_with(start)
        self._live: dict[str, Candidate] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        candidate = self.strategy.next_proposal()
        if candidate is None:
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray's documented end signal, a str
        self._live[trial_id] = candidate
        return {CONFIG_KEY: architecture_to_json(candidate.architecture), "arch_id": candidate.arch_id}

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        candidate = self._live.pop(trial_id, None)
        if candidate is None:
            return
        if error or result is None:
            outcome = EvalResult.failed("the Tune trial errored" if error else "the Tune trial reported nothing")
        else:
            missing = [name for name in self.objectives if name not in result]
            metrics = {k: float(v) for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            outcome = (EvalResult.failed(f"the trial did not report {', '.join(missing)}", metrics) if missing
                       else EvalResult(COMPLETE, metrics))
        self.strategy.tell(candidate, outcome)

    def get_state(self) -> dict[str, Any]:
        return {"strategy": self.strategy.state_dict(),
                "live": {k: c.to_dict() for k, c in self._live.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        self.strategy.load_state_dict(state["strategy"])
        self._live = {k: Candidate.from_dict(v) for k, v in state["live"].items()}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "w") as f:
            json.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))
