"""Bayesian optimization (and NSGA-II) through Optuna's ask/tell interface.

The ``optuna.Trial`` itself is the chooser handed to ``space.build``, so every space works unchanged,
conditional decisions included (TPE runs ``multivariate=True, group=True`` for exactly that).

Persistence: after ``attach(run_dir)`` the study lives in Optuna's JournalStorage at
``run_dir/optuna_journal.log`` and is reloaded from there when it holds the saved state's trials (a
file that a crash left out of step is set aside and rebuilt from the state); without ``attach``
(tests, notebooks) it lives in memory. ``state_dict`` always carries every trial too (params,
distributions, values, state, trial attributes), so it restores an in-memory study on its own.

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
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.space import SearchSpace
from archsearch.strategies._base import Strategy
from archsearch.trial import PRUNED, Candidate, EvalResult, objective_values

JOURNAL_FILE = "optuna_journal.log"
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
        self._run_dir: Path | None = None
        self._study: Any = None
        self._saved_trials: list[dict[str, Any]] = []
        self._state_restored = False  # the saved trials, not Optuna's file, say what the study holds
        self._seen: set[str] = set()
        self._pending: dict[str, int] = {}

    def options(self) -> dict[str, tuple[Any, str]]:
        return {**super().options(), "sampler": (self.sampler, "one of " + "|".join(SAMPLERS)),
                "n_startup_trials": (self.n_startup_trials, "int>=0"),
                "population_size": (self.population_size, "int>=2"),
                "allow_duplicates": (self.allow_duplicates, "bool"), "max_retries": (self.max_retries, "int>=1")}

    @property
    def journal_path(self) -> Path | None:
        return None if self._run_dir is None else self._run_dir / JOURNAL_FILE

    def attach(self, run_dir: Path) -> None:
        """Keep the study in a journal file in ``run_dir`` (reloaded from there if it agrees with the state).

        A study already in memory is what the engine built by replaying the run's journal (a resume
        after a crash); it moves into the file, replacing whatever Optuna had written there.
        """
        if self._study is not None:
            self._saved_trials = self._trial_records()
            self._study = None
            self._state_restored = True
        self._run_dir = Path(run_dir)

    # -- the study -------------------------------------------------------------------------------

    def study(self) -> Any:
        """The ``optuna.Study`` (created on first use, in the journal if attached)."""
        if self._study is None:
            import optuna

            if self.sampler not in SAMPLERS:
                raise ValueError(f"unknown sampler {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
            if not self.objectives:
                raise ValueError("the bayes strategy needs at least one objective")
            if optuna.logging.get_verbosity() == optuna.logging.INFO:  # one line per trial drowns the CLI
                optuna.logging.set_verbosity(optuna.logging.WARNING)
            storage = None if self.journal_path is None else self._journal_storage(self.journal_path)
            self._study = optuna.create_study(
                storage=storage, study_name=STUDY_NAME, directions=list(self.objectives.values()),
                sampler=optuna.samplers.RandomSampler(seed=self.seed), load_if_exists=True,
            )
            self._restore_trials()
        return self._study

    def _journal_storage(self, path: Path) -> Any:
        """Optuna's journal at ``path``, holding exactly the strategy's saved trials.

        The state is saved after every ask and tell, and Optuna writes its file during them, so a driver
        killed in between leaves the file with a trial the state (and the run's journal) never recorded.
        Once a state was restored, such a file is set aside as ``*.stale`` and the study rebuilt from
        the state; without one (a fresh strategy attached to a run to read its study) the file is used.
        """
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and self._state_restored:
            storage = JournalStorage(JournalFileBackend(str(path)))
            try:
                n_trials = len(storage.get_all_trials(storage.get_study_id_from_name(STUDY_NAME), deepcopy=False))
            except KeyError:  # no study in it yet
                n_trials = 0
            if n_trials == len(self._saved_trials):
                return storage
            path.replace(path.with_name(path.name + ".stale"))
        return JournalStorage(JournalFileBackend(str(path)))

    def _trial_records(self) -> list[dict[str, Any]]:
        """The study's trials as JSON-able records (what ``state_dict`` saves and ``_restore_trials`` adds)."""
        from optuna.distributions import distribution_to_json

        return [
            {
                "state": t.state.name,
                "values": t.values,
                "params": t.params,
                "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
                "user_attrs": t.user_attrs,
                "system_attrs": t.system_attrs,
            }
            for t in self._study.get_trials(deepcopy=False)
        ]

    def _restore_trials(self) -> None:
        """Add saved trials the study lacks (all of them in memory; none when the journal has them)."""
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

        seed = int(np.random.SeedSequence([self.seed, n_trials]).generate_state(1)[0])
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
                self._seen.add(candidate.arch_id)
                self._pending[candidate.arch_id] = trial.number
                return candidate
            study.tell(trial, state=TrialState.FAIL)  # a duplicate: never evaluated, ignored by samplers
        return None

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        from optuna.trial import TrialState

        self._seen.add(candidate.arch_id)
        number = self._pending.pop(candidate.arch_id, None)
        if number is None:
            return  # not proposed by this study (e.g. a result from before a restore without its trial)
        values = objective_values(result, self.objectives)
        if values is not None and all(math.isfinite(v) for v in values):
            self.study().tell(number, values)
        else:
            self.study().tell(number, state=TrialState.PRUNED if result.status == PRUNED else TrialState.FAIL)

    # -- state -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        trials = self._saved_trials if self._study is None else self._trial_records()
        return {
            "seed": self.seed,
            "sampler": self.sampler,
            "journal": JOURNAL_FILE if self._run_dir is not None else None,
            "trials": trials,
            "seen": sorted(self._seen),
            "pending": dict(self._pending),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.seed = int(state["seed"])
        self._saved_trials = list(state["trials"])
        self._seen = set(state["seen"])
        self._pending = {k: int(v) for k, v in state["pending"].items()}
        self._state_restored = True
        if self._study is not None:
            self._restore_trials()
