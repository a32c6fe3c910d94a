"""Equations of the Feynman symbolic-regression benchmark (Udrescu & Tegmark, "AI Feynman", 2020).

Each equation from the Feynman Lectures on Physics is written here from its formula, with its
variables in the benchmark's order and sampled uniformly in the benchmark's ranges. Most variables,
physical constants included (G, c, epsilon, kb and h are variables in the benchmark), are uniform in
[1, 5]. Exceptions, as in the benchmark: [1, 3] for I.6.2a / I.6.2 / I.6.2b, I.24.6, I.50.26,
II.6.15a and p_d, Ef, t, h of III.9.52; relativistic equations keep v (u) in [1, 2] below c in
[3, 10] (I.15.3x: c in [3, 20], x in [5, 10], t in [1, 2]); I.9.18 puts m1, m2, G, x2, y2, z2 in
[1, 2] and x1, y1, z1 in [3, 4]; I.18.12 lets theta start at 0; I.26.2 takes n in [0, 1]; II.11.27
takes n and alpha in [0, 1], epsilon and Ef in [1, 2]; II.24.17 takes omega in [4, 6], c in [1, 2]
and d in [2, 4], so the root stays real. :data:`EQUATIONS` lists every range.
"""

from __future__ import annotations

import numpy as np
from numpy import arcsin, cos, exp, log, pi, sin, sqrt, tanh

from archsearch.tasks._base import Task, TaskError
from archsearch.tasks.function_fitting import Function, sample_function_task


def _eq(formula: str, variables: str, fn) -> Function:
    """``variables`` is "name low high, ..." in the benchmark's order; ``fn`` takes them positionally."""
    names, ranges = [], []
    for part in variables.split(","):
        name, low, high = part.split()
        names.append(name)
        ranges.append((float(low), float(high)))
    return Function(formula, tuple(ranges), lambda x: fn(*x.T), tuple(names))


def _same(names: str, low: float, high: float) -> str:
    return ", ".join(f"{n} {low} {high}" for n in names.split())


