# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Dataset-level aggregation of per-expression J/F scores (docs/method.md §11).

Per expression, J and F are already means over ALL frames (:func:`videoseg_reward.metrics.jf_score`). Here:

* dataset J, F = mean over expressions, ``J&F = (J + F) / 2`` (:func:`aggregate_dataset`);
* ReVOS "overall" = the AVERAGE of the referring (``type_id`` 0) and reasoning (``type_id`` 1) subset means,
  not the mean over all expressions (:func:`revos_overall`);
* GroundMoRe evaluates 20 frames ``linspace(0, n - 1, 20)`` per video (:func:`groundmore_frame_indices`),
  ``nanmean`` over those frames per expression, then means per question type and overall
  (:func:`groundmore_aggregate`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DatasetScore",
    "ExpressionScore",
    "GROUNDMORE_NUM_FRAMES",
    "REVOS_REASONING",
    "REVOS_REFERRING",
    "aggregate_by_type",
    "aggregate_dataset",
    "groundmore_aggregate",
    "groundmore_frame_indices",
    "mean_scores",
    "revos_overall",
]

REVOS_REFERRING = 0
"""ReVOS ``type_id`` of referring expressions."""
REVOS_REASONING = 1
"""ReVOS ``type_id`` of reasoning expressions."""
GROUNDMORE_NUM_FRAMES = 20
"""Frames evaluated per GroundMoRe video."""


@dataclass(frozen=True)
class ExpressionScore:
    """J and F of one (video, expression) pair."""

    dataset: str
    """Dataset name, e.g. ``"REVOS"``."""
    J: float
    """Mean region similarity over the expression's frames."""
    F: float
    """Mean boundary F-measure over the expression's frames."""
    type_id: int | str | None = None
    """Subset label: ReVOS ``type_id`` (0 referring, 1 reasoning), GroundMoRe question type, or None."""
    expression_id: str | None = None
    """Optional identifier, used only in error messages."""


@dataclass(frozen=True)
class DatasetScore:
    """Mean J, F and J&F over a set of expressions."""

    J: float
    """Mean of the expressions' J."""
    F: float
    """Mean of the expressions' F."""
    JF: float
    """``(J + F) / 2``."""
    n: int
    """Number of expressions averaged."""

    def as_dict(self) -> dict[str, float]:
        """``{"J": ..., "F": ..., "J&F": ..., "n": ...}``."""
        return {"J": self.J, "F": self.F, "J&F": self.JF, "n": self.n}


def _coerce(record: ExpressionScore | Mapping[str, Any], index: int) -> ExpressionScore:
    """Accept an :class:`ExpressionScore` or a mapping with keys ``dataset``, ``J``, ``F`` (``type_id`` optional)."""
    if isinstance(record, ExpressionScore):
        rec = record
    elif isinstance(record, Mapping):
        missing = [k for k in ("dataset", "J", "F") if k not in record]
        if missing:
            raise ValueError(f"record #{index} is missing key(s) {missing}; expected dataset, J, F "
                             f"(and optionally type_id), got keys {sorted(record)}")
        rec = ExpressionScore(dataset=str(record["dataset"]), J=record["J"], F=record["F"],
                              type_id=record.get("type_id"), expression_id=record.get("expression_id"))
    else:
        raise TypeError(f"record #{index}: expected ExpressionScore or a mapping, got {type(record).__name__}")
    for name in ("J", "F"):
        value = getattr(rec, name)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"record #{index} ({rec.expression_id or rec.dataset}): {name} must be a number, "
                            f"got {value!r}") from None
        if math.isinf(value):
            raise ValueError(f"record #{index} ({rec.expression_id or rec.dataset}): {name} is infinite")
    return rec


def mean_scores(
    records: Iterable[ExpressionScore | Mapping[str, Any]], *, nan_policy: str = "propagate"
) -> DatasetScore:
    """Mean J, F (and J&F) over ``records``.

    Args:
        records: per-expression scores.
        nan_policy: ``"propagate"`` (plain mean, a NaN makes the result NaN, as the DAVIS/ReVOS scripts) or
            ``"omit"`` (``nanmean``, as the GroundMoRe script).

    Raises:
        ValueError: for no records, a bad ``nan_policy``, or (``"omit"``) a column that is all NaN.
    """
    if nan_policy not in ("propagate", "omit"):
        raise ValueError(f"nan_policy must be 'propagate' or 'omit', got {nan_policy!r}")
    recs = [_coerce(r, i) for i, r in enumerate(records)]
    if not recs:
        raise ValueError("cannot average an empty set of expression scores")
    j = np.array([float(r.J) for r in recs], dtype=np.float64)
    f = np.array([float(r.F) for r in recs], dtype=np.float64)
    if nan_policy == "omit":
        if np.isnan(j).all() or np.isnan(f).all():
            raise ValueError(f"nanmean over {len(recs)} records: J or F is NaN for every record")
        j_mean, f_mean = float(np.nanmean(j)), float(np.nanmean(f))
    else:
        j_mean, f_mean = float(j.mean()), float(f.mean())
    return DatasetScore(J=j_mean, F=f_mean, JF=(j_mean + f_mean) / 2.0, n=len(recs))


