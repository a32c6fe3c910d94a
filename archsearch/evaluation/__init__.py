"""Evaluators: stateless, picklable objects with ``evaluate(architecture, fidelity) -> EvalResult``."""

from archsearch.evaluation.function import FunctionEvaluator

__all__ = ["FunctionEvaluator"]
