# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""GroundMoRe (motion-grounded video reasoning; evaluation only) → records.

Layout (read from the official `evaluate_groundmore.py` of github.com/dengandong/GroundMoRe and the VideoSEG-O3
evaluation, docs/method.md §11; the Hugging Face release `groundmore/GroundMoRe` unpacks to it):

    <root>/annotations/<video>/images/<frame>.jpg     frames at 6 fps, e.g. frame_000000.jpg
    <root>/annotations/<video>/masks/<frame>.png      palette PNG per frame, pixel value = object id
    <root>/<meta_file>   (default "test_v2.json")
        {"videos": {vid: {"questions": {qid: {"question", "answer", "obj_id", "q_type",
                                               "action_start": "MM:SS", "action_end": "MM:SS"}}}}}

The video id ends with the clip's start and end time `..._MMSS_MMSS`. The action interval in frames is
`[(t(action_start) - t(clip_start)) * fps, (t(action_end) - t(clip_start)) * fps - 1]` (inclusive, fps = 6),
and the ground truth is non-empty only inside it (docs/method.md §11): frame t inside the interval uses
`masks/<frame>.png == obj_id`, frames outside are absent.

ASSUMPTIONS: frames are the sorted image files of `images/` (the official script lists them unsorted; we sort);
a mask is looked up as `masks/<frame stem>.png`, then `masks/frame_<t:06d>.png`, then `masks/<t:07d>.png`
(the names the two evaluation scripts try); a frame inside the interval without any of these files is absent,
as both scripts treat it. `extra` keeps `question_type`, `answer`, `action_start`/`action_end` (the time
strings), `action_start_frame`/`action_end_frame` (inclusive frame indices, unclipped) and `fps`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from videoseg_o3_verl.data.converters import register_converter
from videoseg_o3_verl.data.converters._common import (
    ProgressLike,
    encode_or_none,
    existence_of,
    folder_record,
    get_key,
    hw_of,
    image_hw,
    iterate,
    load_json,
    read_label_png,
    take,
    videos_of,
    where,
)
from videoseg_o3_verl.data.records import RLE, RVOSRecord

_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_CLIP_RE = re.compile(r"(\d{4})_(\d{4})$")


def time_to_seconds(text: str, ctx: str) -> int:
    """'[H:]MM:SS' (or 'SS') → seconds.

    Example:
        >>> time_to_seconds("01:05", ""), time_to_seconds("1:00:02", "")
        (65, 3602)
    """
    parts = text.split(":") if isinstance(text, str) else []
    if not 1 <= len(parts) <= 3 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"{ctx}: time {text!r} is not of the form [H:]MM:SS")
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return seconds


def clip_start_seconds(video_id: str, ctx: str) -> int:
    """Clip start time encoded at the end of a GroundMoRe video id (`..._MMSS_MMSS`), in seconds."""
    match = _CLIP_RE.search(video_id)
    if match is None:
        raise ValueError(f"{ctx}: video id {video_id!r} does not end with the clip times '_MMSS_MMSS'")
    start = match.group(1)
    return int(start[:2]) * 60 + int(start[2:])


def _list_frames(images_dir: str, ctx: str) -> tuple[list[str], str]:
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(f"{ctx}: frames folder {images_dir} does not exist")
    files = sorted(f for f in os.listdir(images_dir) if f.lower().endswith(_IMAGE_EXTS))
    if not files:
        raise FileNotFoundError(f"{ctx}: no image files ({'/'.join(_IMAGE_EXTS)}) in {images_dir}")
    exts = {os.path.splitext(f)[1] for f in files}
    if len(exts) != 1:
        raise ValueError(f"{ctx}: frames in {images_dir} mix extensions {sorted(exts)}")
    return [os.path.splitext(f)[0] for f in files], exts.pop()


def _mask_path(masks_dir: str, stem: str, t: int, present: set[str]) -> str | None:
    for name in (f"{stem}.png", f"frame_{t:06d}.png", f"{t:07d}.png"):
        if name in present:
            return os.path.join(masks_dir, name)
    return None