EQUATIONS: dict[str, Function] = {
    "I.6.2a": _eq("exp(-theta^2/2) / sqrt(2 pi)", _same("theta", 1, 3),
                  lambda th: exp(-th ** 2 / 2) / sqrt(2 * pi)),
    "I.6.2": _eq("exp(-(theta/sigma)^2/2) / (sqrt(2 pi) sigma)", _same("sigma theta", 1, 3),
                 lambda s, th: exp(-(th / s) ** 2 / 2) / (sqrt(2 * pi) * s)),
    "I.6.2b": _eq("exp(-((theta - theta1)/sigma)^2/2) / (sqrt(2 pi) sigma)", _same("sigma theta theta1", 1, 3),
                  lambda s, th, th1: exp(-((th - th1) / s) ** 2 / 2) / (sqrt(2 * pi) * s)),
    "I.8.14": _eq("sqrt((x2 - x1)^2 + (y2 - y1)^2)", _same("x1 x2 y1 y2", 1, 5),
                  lambda x1, x2, y1, y2: sqrt((x2 - x1) ** 2 + (y2 - y1) ** 2)),
    "I.9.18": _eq("G m1 m2 / ((x2 - x1)^2 + (y2 - y1)^2 + (z2 - z1)^2)",
                  "m1 1 2, m2 1 2, G 1 2, x1 3 4, x2 1 2, y1 3 4, y2 1 2, z1 3 4, z2 1 2",
                  lambda m1, m2, g, x1, x2, y1, y2, z1, z2:
                  g * m1 * m2 / ((x2 - x1) ** 2 + (y2 - y1) ** 2 + (z2 - z1) ** 2)),
    "I.10.7": _eq("m_0 / sqrt(1 - v^2/c^2)", "m_0 1 5, v 1 2, c 3 10",
                  lambda m0, v, c: m0 / sqrt(1 - v ** 2 / c ** 2)),
    "I.11.19": _eq("x1 y1 + x2 y2 + x3 y3", _same("x1 x2 x3 y1 y2 y3", 1, 5),
                   lambda x1, x2, x3, y1, y2, y3: x1 * y1 + x2 * y2 + x3 * y3),
    "I.12.1": _eq("mu Nn", _same("mu Nn", 1, 5), lambda mu, nn: mu * nn),
    "I.12.2": _eq("q1 q2 r / (4 pi epsilon r^3)", _same("q1 q2 epsilon r", 1, 5),
                  lambda q1, q2, eps, r: q1 * q2 * r / (4 * pi * eps * r ** 3)),
    "I.12.11": _eq("q (Ef + B v sin(theta))", _same("q Ef B v theta", 1, 5),
                   lambda q, ef, b, v, th: q * (ef + b * v * sin(th))),
    "I.13.4": _eq("1/2 m (v^2 + u^2 + w^2)", _same("m v u w", 1, 5),
                  lambda m, v, u, w: 0.5 * m * (v ** 2 + u ** 2 + w ** 2)),
    "I.13.12": _eq("G m1 m2 (1/r2 - 1/r1)", _same("m1 m2 r1 r2 G", 1, 5),
                   lambda m1, m2, r1, r2, g: g * m1 * m2 * (1 / r2 - 1 / r1)),
    "I.14.3": _eq("m g z", _same("m g z", 1, 5), lambda m, g, z: m * g * z),
    "I.14.4": _eq("1/2 k_spring x^2", _same("k_spring x", 1, 5), lambda k, x: 0.5 * k * x ** 2),
    "I.15.3x": _eq("(x - u t) / sqrt(1 - u^2/c^2)", "x 5 10, u 1 2, c 3 20, t 1 2",
                   lambda x, u, c, t: (x - u * t) / sqrt(1 - u ** 2 / c ** 2)),
    "I.16.6": _eq("(u + v) / (1 + u v / c^2)", _same("c v u", 1, 5),
                  lambda c, v, u: (u + v) / (1 + u * v / c ** 2)),
    "I.18.4": _eq("(m1 r1 + m2 r2) / (m1 + m2)", _same("m1 m2 r1 r2", 1, 5),
                  lambda m1, m2, r1, r2: (m1 * r1 + m2 * r2) / (m1 + m2)),
    "I.18.12": _eq("r F sin(theta)", "r 1 5, F 1 5, theta 0 5", lambda r, f, th: r * f * sin(th)),
    "I.24.6": _eq("1/2 m (omega^2 + omega_0^2) 1/2 x^2", _same("m omega omega_0 x", 1, 3),
                  lambda m, w, w0, x: 0.25 * m * (w ** 2 + w0 ** 2) * x ** 2),
    "I.26.2": _eq("arcsin(n sin(theta2))", "n 0 1, theta2 1 5", lambda n, th2: arcsin(n * sin(th2))),
    "I.27.6": _eq("1 / (1/d1 + n/d2)", _same("d1 d2 n", 1, 5), lambda d1, d2, n: 1 / (1 / d1 + n / d2)),
    "I.29.16": _eq("sqrt(x1^2 + x2^2 - 2 x1 x2 cos(theta1 - theta2))", _same("x1 x2 theta1 theta2", 1, 5),
                   lambda x1, x2, t1, t2: sqrt(x1 ** 2 + x2 ** 2 - 2 * x1 * x2 * cos(t1 - t2))),
    "I.30.3": _eq("Int_0 sin^2(n theta/2) / sin^2(theta/2)", _same("Int_0 theta n", 1, 5),
                  lambda i0, th, n: i0 * sin(n * th / 2) ** 2 / sin(th / 2) ** 2),
    "I.37.4": _eq("I1 + I2 + 2 sqrt(I1 I2) cos(delta)", _same("I1 I2 delta", 1, 5),
                  lambda i1, i2, d: i1 + i2 + 2 * sqrt(i1 * i2) * cos(d)),
    "I.39.22": _eq("n kb T / V", _same("n T V kb", 1, 5), lambda n, t, v, kb: n * kb * t / v),
    "I.40.1": _eq("n_0 exp(-m g x / (kb T))", _same("n_0 m x T g kb", 1, 5),
                  lambda n0, m, x, t, g, kb: n0 * exp(-m * g * x / (kb * t))),
    "I.44.4": _eq("n kb T ln(V2/V1)", _same("n kb T V1 V2", 1, 5),
                  lambda n, kb, t, v1, v2: n * kb * t * log(v2 / v1)),
    "I.50.26": _eq("x1 (cos(omega t) + alpha cos^2(omega t))", _same("x1 omega t alpha", 1, 3),
                   lambda x1, w, t, a: x1 * (cos(w * t) + a * cos(w * t) ** 2)),
    "II.6.15a": _eq("p_d / (4 pi epsilon) 3 z / r^5 sqrt(x^2 + y^2)", _same("epsilon p_d r x y z", 1, 3),
                    lambda eps, p, r, x, y, z: p / (4 * pi * eps) * 3 * z / r ** 5 * sqrt(x ** 2 + y ** 2)),
    "II.11.27": _eq("n alpha / (1 - n alpha/3) epsilon Ef", "n 0 1, alpha 0 1, epsilon 1 2, Ef 1 2",
                    lambda n, a, eps, ef: n * a / (1 - n * a / 3) * eps * ef),
    "II.24.17": _eq("sqrt(omega^2/c^2 - pi^2/d^2)", "omega 4 6, c 1 2, d 2 4",
                    lambda w, c, d: sqrt(w ** 2 / c ** 2 - pi ** 2 / d ** 2)),
    "II.35.21": _eq("n_rho mom tanh(mom B / (kb T))", _same("n_rho mom B kb T", 1, 5),
                    lambda n, mom, b, kb, t: n * mom * tanh(mom * b / (kb * t))),
    "III.4.33": _eq("(h/(2 pi)) omega / (exp((h/(2 pi)) omega / (kb T)) - 1)", _same("h omega kb T", 1, 5),
                    lambda h, w, kb, t: (h / (2 * pi)) * w / (exp((h / (2 * pi)) * w / (kb * t)) - 1)),
    "III.9.52": _eq("(p_d Ef t / (h/(2 pi))) sin^2((omega - omega_0) t/2) / ((omega - omega_0) t/2)^2",
                    f"{_same('p_d Ef t h', 1, 3)}, {_same('omega omega_0', 1, 5)}",
                    lambda p, ef, t, h, w, w0: (p * ef * t / (h / (2 * pi)))
                    * np.sinc((w - w0) * t / 2 / pi) ** 2),
    "III.17.37": _eq("beta (1 + alpha cos(theta))", _same("beta alpha theta", 1, 5),
                     lambda b, a, th: b * (1 + a * cos(th))),
}


def feynman(seed: int = 0, equation: str = "I.6.2", n_samples: int = 1000, noise: float = 0.0,
            val_fraction: float = 0.2, test_fraction: float = 0.2) -> Task:
    """A Feynman-benchmark equation (a key of :data:`EQUATIONS`) as a regression task.

    Args:
        seed: seeds both the sampled inputs and the split.
        equation: the benchmark's equation id, e.g. ``"I.6.2"`` or ``"II.11.27"``.
        n_samples: points drawn in all, before the train/val/test split.
        noise: Gaussian noise standard deviation relative to the target's standard deviation.
    """
    equation = str(equation)
    if equation not in EQUATIONS:
        raise TaskError(f"unknown Feynman equation {equation!r}; valid: {', '.join(EQUATIONS)}")
    return sample_function_task("feynman", EQUATIONS[equation], seed=seed, n_samples=n_samples, noise=noise,
                                val_fraction=val_fraction, test_fraction=test_fraction,
                                info={"equation": equation})
