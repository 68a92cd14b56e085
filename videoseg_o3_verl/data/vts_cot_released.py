# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The authors' released VTS-CoT JSON → the SFT parquet of :mod:`videoseg_o3_verl.data.vts_cot`.

Input: a JSON list of samples with ``video_name``, ``frames``, ``exp``, ``anno_id`` (into a ``mask_dict.json``),
``sample_frame_indice`` (high-resolution frames of the first turn), ``cot_trace`` (one
``{start_frame, end_frame, key_frame}`` per ``<select>`` round) and LLaVA-style ``conversations``
(``[{"from": "system"|"human"|"gpt", "value"}]``: system, human, gpt, (human, gpt)*). Records (frames, masks) are
read by the RL-JSON converter (``videoseg_rl_json``), so both share one reader.

Two renderings of the user turns:

- ``parity=True`` (the released cold-start loader): first turn = 20 low-resolution frames (``linspace(0, L-1, 20)``
  if L > 21, else all; ≤ 32·28² px) + the ``sample_frame_indice`` frames (≤ 128·28² px), frames separated by a
  newline, then the human text; a select round = frames ``linspace(s, e, 10)`` if e − s > 11 else ``arange(s, e)``
  (end-exclusive) + the keyframe (≤ 512·28² px), the index list printed as a NumPy array (``[10 12 14]``), then
  ``The text query is '<exp>'`` and the rest of the stored human text. Every frame is resized with ``smart_resize``.
- ``parity=False``: the user turns are rendered by the RL environment (exactly what RL shows); the assistant turns
  are the authors' texts in both cases.

Left out: the released loader stacks the first turn's pixels as (high-res, low-res) while its text places the
low-res frames first; here pixels follow the text order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from videoseg_o3_verl.data.converters._common import get_key, load_json, where
from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.data.vts_cot import (
    IMAGE_PLACEHOLDER,
    SegSupervision,
    SFTSample,
    content_to_text,
    png_bytes,
    write_sft_parquet,
)
from videoseg_o3_verl.env import Action, EnvConfig, initial_user_content, select_observation_content, system_message
from videoseg_o3_verl.env.actions import SELECT_VTG_PATTERN
from videoseg_o3_verl.env.frames import initial_frame_indices
from videoseg_o3_verl.video.resize import resize_for_llm


@dataclass(frozen=True)
class ReleasedRendering:
    """Numbers of the released cold-start loader (used with ``parity=True``)."""

    num_low_res: int = 20
    """Low-resolution frames of the first turn."""
    frames_per_round: int = 10
    """Most low-resolution frames per select round (hard-coded 10 in the released loader)."""
    low_res_pixels: tuple[int, int] = (4 * 28 * 28, 32 * 28 * 28)
    """(min, max) pixels of low-resolution frames."""
    high_res_pixels: tuple[int, int] = (4 * 28 * 28, 128 * 28 * 28)
    """(min, max) pixels of the first turn's high-resolution frames."""
    keyframe_pixels: tuple[int, int] = (4 * 28 * 28, 512 * 28 * 28)
    """(min, max) pixels of a round's keyframe."""
    patch_factor: int = 28
    """``smart_resize`` factor of the processor (28 Qwen2.5-VL, 32 Qwen3-VL)."""


def released_first_low_res(num_frames: int, count: int = 20) -> list[int]:
    """``linspace(0, L-1, count)`` if L > count + 1 else all frames (the released first-turn temporal frames)."""
    return initial_frame_indices(num_frames, count, "train")


def released_round_frames(start: int, end: int, count: int = 10) -> np.ndarray:
    """Low-resolution frames of a select round: ``linspace(s, e, count)`` if e − s > count + 1 else ``arange(s, e)``.

    Example:
        >>> released_round_frames(10, 15), released_round_frames(0, 22)
        (array([10, 11, 12, 13, 14]), array([ 0,  2,  4,  7,  9, 12, 14, 16, 19, 22]))
    """
    if end - start > count + 1:
        return np.linspace(start, end, count, dtype=int)
    return np.arange(start, end)


