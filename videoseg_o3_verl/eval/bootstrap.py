# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Means with seeded percentile-bootstrap intervals over episodes (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

N_BOOT = 2000
"""Bootstrap resamples of the default interval."""


def bootstrap_ci(values: Sequence[float], *, n_boot: int = N_BOOT, level: float = 0.95, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of `values`.

    Draws `n_boot` resamples of the n values with replacement (`numpy.random.default_rng(seed)`, one
    `integers(0, n, (n_boot, n))` call), takes each resample's mean and returns the `(1 - level) / 2` and
    `(1 + level) / 2` percentiles of those means (`numpy.percentile`, linear interpolation).

    Example:
        >>> bootstrap_ci([0.5, 0.5, 0.5])
        (0.5, 0.5)
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"bootstrap_ci: values must be a non-empty 1-D sequence, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("bootstrap_ci: values contain NaN or infinite numbers")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"bootstrap_ci: n_boot must be an int >= 1, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap_ci: level must be in (0, 1), got {level!r}")
    index = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    means = x[index].mean(axis=1)
    lo, hi = np.percentile(means, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


def aggregate(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], *, n_boot: int = N_BOOT, seed: int = 0
              ) -> dict[str, dict[str, Any]]:
    """`{metric: {"mean": float, "ci95": [lo, hi]}}` over the rows (one per episode), each metric with
    :func:`bootstrap_ci` at level 0.95 and the same seed.

    Example:
        >>> aggregate([{"hit": 1.0}, {"hit": 1.0}], ["hit"])
        {'hit': {'mean': 1.0, 'ci95': [1.0, 1.0]}}
    """
    if not rows:
        raise ValueError("aggregate: no rows")
    out = {}
    for name in metrics:
        missing = sum(1 for row in rows if name not in row)
        if missing:
            raise ValueError(f"aggregate: {missing} of {len(rows)} rows have no {name!r}")
        values = [float(row[name]) for row in rows]
        lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
        out[name] = {"mean": float(np.mean(values)), "ci95": [lo, hi]}
    return out
