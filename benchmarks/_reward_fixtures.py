# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Shared set-up of the reward-service benchmarks: a tiny random SAM2 checkpoint, a synthetic clip, a loopback
uvicorn server. Nothing here listens anywhere but 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np


def synthetic_clip(num_frames: int = 8, height: int = 64, width: int = 80, seed: int = 0) -> np.ndarray:
    """``[T, H, W, 3]`` uint8: a gradient with a bright square moving right by 4 px per frame, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.zeros((num_frames, height, width, 3), np.float32)
    for t in range(num_frames):
        frames[t, ..., 0], frames[t, ..., 1], frames[t, ..., 2] = 255 * xx / width, 255 * yy / height, 60
        frames[t, 16:40, 8 + 4 * t:32 + 4 * t] = (250, 240, 30)
    return np.clip(frames + rng.normal(0, 4, frames.shape), 0, 255).astype(np.uint8)


def tiny_checkpoint(folder: Path) -> Path:
    """A seeded random SAM2.1 hiera-t checkpoint at 256 px in ``folder``."""
    from videoseg_reward.sam2_model import Sam2Meta, build_random_sam2_checkpoint

    return build_random_sam2_checkpoint(folder / "tiny_sam2.pt", Sam2Meta(image_size=256), seed=0)


def write_clip(folder: Path, frames: np.ndarray) -> Path:
    """Frames as ``00000.png, ...`` in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
    return folder


class LoopbackServer:
    """uvicorn serving ``app`` on a free 127.0.0.1 port in a daemon thread."""

    def __init__(self, app):
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
