# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The seeded percentile-bootstrap interval and the metric aggregate (hand-computed cases)."""

from __future__ import annotations

import numpy as np
import pytest

from videoseg_o3_verl.eval.bootstrap import aggregate, bootstrap_ci


def test_all_equal_values_give_a_point_interval():
    assert bootstrap_ci([0.25] * 7) == (0.25, 0.25)


def test_small_case_matches_an_independent_percentile_computation():
    values, n_boot, seed = [0.0, 1.0, 3.0], 5, 11
    # independent: the documented draw, resample means by hand, the percentile by its linear-interpolation formula
    draws = np.random.default_rng(seed).integers(0, 3, size=(n_boot, 3))
    means = sorted(sum(values[i] for i in row) / 3 for row in draws)

    def percentile(q):  # rank q/100 * (n - 1) between the two neighbouring order statistics
        rank = q / 100 * (len(means) - 1)
        low = int(rank)
        high = min(low + 1, len(means) - 1)
        return means[low] + (rank - low) * (means[high] - means[low])

    lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
    assert (lo, hi) == pytest.approx((percentile(2.5), percentile(97.5)), abs=1e-12)


def test_interval_follows_the_exact_bootstrap_distribution():
    # values [0, 0, 3]: a resample mean is (number of 3s drawn) = k in {0, 1, 2, 3} with Binomial(3, 1/3) weights
    # 8/27, 12/27, 6/27, 1/27; P(mean = 0) = 0.296 > 0.025 so the 2.5 % point is 0, and P(mean = 3) = 0.037 > 0.025
    # so the 97.5 % point is 3
    assert bootstrap_ci([0.0, 0.0, 3.0], n_boot=20000, seed=0) == (0.0, 3.0)


def test_seeded_and_the_seed_matters():
    values = [0.1, 0.9, 0.4, 0.7, 0.2, 0.3]
    assert bootstrap_ci(values, seed=1) == bootstrap_ci(values, seed=1)
    assert bootstrap_ci(values, seed=1) != bootstrap_ci(values, seed=2)
    lo, hi = bootstrap_ci(values)
    assert lo < np.mean(values) < hi


@pytest.mark.parametrize("values, kwargs, message", [
    ([], {}, "non-empty"), ([1.0, float("nan")], {}, "NaN"), ([1.0], {"n_boot": 0}, "n_boot"),
    ([1.0], {"level": 1.0}, "level")])
def test_bad_input_is_named(values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(values, **kwargs)


def test_aggregate_means_and_intervals_per_metric():
    rows = [{"hit": 1.0, "tiou": 0.5}, {"hit": 0.0, "tiou": 0.5}, {"hit": 1.0, "tiou": 0.5}]
    table = aggregate(rows, ["hit", "tiou"], n_boot=50, seed=3)
    assert table["hit"]["mean"] == pytest.approx(2 / 3)
    assert table["hit"]["ci95"] == list(bootstrap_ci([1.0, 0.0, 1.0], n_boot=50, seed=3))
    assert table["tiou"] == {"mean": 0.5, "ci95": [0.5, 0.5]}
    with pytest.raises(ValueError, match="'jf'"):
        aggregate(rows, ["jf"])