def aggregate_dataset(
    records: Iterable[ExpressionScore | Mapping[str, Any]], *, nan_policy: str = "propagate"
) -> dict[str, DatasetScore]:
    """Per-dataset mean J, F, J&F over expressions: ``{dataset: DatasetScore}`` (first-seen dataset order).

    Example:
        >>> recs = [{"dataset": "DAVIS", "J": 0.8, "F": 0.9}, {"dataset": "DAVIS", "J": 0.6, "F": 0.7}]
        >>> s = aggregate_dataset(recs)["DAVIS"]
        >>> round(s.J, 6), round(s.F, 6), round(s.JF, 6), s.n
        (0.7, 0.8, 0.75, 2)
    """
    groups: dict[str, list[ExpressionScore]] = {}
    for i, r in enumerate(records):
        rec = _coerce(r, i)
        groups.setdefault(rec.dataset, []).append(rec)
    return {name: mean_scores(recs, nan_policy=nan_policy) for name, recs in groups.items()}


def aggregate_by_type(
    records: Iterable[ExpressionScore | Mapping[str, Any]], *, nan_policy: str = "propagate"
) -> dict[tuple[str, int | str | None], DatasetScore]:
    """Mean scores per ``(dataset, type_id)``."""
    groups: dict[tuple[str, int | str | None], list[ExpressionScore]] = {}
    for i, r in enumerate(records):
        rec = _coerce(r, i)
        groups.setdefault((rec.dataset, rec.type_id), []).append(rec)
    return {key: mean_scores(recs, nan_policy=nan_policy) for key, recs in groups.items()}


def revos_overall(records: Iterable[ExpressionScore | Mapping[str, Any]]) -> dict[str, DatasetScore]:
    """ReVOS report: ``{"referring", "reasoning", "overall"}``; overall = mean of the two SUBSET means.

    Records of any other ``type_id`` (or ``None``) are rejected. ``overall.n`` is the total expression count.

    Example:
        >>> recs = [{"dataset": "REVOS", "type_id": 0, "J": 0.8, "F": 0.8},
        ...         {"dataset": "REVOS", "type_id": 1, "J": 0.4, "F": 0.4},
        ...         {"dataset": "REVOS", "type_id": 1, "J": 0.6, "F": 0.6}]
        >>> round(revos_overall(recs)["overall"].JF, 6)   # (0.8 + 0.5) / 2, not (0.8 + 0.4 + 0.6) / 3
        0.65
    """
    ref, reas = [], []
    for i, r in enumerate(records):
        rec = _coerce(r, i)
        if rec.type_id == REVOS_REFERRING:
            ref.append(rec)
        elif rec.type_id == REVOS_REASONING:
            reas.append(rec)
        else:
            raise ValueError(f"record #{i} ({rec.expression_id or rec.dataset}): ReVOS type_id must be 0 "
                             f"(referring) or 1 (reasoning), got {rec.type_id!r}")
    if not ref or not reas:
        raise ValueError(f"ReVOS overall needs both subsets; got {len(ref)} referring and {len(reas)} "
                         "reasoning records")
    s_ref, s_reas = mean_scores(ref), mean_scores(reas)
    j = (s_ref.J + s_reas.J) / 2.0
    f = (s_ref.F + s_reas.F) / 2.0
    return {
        "referring": s_ref,
        "reasoning": s_reas,
        "overall": DatasetScore(J=j, F=f, JF=(j + f) / 2.0, n=s_ref.n + s_reas.n),
    }


def groundmore_frame_indices(n_frames: int, num: int = GROUNDMORE_NUM_FRAMES) -> np.ndarray:
    """GroundMoRe evaluation frames: ``np.linspace(0, n - 1, 20)`` truncated to int (repeats when ``n < 20``).

    Example:
        >>> groundmore_frame_indices(39).tolist()[:5], groundmore_frame_indices(5).tolist()[:6]
        ([0, 2, 4, 6, 8], [0, 0, 0, 0, 0, 1])
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int, got {n_frames!r}")
    return np.linspace(0, int(n_frames) - 1, num).astype(np.int64)


def groundmore_aggregate(
    records: Iterable[ExpressionScore | Mapping[str, Any]], *, nan_policy: str = "propagate"
) -> dict[str, DatasetScore]:
    """GroundMoRe report: one entry per question type (``type_id``, as str) plus ``"overall"``.

    The GroundMoRe script takes ``nanmean`` over the 20 evaluated frames of an expression (do that when building
    the records, e.g. ``np.nanmean`` of :func:`videoseg_reward.metrics.jf_per_frame`; DAVIS J/F are never NaN)
    and then PLAIN means over expressions, per question type and globally. ``overall`` is the mean over ALL
    expressions, not the mean of the per-type means. ``nan_policy="omit"`` switches to nanmean here too.

    Example:
        >>> recs = [{"dataset": "GroundMoRe", "type_id": "Causal", "J": 0.2, "F": 0.4},
        ...         {"dataset": "GroundMoRe", "type_id": "Causal", "J": 0.4, "F": 0.6},
        ...         {"dataset": "GroundMoRe", "type_id": "Sequential", "J": 0.9, "F": 0.9}]
        >>> out = groundmore_aggregate(recs)
        >>> round(out["Causal"].JF, 6), round(out["overall"].J, 6)   # (0.3 + 0.5) / 2; (0.2 + 0.4 + 0.9) / 3
        (0.4, 0.5)
    """
    recs = [_coerce(r, i) for i, r in enumerate(records)]
    if not recs:
        raise ValueError("groundmore_aggregate: no records")
    by_type: dict[str, list[ExpressionScore]] = {}
    for rec in recs:
        by_type.setdefault(str(rec.type_id), []).append(rec)
    if "overall" in by_type:
        raise ValueError("groundmore_aggregate: a question type may not be called 'overall'")
    out = {name: mean_scores(group, nan_policy=nan_policy) for name, group in sorted(by_type.items())}
    out["overall"] = mean_scores(recs, nan_policy=nan_policy)
    return out
