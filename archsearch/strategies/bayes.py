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

Duplicates: in a small space the sampler keeps proposing architectures it has already seen. Such a
trial is told the outcome of the architecture's first trial (its values, or pruned / failed): the
study then records truly what the sampler proposed, where a failed trial would be invisible to it. If
that first trial is still running, the duplicate stays running beside it (a constant liar sees it)
and is told the same outcome later. The sampler is asked once more; after a second duplicate the
proposal is the nearest unseen architecture: a breadth-first walk from that duplicate that changes one
decision at a time (cheap builds, no model fit), asked of the study as fixed parameters. So an ask
costs two sampler asks at most, and the walk ending without an unseen architecture means the
(discrete) space is exhausted. (On ``nas_digits``, a second ask beat walking after the first duplicate
at 50 and 100 evaluations and tied at 200.)
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.genome import canonical_json
from archsearch.space import RandomChooser, SearchSpace
from archsearch.strategies._base import Strategy
from archsearch.strategies._common import AlternativesChooser
from archsearch.trial import PRUNED, Candidate, EvalResult, objective_values

STUDY_NAME = "archsearch"
SAMPLERS = ("tpe", "gp", "nsga2", "random")
ARCH_ID = "arch_id"  # user attribute of a trial handed out: the architecture it stands for
TWIN_OF = "twin_of"  # user attribute of a duplicate of a running trial: that trial's number
SAMPLER_ASKS = 2  # sampler asks per proposal before walking from the last duplicate (each costs a model fit)