def _images(frames, indices, bounds: tuple[int, int], factor: int, images: list[dict[str, bytes]]) -> str:
    """Resized frames as newline-separated placeholders (the released token string joins frames with "\\n")."""
    for i in indices:
        images.append({"bytes": png_bytes(resize_for_llm(frames[int(i)], factor, *bounds))})
    return "\n".join([IMAGE_PLACEHOLDER] * len(indices))


def _vtg_of(text: str, ctx: str) -> dict[str, int]:
    match = SELECT_VTG_PATTERN.search(text)
    if match is None:
        raise ValueError(f"{ctx}: the gpt turn has no <select><VTG>…</VTG></select>")
    try:
        return json.loads(match.group(1))
    except ValueError as err:
        raise ValueError(f"{ctx}: the select VTG is not JSON ({err})") from err


def _turns(conversations: Any, ctx: str) -> tuple[str | None, list[str], list[str]]:
    """(system, human values, gpt values) of a LLaVA conversation, checking the alternation."""
    if not isinstance(conversations, list) or not conversations:
        raise ValueError(f"{ctx}: 'conversations' must be a non-empty list")
    system, humans, gpts = None, [], []
    for j, msg in enumerate(conversations):
        role = get_key(msg, "from", f"{ctx}, conversations[{j}]", str)
        value = get_key(msg, "value", f"{ctx}, conversations[{j}]", str)
        if role == "system":
            system = value
        elif role == "human":
            if len(humans) != len(gpts):
                raise ValueError(f"{ctx}: conversations[{j}]: two human turns in a row")
            humans.append(value)
        elif role == "gpt":
            if len(gpts) + 1 != len(humans):
                raise ValueError(f"{ctx}: conversations[{j}]: a gpt turn without a human turn before it")
            gpts.append(value.strip())
        else:
            raise ValueError(f"{ctx}: conversations[{j}]: unknown role {role!r} (system/human/gpt)")
    if not gpts or len(gpts) != len(humans):
        raise ValueError(f"{ctx}: the conversation must end with a gpt turn")
    return system, humans, gpts


