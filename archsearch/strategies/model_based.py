"""Model-based Pareto search: a surrogate of past results picks, from many cheap proposals, the one
expected to add the most hypervolume.

What the NAS-benchmark literature found works at 50-200 evaluations, put together for categorical,
conditional spaces and several objectives:

- a short space-filling start (``n_initial``): each proposal the one of 48 random samples farthest from
  everything tried, in the cheap objectives when they are known, else in the decisions;
- each proposal is the best of a pool of random samples, mutations of the current front (one or
  two decisions changed: the neighbourhood of local search, which White et al. 2021 found hard to
  beat) and uniform crossovers of two front members (each decision from either: what evolution's
  recombination does, here ranked by the surrogate before anything is trained) that have not been
  evaluated, grown by one-decision mutations of its three best-ranked members and ranked again (one
  step of local search on the surrogate's ranking);
- the pool is ranked by the hypervolume that a surrogate of the results so far (decisions one-hot
  encoded) predicts each candidate would add: on alternate proposals by its mean prediction
  (exploitation) and by an upper confidence bound (exploration); measured, the alternation beat
  either alone on the tabular NAS problems. The surrogate is a Gaussian process with one length
  scale per input (``_gp``) or an extra-trees forest (bootstrapped trees as in SMAC's and BANANAS's
  ensembles), whichever ranks the results better held out (the GP's leave-one-out, the forest's
  out-of-bag predictions): neither was best on every benchmark problem;
- the surrogate sees, beside the decisions, how many blocks of each kind the architecture has and how
  many edges join each pair of kinds (the first step of a Weisfeiler-Lehman graph kernel, as in
  NAS-BOWL, Ru et al. 2021): what the decisions of a cell space say only indirectly, e.g. that a KAN
  reads the input. Measured: lower regret at 100 evaluations on every tabular problem, within noise at 50;
- objectives known before training (parameters, FLOPs: ``measure``) are used exactly, and only the
  rest is predicted, so training is spent where accuracy is uncertain at a size the front lacks;
- a small level on the front (architectures of one measured size, a handful of them) is finished once
  nearly all of it is evaluated: on a noisy table its front member is the luckiest of a few, which
  evaluating them all finds and a model of the mean does not (Monte Carlo tree search exhausts such
  subtrees, which is why it led on ``nas_digits``);
- candidates in flight count as the surrogate predicts them (the "kriging believer"), so several
  workers get different proposals;
- the run's constraints are checked on the measured metrics before a candidate is proposed, and
  candidates that did not complete (rejected by a constraint, crashed, diverged) teach a forest
  classifier of which proposals complete, and each predicted gain is weighed by its chance of
  completing (constrained expected improvement, Gardner et al. 2014); the random start steers away
  from them;
- trials a fidelity scheduler stopped early count with the epochs they reached as one more input, so
  partial learning curves inform the surrogate without being taken for final results.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.genome import Genome, canonical_json
from archsearch.pareto import LOG_SCALE_PREFIXES, hypervolume_improvement, non_dominated_mask
from archsearch.space import SearchSpace, choice_key
from archsearch.strategies._base import Strategy
from archsearch.strategies._common import Archive, crossover, mutate, neighbourhood, random_candidate
from archsearch.strategies._gp import GaussianProcess
from archsearch.trial import COMPLETE, FAILED, PRUNED, REJECTED, Candidate, EvalResult

REFERENCE = 1.1  # reference point in scaled objectives (the results span [0, 1])
BARREN_AFTER = 30  # consecutive mutations of a front member, all evaluated already, that leave it out of the pool
DRAWS_PER_MEMBER = 2  # draws per wanted pool member once the pool has any: late in a run most draws are
#                      candidates evaluated already, and each costs a build (was 4, with `max_retries` more)
LEVEL_CAP = 32  # distinct members past which a level is not small enough to finish (and is no longer tracked)
REFINED = 3  # best-ranked pool members that ``refine`` draws mutations around
MAX_GP_INPUTS = 48  # encoded columns above which `auto` keeps to the forest: a fit's cost grows with
#                     one length scale per column (the benchmark tables have 7-23; the hybrid space has
#                     hundreds, where 200 proposals took minutes of GP fits)


class ModelBased(Strategy):
    """Predicted hypervolume improvement over a pool of random samples and front mutations.

    Args:
        n_initial: space-filling proposals before the surrogate is used (spread over the measured
            objectives when ``measure`` is set, else over the decisions).
        pool_random: random samples in each proposal's pool.
        pool_mutations: mutations of front members in each proposal's pool (half with one decision
            changed, half with two).
        pool_crossovers: children of two front members in each proposal's pool (each decision from one
            parent or the other): a move of many decisions at once toward what several front members
            share, which one- and two-decision mutations make only step by step.
        n_trees: trees of the forests (the completion classifier; the surrogate when it is ``forest``).
        optimism: on every other proposal, predicted objectives are improved by this many standard
            deviations of the surrogate (the GP's, or the trees' disagreement: an upper confidence
            bound); the others use its mean. 0 turns it off.
        max_retries: draws, beyond four per wanted pool member, before the space counts as exhausted
            (``ask`` returns ``None``); once the pool has a member, drawing stops at ``DRAWS_PER_MEMBER``
            per wanted member and 20 more.
        use_pruned: learn from trials a fidelity scheduler stopped early (their partial results, with the
            epochs they reached); off, only complete trials are learned from.
        surrogate: ``gp`` (a Gaussian process), ``forest`` (extra trees) or ``auto`` (the default:
            whenever the GP fits its hyperparameters, the one whose held-out predictions rank the
            results better serves until the next fit; the forest alone above ``MAX_GP_INPUTS``
            encoded columns). The GP wins by far on ordered decisions, the forest on some conditional
            NAS tables (``benchmarks/RESULTS.md``).
        refine: one-decision mutations drawn around each of the ``REFINED`` best-ranked pool members,
            after which the grown pool is ranked again (0: the pool as drawn).
        finish_levels: on the proposals ranked by the mean, a pool member is proposed first if its level
            (the architectures whose measured objectives equal its own) is on the front and has at most
            this many members left unevaluated, once the pool's draws show the level's members (three
            draws per distinct member). 0 turns it off; it needs ``measure``.
        graph_features: the surrogate also sees ``graph_counts`` of each architecture (when the space
            builds genomes): block kinds and edges between kinds, counted.
        sweep: rounds of hill-climbing on the ranking after ``refine``: the best-ranked member's whole
            one-decision neighbourhood joins the pool and it is ranked again, until the best stays. Off
            by default: measured, it cuts the regret at 50 evaluations on ordered decisions (ZDT3) to a
            third, but raises it on three predicted objectives (DTLZ2) and gains nothing on the NAS
            tables; each round builds the neighbourhood (the sum over decisions of their values).
    """

    name = "model"

    def __init__(
        self,
        space: SearchSpace,
        objectives: dict[str, str] | None = None,
        seed: int = 0,
        n_initial: int = 8,
        pool_random: int = 48,
        pool_mutations: int = 48,
        n_trees: int = 32,
        optimism: float = 1.0,
        max_retries: int = 100,
        use_pruned: bool = True,
        surrogate: str = "auto",
        refine: int = 8,
        finish_levels: int = 3,
        graph_features: bool = True,
        sweep: int = 0,
        pool_crossovers: int = 16,
    ) -> None:
        super().__init__(space, objectives, seed)
        self.n_initial = n_initial
        self.pool_random = pool_random
        self.pool_mutations = pool_mutations
        self.n_trees = n_trees
        self.optimism = optimism
        self.max_retries = max_retries
        self.use_pruned = use_pruned
        self.surrogate = surrogate
        self.refine = refine
        self.finish_levels = finish_levels
        self.graph_features = graph_features
        self.sweep = sweep
        self.pool_crossovers = pool_crossovers
        self._graphs: dict[str, dict[str, float]] = {}  # canonical decisions -> graph_counts, of told and pending
        self._pool_graphs: dict[str, dict[str, float]] = {}  # the same, of the pool being ranked
        self._levels: dict[str, dict[str, Any]] = {}  # cheap objectives -> {"members", "draws", "large"}: see _note_level
        self._gp = GaussianProcess()
        self._chosen = "gp"  # with surrogate=auto: the surrogate that predicted better at the last fit
        self._archive = Archive(self.objectives)
        self._pending: dict[str, dict[str, Any]] = {}  # trial key -> decisions, asked and not yet told
        self._measured: dict[str, dict[str, float]] = {}  # canonical decisions -> what measure gave
        self._incomplete: list[dict[str, Any]] = []  # decisions of rejected or failed results
        self._pruned: list[dict[str, Any]] = []  # {"decisions", "values" (minimized), "fidelity"} of pruned trials
        self._fidelity: list[float] = []  # epochs behind each archive row (nan: not reported)
        self._last_forest: tuple[Any, Any, bool] | None = None  # (inputs, forest, out-of-bag): one fit per proposal
        self._barren: dict[int, int] = {}  # archive row -> its consecutive mutations that were evaluated already

    def options(self) -> dict[str, tuple[Any, str]]:
        return {**super().options(), "n_initial": (self.n_initial, "int>=1"),
                "pool_random": (self.pool_random, "int>=1"), "pool_mutations": (self.pool_mutations, "int>=0"),
                "n_trees": (self.n_trees, "int>=2"), "optimism": (self.optimism, "float>=0"),
                "max_retries": (self.max_retries, "int>=1"), "use_pruned": (self.use_pruned, "bool"),
                "surrogate": (self.surrogate, "one of auto|gp|forest"), "refine": (self.refine, "int>=0"),
                "finish_levels": (self.finish_levels, "int>=0"), "graph_features": (self.graph_features, "bool"),
                "sweep": (self.sweep, "int>=0"), "pool_crossovers": (self.pool_crossovers, "int>=0")}

    # -- proposals -----------------------------------------------------------------------------------

    def ask(self) -> Candidate | None:
        pool = self._pool()
        if not pool:
            return None
        completes = self._completes(pool)
        if not self._model_phase():
            choice = self._spread(pool, completes)
        else:
            order = self._best_predicted(pool, completes)
            around = self._around(pool, order[-REFINED:])
            if around:
                pool, completes, order = self._grown(pool, around)
            for _ in range(self.sweep):
                grown = self._climb(pool, int(order[-1]))
                if grown is None:
                    break
                pool, completes, order = grown
            choice = int(order[-1])
            finishing = self._finishing(pool) if self.finish_levels and not self._n_asked % 2 else set()
            if finishing:
                choice = next(int(i) for i in order[::-1] if int(i) in finishing)
        candidate = pool[choice]
        candidate.origin = f"{candidate.origin} (model-based, pool of {len(pool)})"
        proposed = self._propose(candidate)
        assert proposed is not None
        self._pending[self._trial_key(proposed)] = dict(proposed.decisions)
        self._remember_graph(proposed)
        return proposed

    def _climb(self, pool: list[Candidate], best: int) -> tuple[list[Candidate], np.ndarray, np.ndarray] | None:
        """One round of ``sweep``: the pool grown by the unevaluated one-decision neighbourhood of its
        best-ranked member, with completion chances and ranking; None once no neighbour ranks higher."""
        near = self._fresh(neighbourhood(self.space, pool[best].decisions, self.rng), pool)
        if not near:
            return None
        pool, completes, order = self._grown(pool, near)
        return None if int(order[-1]) == best else (pool, completes, order)

    def _grown(self, pool: list[Candidate], extra: list[Candidate]) -> tuple[list[Candidate], np.ndarray, np.ndarray]:
        """``pool`` and ``extra`` together, with their chances of completing and their ranking."""
        pool = [*pool, *extra]
        completes = self._completes(pool)
        return pool, completes, self._best_predicted(pool, completes)

    def _fresh(self, candidates: Iterable[Candidate], pool: list[Candidate]) -> list[Candidate]:
        """The distinct ``candidates`` that are neither evaluated nor in ``pool`` and that the constraints
        allow, in the order drawn."""
        known = {c.arch_id for c in pool}
        fresh: dict[str, Candidate] = {}
        for candidate in candidates:
            if candidate.arch_id not in self._seen and candidate.arch_id not in known and (
                    candidate.arch_id not in fresh and not self._violates(candidate)):
                fresh[candidate.arch_id] = candidate
        return list(fresh.values())

    def _pool(self) -> list[Candidate]:
        """Distinct unevaluated candidates the constraints allow: random samples, then mutations of front
        members. A member whose last ``BARREN_AFTER`` mutations were all evaluated already is left out:
        late in a run most draws were such duplicates, and building them was most of a proposal's cost."""
        found: dict[str, Candidate] = {}
        refused: dict[str, Candidate] = {}  # measured, and the constraints reject them

        def add(make: Callable[[], Candidate], wanted: int, note: Callable[[bool], None] | None = None) -> None:
            target = len(found) + wanted
            for draw in range(wanted * 4 + self.max_retries):
                if len(found) >= target or (draw >= DRAWS_PER_MEMBER * wanted + 20 and found):
                    return
                candidate = make()
                self._note_level(candidate)
                if note is not None:
                    note(candidate.arch_id in self._seen)
                if candidate.arch_id in self._seen or candidate.arch_id in found:
                    continue
                if self._violates(candidate):
                    refused.setdefault(candidate.arch_id, candidate)
                else:
                    found[candidate.arch_id] = candidate

        model_phase = self._model_phase()
        random_wanted = 1 if self._nothing_completes() else self.pool_random
        add(lambda: random_candidate(self.space, self.rng), random_wanted)
        front = [m for m in (self._archive.front().tolist() if model_phase else [])
                 if self._barren.get(m, 0) < BARREN_AFTER]
        if front and self.pool_mutations:
            parent = [front[0]]

            def neighbour() -> Candidate:
                parent[0] = front[int(self.rng.integers(len(front)))]
                return mutate(self.space, self._archive.decisions[parent[0]], self.rng, 1 + int(self.rng.integers(2)))

            def note(evaluated: bool) -> None:
                self._barren[parent[0]] = self._barren.get(parent[0], 0) + 1 if evaluated else 0

            add(neighbour, self.pool_mutations, note)
        if len(front) > 1 and self.pool_crossovers:
            def child() -> Candidate:
                a, b = self.rng.choice(len(front), size=2, replace=False)
                return crossover(self.space, self._archive.decisions[front[int(a)]],
                                 self._archive.decisions[front[int(b)]], self.rng)

            add(child, self.pool_crossovers)
        return list(found.values()) or list(refused.values())  # none allowed: the evaluator says why

    def _around(self, pool: list[Candidate], best: np.ndarray) -> list[Candidate]:
        """Unevaluated one-decision mutations of the pool's best-ranked members (``refine`` draws around
        each): one step of local search on the surrogate's ranking, which random samples and front
        mutations reach only by chance (ZDT, 20 seeds: regret 0.0009 at 50 evaluations, was 0.012)."""
        return self._fresh((mutate(self.space, pool[int(member)].decisions, self.rng, 1)
                            for member in best for _ in range(self.refine)), pool)

    def _level_key(self, measured: Mapping[str, float]) -> str:
        """The objectives ``measure`` gives, as a key: architectures with equal keys form a level."""
        return canonical_json([measured.get(k) for k in self._cheap_objectives()])

    def _tracks_levels(self) -> bool:
        return bool(self.finish_levels and self.measure is not None and self._cheap_objectives())

    def _note_level(self, candidate: Candidate, evaluated: bool = False) -> None:
        """Counts a draw of ``candidate`` towards its level (architectures of equal cheap objectives). Only
        levels with an evaluated member are counted (only they can be on the front), and a level past
        ``LEVEL_CAP`` members is no longer small: its members are dropped, which bounds the state."""
        if not self._tracks_levels():
            return
        key = self._level_key(self._measure_candidate(candidate))
        if evaluated:
            self._levels.setdefault(key, {"members": set(), "draws": 0, "large": False})
        level = self._levels.get(key)
        if level is None or level["large"]:
            return
        level["members"].add(candidate.arch_id)
        level["draws"] += 0 if evaluated else 1
        if len(level["members"]) > LEVEL_CAP:
            level.update(members=set(), large=True)

    def _finishing(self, pool: list[Candidate]) -> set[int]:
        """Pool members of a small level on the front that is nearly all evaluated: its distinct members
        stopped growing (three draws per member) and at most ``finish_levels`` are left. On noisy tables
        the front member of a six-architecture level is the best of six, which exhausting the level finds
        and a model of the mean does not (``benchmarks/front_levels.py``)."""
        if self.measure is None or not self._levels:
            return set()
        front_levels = {self._level_key(self._measure(self._archive.decisions[m]))
                        for m in self._archive.front().tolist()}
        out = set()
        for i, candidate in enumerate(pool):
            key = self._level_key(self._measure_candidate(candidate))
            level = self._levels.get(key)
            if key not in front_levels or level is None or level["large"]:
                continue
            left = sum(1 for member in level["members"] if member not in self._seen)
            if 1 <= left <= self.finish_levels and level["draws"] >= 3 * len(level["members"]):
                out.add(i)
        return out

    def _model_phase(self) -> bool:
        """Enough results to model: ``n_initial`` of them, pruned ones included, and one complete."""
        return len(self._archive) >= 1 and len(self._archive) + len(self._pruned) >= self.n_initial

    def _violates(self, candidate: Candidate) -> bool:
        """Whether the run's constraints reject what ``measure`` knows of the candidate. After a few
        rejections and no completed result the space may have nothing they allow: measuring hundreds of
        candidates per proposal would then only slow the end of the run, so the check stops."""
        return bool(self.violations and self.measure and not self._nothing_completes()
                    and self.violations(self._measure_candidate(candidate)))

    def _nothing_completes(self) -> bool:
        """Several results and not one completed: choosing among many proposals is then wasted effort."""
        return not len(self._archive) and len(self._incomplete) >= 3

    def _spread(self, pool: list[Candidate], completes: np.ndarray) -> int:
        """Among the pool members likely to complete, the one farthest (in scaled measured objectives,
        else in decisions) from everything evaluated, in flight or not completed."""
        names = self._cheap_objectives()
        taken_decisions = [*self._archive.decisions, *self._pending.values(), *self._incomplete]
        likely = np.flatnonzero(completes >= 0.5)
        eligible = likely if len(likely) else np.arange(len(pool))
        if not taken_decisions:
            return int(eligible[self.rng.integers(len(eligible))])
        if names:
            known = [self._measure(d) for d in taken_decisions]
            values = np.array([[self._measure_candidate(c).get(k, math.nan) for k in names] for c in pool])
            taken = np.array([[m.get(k, math.nan) for k in names] for m in known]).reshape(len(known), len(names))
            scaled_pool, scaled_taken = _scale_together(values, taken, names)
        else:
            rows = [*(c.decisions for c in pool), *taken_decisions]
            encoded = one_hot(rows)  # numbers in their own units: measured better than scaled
            scaled_pool, scaled_taken = encoded[:len(pool)], encoded[len(pool):]
        distance = np.nan_to_num(np.abs(scaled_pool[:, None, :] - scaled_taken[None, :, :]), nan=0.0).sum(axis=2)
        nearest = distance.min(axis=1)
        return int(eligible[np.argmax(nearest[eligible])])

    def _completes(self, pool: list[Candidate]) -> np.ndarray:
        """Each pool member's chance of completing, from a forest classifier of the results so far
        (decisions and measured metrics: what constraints are about); 1 until both outcomes are known."""
        n_complete, n_incomplete = len(self._archive), len(self._incomplete)
        if not n_incomplete or not n_complete:
            return np.ones(len(pool))
        from sklearn.ensemble import ExtraTreesClassifier

        told = [*self._archive.decisions, *self._incomplete]
        rows = [*told, *(c.decisions for c in pool)]
        x = np.hstack([one_hot(rows), self._measured_features(rows)])
        labels = np.r_[np.ones(n_complete), np.zeros(n_incomplete)]
        classifier = ExtraTreesClassifier(n_estimators=self.n_trees, max_features=0.5,
                                          random_state=self._derived_seed(n_complete + n_incomplete) % 2**31)
        classifier.fit(x[:len(told)], labels)
        return classifier.predict_proba(x[len(told):])[:, list(classifier.classes_).index(1.0)]

    def _measured_features(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """log10 of every metric ``measure`` gives (columns of the same metric across rows; 0 absent)."""
        if self.measure is None:
            return np.zeros((len(rows), 0))
        measured = [self._measure(d) for d in rows]
        names = sorted({k for m in measured for k in m})
        out = np.array([[m.get(k, math.nan) for k in names] for m in measured]).reshape(len(rows), len(names))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.sign(out) * np.log10(1.0 + np.abs(out))
        return np.nan_to_num(out, nan=-1.0)

    def _best_predicted(self, pool: list[Candidate], completes: np.ndarray) -> np.ndarray:
        """Pool indices, the one the surrogate (and ``measure``) expects to add the most hypervolume last."""
        names = list(self.objectives)
        cheap = [k for k in self._cheap_objectives() if k in names]
        learned = [i for i, k in enumerate(names) if k not in cheap]
        y = self._archive.points()  # minimization space
        pending = list(self._pending.values())
        predicted = np.zeros((len(pool), len(names)))
        pending_values = np.zeros((len(pending), len(names)))
        if learned:
            if self.graph_features:
                self._pool_graphs = {canonical_json(c.decisions): graph_counts(c.architecture) for c in pool}
            x_told, y_told, x_asked = self._training_rows([*(c.decisions for c in pool), *pending], y)
            everything, spread = self._predict(x_told, y_told[:, learned], x_asked)
            if self.optimism and self._n_asked % 2:  # every other proposal: an optimistic bound
                everything[:len(pool)] -= self.optimism * spread[:len(pool)]
            predicted[:, learned], pending_values[:, learned] = np.split(everything, [len(pool)])
        for i, k in enumerate(names):
            if k in cheap:
                sign = -1.0 if self.objectives[k] == "maximize" else 1.0
                predicted[:, i] = [sign * self._measure_candidate(c).get(k, math.nan) for c in pool]
                pending_values[:, i] = [sign * self._measure(d).get(k, math.nan) for d in pending]
        return self._rank(predicted, y, pending_values, names, completes)

    def _graph_columns(self, rows: Sequence[Mapping[str, Any]], n_told: int) -> np.ndarray:
        """Counts of block kinds and of edges between kinds of each row's architecture (``graph_counts``):
        the columns that vary across the first ``n_told`` rows (the results). Others teach the surrogate
        nothing, and columns that came and went with the pool would change the GP's inputs, and refit
        it, at every proposal."""
        counts = [self._graph_of(d) for d in rows]
        names = sorted({k for c in counts[:n_told] for k in c})
        out = np.array([[c.get(k, 0.0) for k in names] for c in counts]).reshape(len(rows), len(names))
        return out[:, np.ptp(out[:n_told], axis=0) > 0] if n_told else out[:, :0]

    def _graph_of(self, decisions: Mapping[str, Any]) -> dict[str, float]:
        """``graph_counts`` of a told, pending or pool member's architecture (rebuilt only on a miss: after
        a resume)."""
        key = canonical_json(decisions)
        found = self._graphs.get(key, self._pool_graphs.get(key))
        if found is None:
            found = self._graphs[key] = graph_counts(self.space.replay(decisions))
        return found

    def _remember_graph(self, candidate: Candidate) -> None:
        if self.graph_features:
            self._graphs.setdefault(canonical_json(candidate.decisions), graph_counts(candidate.architecture))

    def _predict(self, x_told: np.ndarray, y_told: np.ndarray, x_asked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The surrogate's mean and spread (the GP's standard deviation, or the trees' disagreement) of
        each learned objective at ``x_asked``. With ``auto``, whenever the GP fits its hyperparameters
        the forest is fit too, and the one whose held-out predictions (the GP's leave-one-out, the
        forest's out-of-bag) rank the results better serves until the next fit."""
        use = self.surrogate
        if use == "auto" and x_told.shape[1] > MAX_GP_INPUTS:
            use = "forest"
        if use == "auto":
            if self._gp.refit_due(x_told, y_told):
                gp_prediction = self._gp.predict(x_told, y_told, x_asked)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # rows no tree left out: nan, counted as unknown
                    forest = self._forest(x_told, y_told, out_of_bag=True)
                self._chosen = "gp" if _rank_agreement(self._gp.held_out, y_told) >= _rank_agreement(
                    forest.oob_prediction_.reshape(len(y_told), -1), y_told) else "forest"
                if self._chosen == "gp":
                    return gp_prediction
                return _tree_spread(forest, x_asked)
            use = self._chosen
        if use == "gp":
            return self._gp.predict(x_told, y_told, x_asked)
        return _tree_spread(self._forest(x_told, y_told), x_asked)

    def _training_rows(self, asked: list[Mapping[str, Any]], y: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:
        """Encoded results, their values, and the encoded proposals to predict. Pruned trials (stopped
        early by the scheduler) join the results with the epochs they reached as one more column, and
        proposals are predicted at the epochs of complete trials: the forest learns from partial
        learning curves without mistaking them for final results."""
        told = [*self._archive.decisions, *(p["decisions"] for p in self._pruned)]
        rows = [*told, *asked]
        x = one_hot(rows)
        if self.graph_features:
            x = np.hstack([x, self._graph_columns(rows, len(told))])
        if not self._pruned:
            return x[:len(y)], y, x[len(y):]
        complete_fidelity = np.array(self._fidelity, dtype=float)
        top = float(np.nanmax(complete_fidelity)) if np.isfinite(complete_fidelity).any() else max(
            float(p["fidelity"]) for p in self._pruned)
        fidelity = np.r_[np.nan_to_num(complete_fidelity, nan=top), [float(p["fidelity"]) for p in self._pruned],
                         np.full(len(asked), top)]
        x = np.hstack([x, fidelity[:, None]])
        values = np.vstack([y, np.array([p["values"] for p in self._pruned], dtype=float)])
        return x[:len(told)], values, x[len(told):]

    def _rank(self, predicted: np.ndarray, y: np.ndarray, pending: np.ndarray, names: list[str],
              completes: np.ndarray) -> np.ndarray:
        """Pool indices in rank order, the best last: candidates likely to complete (all, if none is)
        first, then by the hypervolume their prediction adds to the front (in flight included), weighed
        by their chance of completing; among those adding none, by closeness to the front.

        Likely ones first: a GP is most uncertain, so most optimistic, where nothing completed, and a
        weighed gain alone let it propose 5-10 failing candidates in 40 where the forest proposed 1-4.
        The surrogate's mean (or bound), not an expected improvement: measured on the benchmarks, the
        expectation chased the front's edges and noisy small models (over the forest's trees), and
        was worse on nas_digits over the GP's normal (0.0184 / 0.0127 against 0.0150 / 0.0103).
        """
        transform = _Scale(y, names)
        scaled = np.nan_to_num(transform(predicted), nan=REFERENCE)  # an unmeasurable value adds nothing
        known = transform(np.vstack([y, pending]) if len(pending) else y)
        known = known[~np.isnan(known).any(axis=1)]
        front = known[non_dominated_mask(known)]
        gains = hypervolume_improvement(scaled, front, np.full(len(names), REFERENCE))
        closeness = -np.min(np.linalg.norm(scaled[:, None, :] - front[None, :, :], axis=2), axis=1)
        return np.lexsort((closeness, gains * completes, completes >= 0.5))

    def _forest(self, x: np.ndarray, y: np.ndarray, out_of_bag: bool = False) -> Any:
        """An extra-trees forest of the results: bootstrapped, half the columns per split, seeded by the
        number of results so that proposals depend on the history alone."""
        from sklearn.ensemble import ExtraTreesRegressor

        key = (x.shape, x.tobytes(), y.tobytes(), len(self._archive))
        if self._last_forest is not None and self._last_forest[0] == key and (  # the pool's second ranking
                self._last_forest[2] or not out_of_bag):  # out-of-bag scores change no tree
            return self._last_forest[1]
        forest = ExtraTreesRegressor(n_estimators=self.n_trees, bootstrap=True, max_features=0.5, oob_score=out_of_bag,
                                     random_state=self._derived_seed(len(self._archive)) % 2**31)
        forest.fit(x, y if y.shape[1] > 1 else y[:, 0])
        self._last_forest = (key, forest, out_of_bag)
        return forest

    # -- measured (cheap) objectives ------------------------------------------------------------------

    def _cheap_objectives(self) -> list[str]:
        """Objectives that ``measure`` gives without training (learned from its first answer)."""
        if self.measure is None:
            return []
        probe = next(iter(self._measured.values()), None)
        if probe is None:
            probe = self._measure_candidate(random_candidate(self.space, np.random.default_rng(self.seed)))
        return [k for k in self.objectives if k in probe]

    def _measure_candidate(self, candidate: Candidate) -> dict[str, float]:
        return self._measure(candidate.decisions, candidate.architecture)

    def _measure(self, decisions: Mapping[str, Any], architecture: Any = None) -> dict[str, float]:
        """What ``measure`` gives for ``decisions``, cached; without ``architecture`` (recorded decisions)
        it is rebuilt, only on a miss."""
        key = canonical_json(decisions)
        if key not in self._measured:
            self._measured[key] = self._call_measure(self.space.replay(decisions) if architecture is None
                                                     else architecture)
        return self._measured[key]

    # -- results -------------------------------------------------------------------------------------

    def _propose_queued(self, decisions: Mapping[str, Any], origin: str) -> Candidate | None:
        candidate = super()._propose_queued(decisions, origin)
        if candidate is not None:  # in flight like a proposal of its own
            self._pending[self._trial_key(candidate)] = dict(candidate.decisions)
            self._remember_graph(candidate)
        return candidate

    def tell(self, candidate: Candidate, result: EvalResult) -> None:
        self._seen.add(candidate.arch_id)
        self._pending.pop(self._trial_key(candidate), None)
        fidelity = _fidelity_of(result)
        self._remember_graph(candidate)
        if result.status == COMPLETE:
            if self._archive.add(candidate, result) is not None:
                self._fidelity.append(fidelity)
                self._note_level(candidate, evaluated=True)
        elif result.status == PRUNED and self.use_pruned:
            values = self._archive.minimized_metrics(result.metrics)  # its values at the rung
            if values is not None and math.isfinite(fidelity):
                self._pruned.append({"decisions": dict(candidate.decisions), "values": values, "fidelity": fidelity})
        elif result.status in (REJECTED, FAILED):
            self._incomplete.append(dict(candidate.decisions))

    def _own_state(self) -> dict[str, Any]:
        return {"archive": self._archive.state_dict(), "pending": self._pending, "incomplete": self._incomplete,
                "pruned": self._pruned, "fidelity": [f if math.isfinite(f) else None for f in self._fidelity],
                "gp": self._gp.state_dict(), "chosen": self._chosen,
                "barren": {str(k): v for k, v in self._barren.items()},
                "levels": {k: {**v, "members": sorted(v["members"])} for k, v in self._levels.items()}}

    def _load_own_state(self, state: Mapping[str, Any]) -> None:
        self._archive.load_state_dict(state["archive"])
        self._pending = {k: dict(v) for k, v in state.get("pending", {}).items()}
        self._incomplete = [dict(d) for d in state.get("incomplete", [])]
        self._pruned = [dict(p) for p in state.get("pruned", [])]
        self._fidelity = [math.nan if f is None else float(f) for f in state.get("fidelity", [None] * len(self._archive))]
        self._gp.load_state_dict(state.get("gp", {}))
        self._chosen = str(state.get("chosen", "gp"))
        self._barren = {int(k): int(v) for k, v in state.get("barren", {}).items()}
        self._levels = {k: {"members": set(v["members"]), "draws": int(v["draws"]), "large": bool(v["large"])}
                        for k, v in state.get("levels", {}).items()}


def _tree_spread(forest: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forest's mean and its trees' disagreement at ``x``, one column per target (``x`` converted
    once, as each tree would: checking it per tree was most of the prediction's cost)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    trees = np.stack([t.predict(x, check_input=False).reshape(len(x), -1) for t in forest.estimators_])
    return trees.mean(axis=0), trees.std(axis=0)


def _rank_agreement(held_out: np.ndarray, y: np.ndarray) -> float:
    """Mean Spearman correlation of held-out predictions with the results, over targets (nan counts -1:
    a prediction that is constant, or rows the forest's bootstrap never left out)."""
    from scipy.stats import spearmanr

    scores = []
    for column in range(y.shape[1]):
        known = np.isfinite(held_out[:, column])
        a, b = held_out[known, column], y[known, column]
        score = spearmanr(a, b).statistic if len(a) > 2 and np.ptp(a) > 0 and np.ptp(b) > 0 else math.nan
        scores.append(float(score) if np.isfinite(score) else -1.0)
    return float(np.mean(scores))


def _fidelity_of(result: EvalResult) -> float:
    """Epochs behind a result: what the scheduler reported, else what the evaluator counted; nan if neither."""
    for value in (result.info.get("fidelity"), result.metrics.get("epochs_trained")):
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return math.nan


def graph_counts(architecture: Any) -> dict[str, float]:
    """How many blocks of each kind a genome has and how many edges join each pair of kinds (the first
    step of a Weisfeiler-Lehman graph kernel, as in NAS-BOWL): what decisions of a cell space do not say
    directly, e.g. that a KAN reads the input. Anything but a genome has none."""
    if not isinstance(architecture, Genome):
        return {}
    graph = architecture.graph
    labels = {node: str(node) if spec is None else spec.kind for node, spec in graph.nodes(data="spec")}
    counts = Counter(labels.values())
    counts.update(f"{labels[source]}>{labels[target]}" for source, target in graph.edges)
    return {key: float(n) for key, n in counts.items()}


def one_hot(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Decisions -> rows: a number as itself, any other value one-hot (levels in the order first seen).
    A decision absent from some rows (a conditional one) reads as a sentinel below every value, which
    trees separate cleanly. One pass per label: the results are encoded at every proposal."""
    blocks = []
    for label in dict.fromkeys(label for decisions in rows for label in decisions):  # first seen, first
        present = [i for i, decisions in enumerate(rows) if label in decisions]
        values = [rows[i][label] for i in present]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            numbers = [float(v) for v in values]
            column = np.full(len(rows), min(numbers) - 1.0)
            column[present] = numbers
            blocks.append(column[:, None])
        else:
            keys = [choice_key(v) for v in values]
            levels = {key: j for j, key in enumerate(dict.fromkeys(keys))}
            block = np.zeros((len(rows), len(levels)))
            block[present, [levels[key] for key in keys]] = 1.0
            blocks.append(block)
    return np.hstack(blocks) if blocks else np.zeros((len(rows), 1))


class _Scale:
    """Minimization values -> the scale the acquisition works in: size-like objectives (parameters,
    FLOPs, latency) in log10, then each objective over the results' range, so the front spans [0, 1]."""

    def __init__(self, y: np.ndarray, names: list[str]) -> None:
        self.log = np.array([n.startswith(LOG_SCALE_PREFIXES) and bool(np.all(y[:, i] > 0)) if len(y) else False
                             for i, n in enumerate(names)])
        base = self._log(y)
        self.low = np.nanmin(base, axis=0) if len(base) else np.zeros(len(names))
        span = np.nanmax(base, axis=0) - self.low if len(base) else np.ones(len(names))
        self.span = np.where(span > 0, span, 1.0)

    def _log(self, values: np.ndarray) -> np.ndarray:
        out = np.array(values, dtype=float, copy=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[..., self.log] = np.log10(np.where(out[..., self.log] > 0, out[..., self.log], np.nan))
        return out

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return (self._log(values) - self.low) / self.span


def _scale_together(values: np.ndarray, taken: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    both = np.vstack([values, taken]) if len(taken) else values
    scale = _Scale(both, names)
    return scale(values), scale(taken) if len(taken) else taken