def _iter_groundmore(
    root: str, meta_file: str, fps: int, dataset_name: str, progress: ProgressLike | None
) -> Iterator[RVOSRecord]:
    videos = videos_of(load_json(meta_file, "GroundMoRe question file"), meta_file)
    for vid, vdata in iterate(progress, list(videos.items()), dataset_name):
        vctx = where(meta_file, video=vid)
        questions = get_key(vdata, "questions", vctx, dict)
        video_dir = os.path.join(root, "annotations", vid)
        frames_dir = os.path.abspath(os.path.join(video_dir, "images"))
        frames, ext = _list_frames(frames_dir, vctx)
        masks_dir = os.path.join(video_dir, "masks")
        if not os.path.isdir(masks_dir):
            raise FileNotFoundError(f"{vctx}: mask folder {masks_dir} does not exist")
        present = set(os.listdir(masks_dir))
        clip_start = clip_start_seconds(vid, vctx)
        labels_cache: dict[int, Any] = {}
        for qid, q in questions.items():
            ctx = where(meta_file, video=vid, expression=qid)
            question = get_key(q, "question", ctx, str)
            raw_obj = get_key(q, "obj_id", ctx, (int, str))
            try:
                obj_id = int(raw_obj)
            except ValueError as err:
                raise ValueError(f"{ctx}: obj_id {raw_obj!r} is not an integer object id") from err
            start_text = get_key(q, "action_start", ctx, str)
            end_text = get_key(q, "action_end", ctx, str)
            start = (time_to_seconds(start_text, ctx) - clip_start) * fps
            end = (time_to_seconds(end_text, ctx) - clip_start) * fps - 1
            masks: list[RLE | None] = []
            for t, stem in enumerate(frames):
                path = _mask_path(masks_dir, stem, t, present) if start <= t <= end else None
                if path is None:
                    masks.append(None)
                    continue
                if t not in labels_cache:
                    labels_cache[t] = read_label_png(path, ctx)  # [H, W] palette indices
                masks.append(encode_or_none(labels_cache[t] == obj_id))
            hw = hw_of(masks) or image_hw(os.path.join(frames_dir, frames[0] + ext), vctx)
            extra: dict[str, Any] = {
                "question_type": q.get("q_type"),
                "answer": q.get("answer"),
                "action_start": start_text,
                "action_end": end_text,
                "action_start_frame": int(start),
                "action_end_frame": int(end),
                "fps": fps,
            }
            if ext != ".jpg":
                extra["frame_ext"] = ext
            yield folder_record(
                ctx,
                frames_dir=frames_dir,
                frames=frames,
                hw=hw,
                dataset=dataset_name,
                video_id=vid,
                expression=question,
                expression_id=str(qid),
                object_ids=(obj_id,),
                mask_existence=existence_of(masks),
                masks_rle=tuple(masks),
                type_id=None,
                extra=extra,
            )


@register_converter("groundmore")
def convert_groundmore(
    root: str,
    split: str = "test",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    meta_file: str | None = None,
    fps: int = 6,
    dataset_name: str = "groundmore",
) -> list[RVOSRecord]:
    """GroundMoRe → records (layout and assumptions in the module docstring).

    Args:
        root: GroundMoRe root (holding `annotations/` and the question JSON).
        split: "test" (the benchmark's only annotated split); selects `<root>/<split>_v2.json` by default.
        limit: stop after this many records.
        progress: optional progress wrapper over videos.
        meta_file: question JSON path (overrides the default).
        fps: frame rate of the extracted frames (6 in the release), converts action times to frame indices.
        dataset_name: `record.dataset`.
    """
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        raise ValueError(f"fps must be a positive int, got {fps!r}")
    meta = meta_file or os.path.join(root, f"{split}_v2.json")
    return take(_iter_groundmore(root, meta, fps, dataset_name, progress), limit)