def released_sample(record: RVOSRecord, video, item: dict[str, Any], *, parity: bool, env: EnvConfig,
                    rendering: ReleasedRendering, ctx: str) -> SFTSample:
    """One released VTS-CoT sample as an :class:`SFTSample` (rendering per the module docstring)."""
    system, humans, gpts = _turns(get_key(item, "conversations", ctx), ctx)
    trace = get_key(item, "cot_trace", ctx, list)
    if len(trace) != len(gpts) - 1:
        raise ValueError(f"{ctx}: {len(trace)} cot_trace rounds but {len(gpts)} gpt turns (expected rounds + 1)")
    length = record.num_frames
    rounds = []
    for r, step in enumerate(trace):
        rctx = f"{ctx}, cot_trace[{r}]"
        s, e, k = (int(get_key(step, key, rctx, int)) for key in ("start_frame", "end_frame", "key_frame"))
        if not (0 <= s <= e < length and 0 <= k < length):
            raise ValueError(f"{rctx}: start {s}, end {e}, key {k} do not fit a video of {length} frames")
        vtg = _vtg_of(gpts[r], f"{ctx}, gpt turn {r}")
        if (vtg.get("start"), vtg.get("end"), vtg.get("keyframe")) != (s, e, k):
            raise ValueError(f"{rctx}: the gpt turn selects {vtg}, the trace says start {s}, end {e}, key {k}")
        rounds.append((s, e, k))
    spatial = sorted(int(i) for i in get_key(item, "sample_frame_indice", ctx, list))
    images: list[dict[str, bytes]] = []
    messages: list[dict[str, str]] = []
    if parity:
        low = released_first_low_res(length, rendering.num_low_res)
        needed = set(low) | set(spatial) | {k for _, _, k in rounds}
        for s, e, _ in rounds:
            needed |= {int(i) for i in released_round_frames(s, e, rendering.frames_per_round)}
        frames = dict(zip(sorted(needed), video.get_frames(sorted(needed)), strict=True))
        f = rendering.patch_factor
        first = (_images(frames, low, rendering.low_res_pixels, f, images)
                 + f"\nHere are {len(low)} low-resolution frames in this video (frame indice is {low})\n"
                 + _images(frames, spatial, rendering.high_res_pixels, f, images)
                 + f"Here are {len(spatial)} high-resolution frames in this video (frame indice:{spatial}).\n"
                 + humans[0].replace(IMAGE_PLACEHOLDER, "")).strip()
        messages.append({"role": "system", "content": system if system is not None else system_message()["content"]})
        messages.append({"role": "user", "content": first})
        for r, gpt in enumerate(gpts):
            messages.append({"role": "assistant", "content": gpt})
            if r == len(rounds):
                break
            s, e, k = rounds[r]
            idx = released_round_frames(s, e, rendering.frames_per_round)
            info = (_images(frames, idx, rendering.low_res_pixels, f, images)
                    + f"\nHere are {len(idx)} low-resolution frames in this video (frame indices are {idx!s})\n"
                    + _images(frames, [k], rendering.keyframe_pixels, f, images)
                    + f"Here is key frames (frame indice:{k}).\n" + f"The text query is '{record.expression}'")
            human = humans[r + 1]
            messages.append({"role": "user", "content": human.replace(IMAGE_PLACEHOLDER, info)
                             if IMAGE_PLACEHOLDER in human else info + human})
    else:
        spatial = initial_frame_indices(length, env.num_high_res, env.mode)
        content, _ = initial_user_content(video, record.expression, env)
        messages += [system_message(), {"role": "user", "content": content_to_text(content, images)}]
        for r, gpt in enumerate(gpts):
            messages.append({"role": "assistant", "content": gpt})
            if r == len(rounds):
                break
            s, e, k = rounds[r]
            content, _ = select_observation_content(video, Action("select", s, e, k), record.expression, env)
            messages.append({"role": "user", "content": content_to_text(content, images)})
    keys = [EnvConfig.turn0_keyframe(length)] + [k for _, _, k in rounds]
    actions = [{"kind": "select", "start": s, "end": e, "keyframe": k} for s, e, k in rounds]
    supervision = SegSupervision(seg_keyframes=keys, spatial_frames=spatial, actions=actions, source="released")
    return SFTSample(record=record, messages=messages, images=images, supervision=supervision)


def convert_released_vts_cot(annotation_file: str | os.PathLike, mask_file: str | os.PathLike,
                             frames_dir: str | os.PathLike, out: str | os.PathLike, *, dataset_name: str = "revos",
                             parity: bool = True, env: EnvConfig | None = None,
                             rendering: ReleasedRendering | None = None, limit: int | None = None,
                             progress: Callable[..., Iterable[Any]] | None = None) -> int:
    """Convert the released VTS-CoT JSON to the SFT parquet; returns the number of rows written."""
    from videoseg_o3_verl.data.converters.videoseg_rl import convert_videoseg_rl_json
    from videoseg_o3_verl.video import VideoSource

    annotation_file = os.fspath(annotation_file)
    data = load_json(annotation_file, "VTS-CoT JSON")
    if not isinstance(data, list):
        raise ValueError(f"{annotation_file}: expected a JSON list of samples, got {type(data).__name__}")
    records: Sequence[RVOSRecord] = convert_videoseg_rl_json(
        os.path.dirname(os.path.abspath(annotation_file)), annotation_file=os.path.abspath(annotation_file),
        mask_file=os.path.abspath(mask_file), frames_dir=os.path.abspath(frames_dir), dataset_name=dataset_name,
        limit=limit, progress=progress)
    env = env or EnvConfig.train()
    rendering = rendering or ReleasedRendering(patch_factor=env.patch_factor)
    rows = []
    for record in records:
        i = int(record.extra["source_index"])
        item = data[i][0] if isinstance(data[i], list) else data[i]
        video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids))
        sample = released_sample(record, video, item, parity=parity, env=env, rendering=rendering,
                                 ctx=where(annotation_file, index=i, video=record.video_id))
        rows.append(sample.to_row(len(rows)))
    write_sft_parquet(rows, out)
    return len(rows)
