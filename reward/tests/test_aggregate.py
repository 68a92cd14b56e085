# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tests for videoseg_reward.aggregate: dataset means, ReVOS overall, GroundMoRe frames and aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from videoseg_reward.aggregate import (
    DatasetScore,
    ExpressionScore,
    aggregate_by_type,
    aggregate_dataset,
    groundmore_aggregate,
    groundmore_frame_indices,
    mean_scores,
    revos_overall,
)


def test_aggregate_dataset_means_over_expressions_per_dataset():
    records = [
        {"dataset": "DAVIS", "J": 0.8, "F": 0.9},
        ExpressionScore(dataset="MEVIS_U", J=0.2, F=0.4),
        {"dataset": "DAVIS", "J": 0.6, "F": 0.5},
        {"dataset": "DAVIS", "J": 0.1, "F": 0.1},
    ]
    out = aggregate_dataset(records)
    assert list(out) == ["DAVIS", "MEVIS_U"]  # first-seen order
    # DAVIS: J = (0.8 + 0.6 + 0.1) / 3 = 0.5, F = (0.9 + 0.5 + 0.1) / 3 = 0.5, J&F = 0.5
    assert out["DAVIS"].J == pytest.approx(0.5) and out["DAVIS"].F == pytest.approx(0.5)
    assert out["DAVIS"].JF == pytest.approx(0.5) and out["DAVIS"].n == 3
    # MEVIS_U: single expression: J&F = (0.2 + 0.4) / 2 = 0.3
    assert out["MEVIS_U"].as_dict() == pytest.approx({"J": 0.2, "F": 0.4, "J&F": 0.3, "n": 1})


def test_revos_overall_is_mean_of_subset_means_not_of_all_expressions():
    records = [
        {"dataset": "REVOS", "type_id": 0, "J": 0.8, "F": 0.6},  # referring: J&F 0.7
        {"dataset": "REVOS", "type_id": 1, "J": 0.2, "F": 0.2},  # reasoning: 3 expressions, J = F = 0.3
        {"dataset": "REVOS", "type_id": 1, "J": 0.3, "F": 0.3},
        {"dataset": "REVOS", "type_id": 1, "J": 0.4, "F": 0.4},
    ]
    out = revos_overall(records)
    assert out["referring"].JF == pytest.approx(0.7)
    assert out["reasoning"].JF == pytest.approx(0.3)
    # Overall: J = (0.8 + 0.3) / 2 = 0.55, F = (0.6 + 0.3) / 2 = 0.45, J&F = 0.5.
    # The mean over all 4 expressions would instead be J&F = (0.7 + 0.2 + 0.3 + 0.4) / 4 = 0.4.
    assert out["overall"].J == pytest.approx(0.55)
    assert out["overall"].F == pytest.approx(0.45)
    assert out["overall"].JF == pytest.approx(0.5)
    assert out["overall"].n == 4
    assert aggregate_dataset(records)["REVOS"].JF == pytest.approx(0.4)


@pytest.mark.parametrize(
    "records, match",
    [
        ([{"dataset": "REVOS", "type_id": 0, "J": 1, "F": 1}], "both subsets"),
        ([{"dataset": "REVOS", "type_id": 2, "J": 1, "F": 1}], "type_id must be 0"),
        ([{"dataset": "REVOS", "J": 1, "F": 1}], "type_id must be 0"),
    ],
)
def test_revos_overall_rejects_missing_or_unknown_subsets(records, match):
    with pytest.raises(ValueError, match=match):
        revos_overall(records)


def test_aggregate_by_type_groups_dataset_and_type():
    records = [
        {"dataset": "REVOS", "type_id": 0, "J": 1.0, "F": 0.0},
        {"dataset": "REVOS", "type_id": 1, "J": 0.0, "F": 1.0},
        {"dataset": "REVOS", "type_id": 0, "J": 0.0, "F": 0.0},
    ]
    out = aggregate_by_type(records)
    assert out[("REVOS", 0)].J == 0.5 and out[("REVOS", 0)].n == 2  # (1 + 0) / 2
    assert out[("REVOS", 1)].F == 1.0


