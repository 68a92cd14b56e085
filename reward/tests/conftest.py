# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Shared fixtures of the reward-package tests: a tiny random SAM2 checkpoint and small synthetic videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

NUM_FRAMES, HEIGHT, WIDTH = 8, 64, 80
"""Synthetic video size: 8 frames of 64 x 80 (small, non-square, so H/W mix-ups show)."""


def make_video(num_frames: int = NUM_FRAMES, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    """``[T, H, W, 3]`` uint8: a colour gradient with a bright square moving right by 4 px per frame, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.zeros((num_frames, height, width, 3), np.float32)
    for t in range(num_frames):
        frames[t, ..., 0] = 255 * xx / width
        frames[t, ..., 1] = 255 * yy / height
        frames[t, ..., 2] = 60
        frames[t, 16:40, 8 + 4 * t:32 + 4 * t] = (250, 240, 30)
    frames += rng.normal(0, 4, frames.shape)
    return np.clip(frames, 0, 255).astype(np.uint8)


def square_masks(num_frames: int = NUM_FRAMES, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """``[T, H, W]`` bool GT of the moving square of :func:`make_video`."""
    masks = np.zeros((num_frames, height, width), bool)
    for t in range(num_frames):
        masks[t, 16:40, 8 + 4 * t:32 + 4 * t] = True
    return masks


def write_frames(folder: Path, video: np.ndarray, ext: str = ".png") -> Path:
    """Write frames as ``00000.png, 00001.png, ...`` (lossless) and return the folder."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(video):
        Image.fromarray(frame).save(folder / f"{t:05d}{ext}")
    return folder


@pytest.fixture(scope="session")
def sam2_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random SAM2.1 hiera-t checkpoint at 256 px (built once per test session)."""
    from videoseg_reward.sam2_model import Sam2Meta, build_random_sam2_checkpoint

    return build_random_sam2_checkpoint(tmp_path_factory.mktemp("sam2") / "tiny_sam2.pt", Sam2Meta(image_size=256),
                                        seed=0)


@pytest.fixture(scope="session")
def video() -> np.ndarray:
    """The synthetic ``[8, 64, 80, 3]`` uint8 video."""
    return make_video()


@pytest.fixture(scope="session")
def video_root(tmp_path_factory: pytest.TempPathFactory, video: np.ndarray) -> Path:
    """A video root holding ``clip/`` (the synthetic video as PNG frames)."""
    root = tmp_path_factory.mktemp("videos")
    write_frames(root / "clip", video)
    return root


@pytest.fixture(scope="module")
def shared_scorer(sam2_checkpoint: Path, video_root: Path):
    """One CPU scorer per test module for tests that do not change its weights."""
    from videoseg_reward.scorer import Sam2Scorer

    return Sam2Scorer(sam2_checkpoint, device="cpu", video_roots=[video_root])


@pytest.fixture(scope="session")
def gt_masks() -> np.ndarray:
    """``[8, 64, 80]`` bool GT of the moving square."""
    return square_masks()


@pytest.fixture(scope="session")
def video_tools():
    """The helper functions of this conftest (``make_video``, ``square_masks``, ``write_frames``) for tests."""
    import types

    return types.SimpleNamespace(make_video=make_video, square_masks=square_masks, write_frames=write_frames)
