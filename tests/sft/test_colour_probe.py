# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`benchmarks/colour_probe.py`: the linear probe separates what is separable and only that, and the SAM2 probe reads
each object's colour at its own centre."""

from __future__ import annotations

import numpy as np
import pytest

from tests.benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def colour_probe():
    return load_benchmark("colour_probe")


def test_probe_separates_a_small_colour_signal_in_large_noise(colour_probe):
    """Three colours coded by a shift of 1 along one feature out of 16, every feature with noise of std 0.1 except
    five with std 10: standardised, the coded feature separates the classes (gaps of 10 noise std)."""
    rng = np.random.default_rng(1)
    labels = [("red", "green", "blue")[i % 3] for i in range(300)]
    x = rng.normal(scale=0.1, size=(300, 16))
    x[:, :5] *= 100
    x[:, 7] += np.array([("red", "green", "blue").index(c) for c in labels])
    train, test = colour_probe.probe_accuracy(x, labels)
    assert train == 1.0 and test >= 0.98


def test_probe_is_at_chance_on_features_without_the_colour(colour_probe):
    rng = np.random.default_rng(2)
    labels = [("red", "green", "blue")[i % 3] for i in range(300)]
    _, test = colour_probe.probe_accuracy(rng.normal(size=(300, 16)), labels)
    assert test < 0.5  # chance 1/3; 90 test rows


def test_sam2_probe_reads_each_object_at_its_centre(colour_probe):
    """Features read at each square's centre tell the colours apart on the demo's random SAM2 (with x and y swapped,
    many reads land on background or on another square: the probe then scored 0.51)."""
    from videoseg_o3_verl.demo.config import DemoConfig
    from videoseg_o3_verl.model.tiny import tiny_sam2

    demo = DemoConfig()
    sam2 = tiny_sam2(image_size=demo.sam2_image_size, small_trunk=demo.sam2_small_trunk, width=demo.sam2_width)
    levels = colour_probe.object_features(str(sam2), frames=100, seed=0)
    assert len(levels) == 3  # image embedding + two high-resolution levels
    for features, colours in levels.values():
        assert features.shape[0] == len(colours) == 300
        assert set(colours) == {"red", "green", "blue", "yellow", "cyan", "magenta"}
    features, colours = levels[next(iter(levels))]  # the image embedding (8 x 8)
    assert colour_probe.probe_accuracy(features, colours)[1] > 0.9
