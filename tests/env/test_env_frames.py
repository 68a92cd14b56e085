# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tests of frame choice (`initial_frame_indices`, `sample_interval_frames`) and the `EnvConfig` presets."""

import dataclasses

import numpy as np
import pytest

from videoseg_o3_verl.env import EnvConfig, initial_frame_indices, sample_interval_frames


@pytest.mark.parametrize(
    "num_frames, count, mode, expected",
    [
        (1, 10, "train", [0]),  # a single frame: all frames
        (10, 10, "train", list(range(10))),  # L == count: all
        (11, 10, "train", list(range(11))),  # L == count+1: NOT > count+1, so all 11 frames (train quirk)
        # L == count+2 = 12: linspace(0, 11, 10) = 0, 1.22, 2.44, 3.67, 4.89, 6.11, 7.33, 8.56, 9.78, 11 (floored)
        (12, 10, "train", [0, 1, 2, 3, 4, 6, 7, 8, 9, 11]),
        (100, 10, "train", [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]),  # step 99/9 = 11 exactly
        (6, 5, "train", [0, 1, 2, 3, 4, 5]),  # L == 5+1: all six
        (7, 5, "train", [0, 1, 3, 4, 6]),  # linspace(0, 6, 5) = 0, 1.5, 3, 4.5, 6
        (100, 5, "train", [0, 24, 49, 74, 99]),  # 0, 24.75, 49.5, 74.25, 99
        (1, 20, "eval", [0]),
        (20, 20, "eval", list(range(20))),  # L == count: all
        # eval uses L > count: at L == count+1 = 21 it already samples linspace(0, 20, 20) (step 1.053, floored)
        (21, 20, "eval", [*range(19), 20]),
        (6, 5, "eval", [0, 1, 2, 3, 5]),  # linspace(0, 5, 5) = 0, 1.25, 2.5, 3.75, 5
        (8, 8, "eval", list(range(8))),
        (30, 8, "eval", [0, 4, 8, 12, 16, 20, 24, 29]),  # step 29/7 = 4.143
    ],
)
def test_initial_frame_indices_boundaries(num_frames, count, mode, expected):
    out = initial_frame_indices(num_frames, count, mode)
    assert out == expected
    assert all(type(i) is int for i in out)  # plain Python ints, never numpy scalars


def test_initial_frame_indices_accepts_numpy_ints_and_defaults_to_train():
    assert initial_frame_indices(np.int64(11), np.int32(10)) == list(range(11))  # train rule by default


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0, 10, "train"), ValueError, "num_frames"),
        ((10, 0, "train"), ValueError, "count"),
        ((10, 5, "test"), ValueError, "'test'"),
        ((10.0, 5, "train"), TypeError, "num_frames"),
    ],
)
def test_initial_frame_indices_rejects_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        initial_frame_indices(*args)


@pytest.mark.parametrize(
    "start, end, max_frames, expected",
    [
        (0, 99, 5, [0, 24, 49, 74, 99]),  # 0, 24.75, 49.5, 74.25, 99 floored
        (3, 7, 5, [3, 4, 5, 6, 7]),  # 5 frames fit: all of start..end (inclusive)
        (4, 4, 5, [4]),  # single-frame interval
        (10, 15, 5, [10, 11, 12, 13, 15]),  # 6 frames > 5: 10, 11.25, 12.5, 13.75, 15
        (10, 20, 5, [10, 12, 15, 17, 20]),  # 10, 12.5, 15, 17.5, 20
        (0, 9, 10, list(range(10))),  # eval-sized rounds work the same
        (5, 9, 1, [5]),  # linspace(5, 9, 1) = [5]
    ],
)
def test_sample_interval_frames_inclusive_linspace(start, end, max_frames, expected):
    out = sample_interval_frames(start, end, max_frames)
    assert out == expected
    assert all(type(i) is int for i in out)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((5, 4, 5), ValueError, r"end \(4\) must be >= start \(5\)"),
        ((-1, 4, 5), ValueError, "start"),
        ((0, 4, 0), ValueError, "max_frames"),
    ],
)
def test_sample_interval_frames_rejects_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        sample_interval_frames(*args)


def test_env_config_train_preset_matches_spec():
    c = EnvConfig.train()
    assert (c.mode, c.num_low_res, c.num_high_res) == ("train", 10, 5)  # docs/method.md §3.1
    assert (c.low_res_min_pixels, c.low_res_max_pixels) == (3136, 25088)
    assert (c.high_res_min_pixels, c.high_res_max_pixels) == (3136, 100352)
    assert (c.keyframe_min_pixels, c.keyframe_max_pixels) == (3136, 200704)  # docs/method.md §3.3 step 5
    assert (c.max_frames_per_round, c.max_turns, c.max_new_tokens, c.patch_factor) == (5, 3, 512, 28)
    assert c.initial_resize == "smart"


def test_env_config_eval_preset_matches_spec():
    c = EnvConfig.eval()
    assert (c.mode, c.num_low_res, c.num_high_res) == ("eval", 20, 8)  # docs/method.md §3.4
    assert (c.low_res_min_pixels, c.low_res_max_pixels) == (3136, 25088)
    assert (c.high_res_min_pixels, c.high_res_max_pixels) == (3136, 200704)
    assert (c.keyframe_min_pixels, c.keyframe_max_pixels) == (3136, 401408)
    assert (c.max_frames_per_round, c.max_turns, c.max_new_tokens) == (5, 3, 1024)


def test_env_config_overrides_validation_and_frozen():
    assert EnvConfig.eval(patch_factor=32).patch_factor == 32
    with pytest.raises(ValueError, match="mode"):
        EnvConfig(mode="test")
    with pytest.raises(ValueError, match="keyframe_min_pixels"):
        EnvConfig.train(keyframe_min_pixels=500000)
    with pytest.raises(ValueError, match="max_turns"):
        EnvConfig.train(max_turns=0)
    with pytest.raises(ValueError, match="initial_resize"):
        EnvConfig.train(initial_resize="nearest")
    with pytest.raises(dataclasses.FrozenInstanceError):
        EnvConfig.train().max_turns = 4


@pytest.mark.parametrize("num_frames, expected", [(1, 0), (2, 1), (7, 3), (8, 4), (100, 50)])
def test_env_config_turn0_keyframe_is_middle_frame(num_frames, expected):
    assert EnvConfig.turn0_keyframe(num_frames) == expected  # L // 2
    assert EnvConfig.train().turn0_keyframe(num_frames) == expected
