"""Bayesian optimization (and NSGA-II) through Optuna's ask/tell interface.

The ``optuna.Trial`` itself is the chooser handed to ``space.build``, so every space works unchanged,
conditional decisions included (TPE runs ``multivariate=True, group=True`` for exactly that).

Persistence: the study lives in memory and ``state_dict`` carries every trial (params,
distributions, values, state, trial attributes); ``load_state_dict`` rebuilds the study from them. The
strategy keeps no file of its own, so the engine's saved state and journal are the whole truth and a
resume continues exactly after a kill at any instant (finished trials are immutable in Optuna, so their
records are built once and reused).

What is bit-identical on resume: the proposals, given the same finished trials. The sampler is rebuilt
for every ask with a seed drawn from ``(seed, number of trials)``, so no hidden sampler RNG has to be
saved. What is not: trials still running when the state was saved come back as running (a sampler that
looks at running trials, TPE's constant liar, sees them until they are told), trial timestamps, and
NSGA-II's cached parent population (a study attribute, recomputed from the trials after a restore).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from archsearch.space import SearchSpace
from archsearch.strategies._base import Strategy
from archsearch.trial import PRUNED, Candidate, EvalResult, objective_values

STUDY_NAME = "archsearch"
SAMPLERS = ("tpe", "gp", "nsga2", "random")


class Bayes(Strategy):
    """An Optuna study driven by ask/tell; duplicates are told as failed (never evaluated) and re-asked.

    Args:
        sampler: ``tpe`` (multivariate TPE), ``gp`` (Gaussian process), ``nsga2`` or ``random``.
        n_startup_trials: random trials before TPE / GP start modelling.
        population_size: NSGA-II's generation size.
        allow_duplicates: propose architectures already evaluated or in flight.
        max_retries: asks that may end on a duplicate before switching to random samples for as many
            more; after those ``ask`` returns ``None``.
    """

    name = "bayes"

    def __init__(
        self,
        space: SearchSpace,
        objectives: dict[str, str] | None = None,
        seed: int = 0,
        sampler: str = "tpe",
        n_startup_trials: int = 10,
        population_size: int = 50,
        allow_duplicates: bool = False,
        max_retries: int = 20,
    ) -> None:
        super().__init__(space, objectives, seed)
        self.sampler = sampler
        self.n_startup_trials = n_startup_trials
        self.population_size = population_size
        self.allow_duplicates = allow_duplicates
        self.max_retries = max_retries
        self._study: Any = None
        self._saved_trials: list[dict[str, Any]] = []
        self._finished_records: list[dict[str, Any]] = []  # a prefix of the study's trials, all finished
        self._pending: dict[str, int] = {}

    def options(self) -> dict[str, tuple[Any, str]]:
        return {**super().options(), "sampler": (self.sampler, "one of " + "|".join(SAMPLERS)),
                "n_startup_trials": (self.n_startup_trials, "int>=0"),
                "population_size": (self.population_size, "int>=2"),
                "allow_duplicates": (self.allow_duplicates, "bool"), "max_retries": (self.max_retries, "int>=1")}

    # -- the study -------------------------------------------------------------------------------

    def study(self) -> Any:
        """The ``optuna.Study`` (created in memory on first use, holding the saved trials)."""
        if self._study is None:
            import optuna

            if self.sampler not in SAMPLERS:
                raise ValueError(f"unknown sampler {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
            if not self.objectives:
                raise ValueError("the bayes strategy needs at least one objective")
            if optuna.logging.get_verbosity() == optuna.logging.INFO:  # one line per trial drowns the CLI
                optuna.logging.set_verbosity(optuna.logging.WARNING)
            directions = [optuna.study.StudyDirection.MAXIMIZE if d == "maximize"
                          else optuna.study.StudyDirection.MINIMIZE for d in self.objectives.values()]
            self._study = optuna.create_study(
                study_name=STUDY_NAME, directions=directions,
                sampler=optuna.samplers.RandomSampler(seed=self.seed),
            )
            self._restore_trials()
        return self._study

    def _trial_records(self) -> list[dict[str, Any]]:
        """The study's trials as JSON-able records (what ``state_dict`` saves and ``_restore_trials`` adds).

        Records of finished trials are cached: Optuna never changes a finished trial, and rebuilding
        every record at every save would make a long run's saves quadratic.
        """
        from optuna.distributions import distribution_to_json

        records = []
        for t in self._study.get_trials(deepcopy=False):
            if t.number < len(self._finished_records):
                records.append(self._finished_records[t.number])
                continue
            record = {
                "state": t.state.name,
                "values": t.values,
                "params": t.params,
                "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
                "user_attrs": t.user_attrs,
                "system_attrs": t.system_attrs,
            }
            if t.state.is_finished() and t.number == len(self._finished_records):
                self._finished_records.append(record)
            records.append(record)
        return records

    def _restore_trials(self) -> None:
        """Add the saved trials to a study built afresh."""
        from optuna.distributions import json_to_distribution
        from optuna.trial import TrialState, create_trial

        n_present = len(self._study.get_trials(deepcopy=False))
        for saved in self._saved_trials[n_present:]:
            self._study.add_trial(create_trial(
                state=TrialState[saved["state"]],
                values=saved["values"],
                params=saved["params"],
                distributions={k: json_to_distribution(v) for k, v in saved["distributions"].items()},
                user_attrs=saved["user_attrs"],
                system_attrs=saved["system_attrs"],
            ))

    def _make_sampler(self, n_trials: int, fallback: bool) -> Any:
        """A sampler seeded by (seed, trials so far): proposals depend on the history, not on hidden RNG."""
        import optuna

        seed = self._derived_seed(n_trials)
        samplers = optuna.samplers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if fallback or self.sampler == "random":
                return samplers.RandomSampler(seed=seed)
            if self.sampler == "tpe":
                return samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed,
                                           n_startup_trials=self.n_startup_trials)
            if self.sampler == "gp":
                return samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                          warn_independent_sampling=False)
            return samplers.NSGAIISampler(population_size=self.population_size, seed=seed)

    # -- ask / tell ------------------------------------------------------------------------------

    def ask(self) -> Candidate | None:
        from optuna.trial import TrialState

        study = self.study()
        for attempt in range(2 * max(1, self.max_retries)):
            study.sampler = self._make_sampler(len(study.get_trials(deepcopy=False)), attempt >= self.max_retries)
            trial = study.ask()
            try:
                architecture = self.space.build(trial)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
            candidate = Candidate(architecture, dict(trial.params), origin=f"{self.sampler} trial {trial.number}")
            if self.allow_duplicates or candidate.arch_id not in self._seen:
                self._propose(candidate)
                self._pending[self._trial_key(candidate)] = trial.number
                return candidate
            study.tell(trial, state=TrialState.FAIL)  # a duplicate: never evaluated, ignored by samplers
        return None

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        from optuna.trial import TrialState

        self._seen.add(candidate.arch_id)
        number = self._pending.pop(self._trial_key(candidate), None)
        if number is None:
            return  # not proposed by this study (e.g. a result from before a restore without its trial)
        values = objective_values(result, self.objectives)
        if values is not None and all(math.isfinite(v) for v in values):
            self.study().tell(number, values)
        else:
            self.study().tell(number, state=TrialState.PRUNED if result.status == PRUNED else TrialState.FAIL)

    # -- state -----------------------------------------------------------------------------------

    def _own_state(self) -> dict[str, Any]:
        trials = self._saved_trials if self._study is None else self._trial_records()
        return {"seed": self.seed, "sampler": self.sampler, "trials": trials, "pending": dict(self._pending)}

    def _load_own_state(self, state: Mapping[str, Any]) -> None:
        self.seed = int(state["seed"])
        self._saved_trials = list(state["trials"])
        self._pending = {k: int(v) for k, v in state["pending"].items()}
        self._study = None  # rebuilt from the saved trials at the next use
        self._finished_records = []