@pytest.mark.parametrize(
    "n, expected",
    [
        # linspace(0, 19, 20) = 0, 1, ..., 19 exactly.
        (20, list(range(20))),
        # linspace(0, 38, 20) = 0, 2, 4, ..., 38 (step 2).
        (39, list(range(0, 39, 2))),
        # linspace(0, 4, 20): step 4/19 = 0.2105; truncation gives five 0s, then 1s from 5·0.2105 = 1.05 on.
        (5, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4]),
        # a single frame repeated
        (1, [0] * 20),
    ],
)
def test_groundmore_frame_indices(n, expected):
    idx = groundmore_frame_indices(n)
    assert idx.dtype == np.int64
    assert idx.tolist() == expected
    np.testing.assert_array_equal(idx, np.linspace(0, n - 1, 20, dtype=int))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_groundmore_frame_indices_rejects_bad_n(bad):
    with pytest.raises(ValueError, match="n_frames"):
        groundmore_frame_indices(bad)


def test_groundmore_aggregate_per_type_and_overall():
    records = [
        {"dataset": "GroundMoRe", "type_id": "Causal", "J": 0.2, "F": 0.4},
        {"dataset": "GroundMoRe", "type_id": "Causal", "J": 0.4, "F": 0.6},
        {"dataset": "GroundMoRe", "type_id": "Sequential", "J": 0.9, "F": 0.9},
    ]
    out = groundmore_aggregate(records)
    assert list(out) == ["Causal", "Sequential", "overall"]
    # Causal: J = 0.3, F = 0.5 -> J&F 0.4.
    assert out["Causal"].JF == pytest.approx(0.4)
    # overall is over ALL expressions: J = (0.2 + 0.4 + 0.9) / 3 = 0.5, F = (0.4 + 0.6 + 0.9) / 3 = 0.6333;
    # the mean of the type means would be J = (0.3 + 0.9) / 2 = 0.6.
    assert out["overall"].J == pytest.approx(0.5)
    assert out["overall"].F == pytest.approx(1.9 / 3)


def test_nan_policy_propagate_vs_omit():
    records = [{"dataset": "X", "J": float("nan"), "F": 0.5}, {"dataset": "X", "J": 0.4, "F": 0.7}]
    assert math.isnan(mean_scores(records).J)  # plain mean, as the DAVIS-style scripts
    omit = mean_scores(records, nan_policy="omit")
    assert omit.J == pytest.approx(0.4) and omit.F == pytest.approx(0.6) and omit.JF == pytest.approx(0.5)
    with pytest.raises(ValueError, match="every record"):
        mean_scores([{"dataset": "X", "J": float("nan"), "F": 0.5}], nan_policy="omit")
    with pytest.raises(ValueError, match="nan_policy"):
        mean_scores(records, nan_policy="skip")


@pytest.mark.parametrize(
    "records, error, match",
    [
        ([], ValueError, "empty"),
        ([{"dataset": "X", "J": 0.5}], ValueError, r"missing key\(s\) \['F'\]"),
        ([{"dataset": "X", "J": "high", "F": 0.5}], TypeError, "J must be a number"),
        ([{"dataset": "X", "J": float("inf"), "F": 0.5}], ValueError, "infinite"),
        ([("X", 0.5, 0.5)], TypeError, "ExpressionScore or a mapping"),
    ],
)
def test_bad_records_raise(records, error, match):
    with pytest.raises(error, match=match):
        mean_scores(records)


def test_dataset_score_as_dict():
    assert DatasetScore(J=0.25, F=0.75, JF=0.5, n=3).as_dict() == {"J": 0.25, "F": 0.75, "J&F": 0.5, "n": 3}
