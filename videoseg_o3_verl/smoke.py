# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Smoke-test data and rule reward for plain GRPO on the CPU backend (`recipes/tiny_cpu_grpo.yaml`).

The prompts carry images (PNG bytes in the parquet ``images`` column) and short videos (mp4 files written
with PyAV, referenced in the ``videos`` column), so the run exercises verl's multimodal data path, the HF
rollout backend's processor path and mrope position ids.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

COLORS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}


def _frame(color: tuple[int, int, int], size=(56, 56), shift: int = 0) -> np.ndarray:
    img = np.full((*size, 3), 16, np.uint8)
    y0 = 8 + shift % (size[0] - 24)
    img[y0: y0 + 16, 12: 28] = color
    return img


def _png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 4) -> Path:
    """Encode RGB frames as an H.264 mp4 with PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def build_smoke_dataset(out_dir: str | Path, num_prompts: int = 8, seed: int = 0) -> tuple[Path, Path]:
    """Write ``train.parquet``/``val.parquet`` with alternating image and video prompts; returns both paths."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    names = list(COLORS)
    for i in range(num_prompts):
        color = names[int(rng.integers(len(names)))]
        row = {"data_source": "videoseg_smoke", "ability": "vqa",
               "reward_model": {"style": "rule", "ground_truth": color}, "extra_info": {"index": i}}
        if i % 2 == 0:
            row["prompt"] = [{"role": "user",
                              "content": "<image><image>Which colour is the square? Answer in one word."}]
            row["images"] = [{"bytes": _png_bytes(_frame(COLORS[color]))},
                             {"bytes": _png_bytes(_frame(COLORS[color], shift=9))}]
            row["videos"] = None
        else:
            frames = [_frame(COLORS[color], shift=3 * t) for t in range(8)]
            video = write_mp4(out_dir / "videos" / f"clip_{i}.mp4", frames)
            row["prompt"] = [{"role": "user",
                              "content": "<video>Which colour is the moving square? Answer in one word."}]
            row["images"] = None
            row["videos"] = [{"video": str(video), "nframes": 4}]
        rows.append(row)
    frame = pd.DataFrame(rows)
    train, val = out_dir / "train.parquet", out_dir / "val.parquet"
    frame.to_parquet(train)
    frame.iloc[: max(2, num_prompts // 4)].to_parquet(val)
    return train, val


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info=None, **kwargs) -> float:
    """Rule reward: 1 if the answer names the right colour, else a small length-shaped value in [0, 0.1]."""
    if ground_truth.lower() in solution_str.lower():
        return 1.0
    return 0.1 * min(len(solution_str), 100) / 100.0