class Bayes(Strategy):
    """An Optuna study driven by ask/tell; a duplicate is told its architecture's known outcome (never
    evaluated again), and the sampler's second duplicate is replaced by the nearest unseen architecture.

    Args:
        sampler: ``tpe`` (multivariate TPE), ``gp`` (Gaussian process), ``nsga2`` or ``random``.
        n_startup_trials: random trials before TPE / GP start modelling.
        population_size: NSGA-II's generation size.
        allow_duplicates: hand out whatever the sampler proposes, architectures already evaluated or in
            flight included (each is trained again, as its own trial).
        max_retries: architectures built, one decision changed at a time outward from a duplicate, in
            search of an unseen one; when none is found ``ask`` returns ``None`` (for a discrete space
            smaller than this, only once every architecture has been proposed).
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
        max_retries: int = 500,
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
        # derived from the study's trials (rebuilt with it): the first trial handed out per architecture,
        # and the duplicates waiting on a running trial
        self._first_trial: dict[str, int] = {}
        self._twins: dict[int, list[int]] = {}

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
            self._index_trials()
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

    def _index_trials(self) -> None:
        """Rebuild the per-architecture index from the trials' user attributes."""
        self._first_trial, self._twins = {}, {}
        for t in self._study.get_trials(deepcopy=False):
            if ARCH_ID in t.user_attrs:
                self._first_trial.setdefault(t.user_attrs[ARCH_ID], t.number)
            if TWIN_OF in t.user_attrs and not t.state.is_finished():
                self._twins.setdefault(int(t.user_attrs[TWIN_OF]), []).append(t.number)

    def _make_sampler(self, n_trials: int) -> Any:
        """A sampler seeded by (seed, trials so far): proposals depend on the history, not on hidden RNG."""
        import optuna

        seed = self._derived_seed(n_trials)
        samplers = optuna.samplers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if self.sampler == "random":
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
        study = self.study()
        n_trials = len(study.get_trials(deepcopy=False))
        for k in range(SAMPLER_ASKS):
            study.sampler = self._make_sampler(n_trials + k)
            trial, candidate = self._ask_study(study)
            if self.allow_duplicates or candidate.arch_id not in self._seen:
                return self._hand_out(trial, candidate)
            self._settle_duplicate(trial, candidate.arch_id)
        duplicate = trial.number
        nearest = self._nearest_unseen(candidate.decisions, np.random.default_rng([self._derived_seed(n_trials), 1]))
        if nearest is None:
            return None
        study.enqueue_trial(nearest.decisions)  # every decision fixed: the sampler models nothing for it
        study.sampler = self._make_sampler(n_trials + SAMPLER_ASKS)
        trial, candidate = self._ask_study(study)
        if self.sampler == "nsga2":
            _ = trial.relative_params  # NSGA-II puts a trial in a generation when it samples it; this one too
        if candidate.arch_id in self._seen:  # the space built another architecture from the same decisions
            self._settle_duplicate(trial, candidate.arch_id)
            return None
        candidate.origin += f", the nearest unseen to duplicate trial {duplicate}"
        return self._hand_out(trial, candidate)

    def _propose_queued(self, decisions: Mapping[str, Any], origin: str) -> Candidate | None:
        """A sibling or start point is a trial of the study too, its decisions fixed (as the nearest unseen
        architecture is; the sampler picks those a start point leaves out), so its result reaches the
        sampler like any other."""
        study = self.study()
        study.enqueue_trial(dict(decisions))
        study.sampler = self._make_sampler(len(study.get_trials(deepcopy=False)))
        trial, candidate = self._ask_study(study)
        if self.sampler == "nsga2":
            _ = trial.relative_params  # as for the nearest unseen: NSGA-II files the trial in a generation
        if candidate.arch_id in self._seen:
            self._settle_duplicate(trial, candidate.arch_id)
            return None
        candidate.origin = origin
        return self._hand_out(trial, candidate)

    def _ask_study(self, study: Any) -> tuple[Any, Candidate]:
        """Ask the study for a trial and build it (a space that raises fails the trial, then raises)."""
        from optuna.trial import TrialState

        trial = study.ask()
        try:
            architecture = self.space.build(trial)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        return trial, Candidate(architecture, dict(trial.params), origin=f"{self.sampler} trial {trial.number}")

    def _hand_out(self, trial: Any, candidate: Candidate) -> Candidate:
        trial.set_user_attr(ARCH_ID, candidate.arch_id)
        self._first_trial.setdefault(candidate.arch_id, trial.number)
        self._propose(candidate)
        self._pending[self._trial_key(candidate)] = trial.number
        return candidate

    def _settle_duplicate(self, trial: Any, arch_id: str) -> None:
        """Tell a duplicate what its architecture's first trial was told; if that one is still running,
        the duplicate waits beside it. An architecture told without a trial of this study (a result from
        before a restore) has no known values: its duplicate fails, as samplers ignore failed trials."""
        from optuna.trial import TrialState

        study = self.study()
        first = self._first_trial.get(arch_id)
        if first is None:
            study.tell(trial, state=TrialState.FAIL)
            return
        original = study.get_trials(deepcopy=False)[first]
        if not original.state.is_finished():
            trial.set_user_attr(TWIN_OF, first)
            self._twins.setdefault(first, []).append(trial.number)
        elif original.state == TrialState.COMPLETE:
            study.tell(trial, original.values)
        else:
            study.tell(trial, state=original.state)

    def _nearest_unseen(self, decisions: Mapping[str, Any], rng: np.random.Generator) -> Candidate | None:
        """Breadth-first from ``decisions``, changing one decision at a time (labels a change brings in
        are drawn at random), the first architecture not seen; ``None`` after ``max_retries`` builds or
        when every reachable one is seen. Nearest first keeps what the sampler aimed at."""
        start = _Neighbourhood(decisions, rng)
        self.space.build(start)
        queue = deque([start])
        visited = {canonical_json(start.decisions)}
        builds = 0
        while queue:
            node = queue.popleft()
            moves = [(label, value) for label, values in node.alternatives.items() for value in values
                     if canonical_json(value) != canonical_json(node.decisions[label])]
            for i in rng.permutation(len(moves)):
                if builds >= self.max_retries:
                    return None
                label, value = moves[i]
                neighbour = _Neighbourhood({**node.decisions, label: value}, rng)
                builds += 1
                try:
                    architecture = self.space.build(neighbour)
                except Exception:  # a combination the space refuses: not a way through
                    continue
                key = canonical_json(neighbour.decisions)
                if key in visited:
                    continue
                visited.add(key)
                candidate = Candidate(architecture, dict(neighbour.decisions))
                if candidate.arch_id not in self._seen:
                    return candidate
                queue.append(neighbour)
        return None

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        from optuna.trial import TrialState

        self._seen.add(candidate.arch_id)
        number = self._pending.pop(self._trial_key(candidate), None)
        if number is None:
            return  # not proposed by this study (e.g. a result from before a restore without its trial)
        study = self.study()
        values = objective_values(result, self.objectives)
        for told in [number, *self._twins.pop(number, [])]:
            if values is not None and all(math.isfinite(v) for v in values):
                study.tell(told, values)
            else:
                study.tell(told, state=TrialState.PRUNED if result.status == PRUNED else TrialState.FAIL)

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
        self._first_trial, self._twins = {}, {}


class _Neighbourhood(AlternativesChooser):
    """Replays decisions (labels they lack drawn at random) and notes each decision's alternatives, for
    a walk that changes one decision at a time: every choice and every integer of a range of up to 64,
    else (and for floats) a few random draws."""

    def __init__(self, decisions: Mapping[str, Any], rng: np.random.Generator) -> None:
        super().__init__(decisions, fallback=RandomChooser(rng))
        self.rng = rng

    def _int_alternatives(self, name: str, low: int, high: int, step: int, log: bool) -> Sequence[Any]:
        values = range(low, high + 1, step)
        return list(values) if len(values) <= 64 else [
            RandomChooser(self.rng).suggest_int(name, low, high, step, log) for _ in range(4)]

    def _float_alternatives(self, name: str, low: float, high: float, step: float | None,
                            log: bool) -> Sequence[Any]:
        return [RandomChooser(self.rng).suggest_float(name, low, high, step, log) for _ in range(4)]
