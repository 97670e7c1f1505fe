"""Learning-rate policies with DIGITS' (Caffe's) formulas.

``iteration`` counts optimizer steps from 0; ``max_iter`` is the total number of
steps of the run. DIGITS gives the step size and step values as a percentage of
the training, as here.

=========  ==========================================================
fixed      base_lr
step       base_lr · gamma ^ floor(iter / stepsize)
multistep  base_lr · gamma ^ (number of stepvalues ≤ iter)
exp        base_lr · gamma ^ iter
inv        base_lr · (1 + gamma · iter) ^ (−power)
poly       base_lr · (1 − iter / max_iter) ^ power
sigmoid    base_lr / (1 + exp(−gamma · (iter − stepsize)))
=========  ==========================================================
"""

from __future__ import annotations

import math

POLICIES = ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")


def learning_rate(
    policy: str, iteration: int, *, base_lr: float, max_iter: int, gamma: float = 0.1,
    power: float = 1.0, step_size: float = 33.0, step_values: tuple[float, ...] = (50.0,),
) -> float:  # fmt: skip
    """The learning rate at ``iteration``; ``step_size`` and ``step_values`` in % of max_iter."""
    stepsize = max(1, round(max_iter * step_size / 100.0))
    if policy == "fixed":
        return base_lr
    if policy == "step":
        return base_lr * gamma ** (iteration // stepsize)
    if policy == "multistep":
        passed = sum(1 for v in step_values if iteration >= round(max_iter * v / 100.0))
        return base_lr * gamma**passed
    if policy == "exp":
        return base_lr * gamma**iteration
    if policy == "inv":
        return base_lr * (1 + gamma * iteration) ** (-power)
    if policy == "poly":
        return base_lr * max(0.0, 1 - iteration / max_iter) ** power
    if policy == "sigmoid":
        return base_lr / (1 + math.exp(-gamma * (iteration - stepsize)))
    raise ValueError(
        f"unknown learning-rate policy {policy!r}; choose one of {', '.join(POLICIES)}"
    )


def curve(points: int = 100, **kwargs) -> list[tuple[int, float]]:
    """``points`` samples of the schedule over the run (for the form's preview chart)."""
    max_iter = kwargs["max_iter"]
    steps = sorted({round(i * (max_iter - 1) / max(points - 1, 1)) for i in range(points)})
    return [(i, learning_rate(iteration=i, **kwargs)) for i in steps]
