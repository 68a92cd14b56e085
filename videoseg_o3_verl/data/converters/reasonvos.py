# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""ReasonVOS (VideoLISA's reasoning-VOS benchmark; evaluation only) → records.

Two on-disk layouts are supported (`layout=`):

"raw" — the VideoLISA release (layout read from VideoLISA's `benchmark_check.py`-style loaders and the
formatting script that derives the mask dict from it):

    <root>/JPEGImages/<video>/<frame>.jpg
    <root>/meta_expressions.json
        {"videos": {vid: {"source": str, "frames": [...],
                          "expressions": [{"exp_id", "obj_id", "exp_text", "is_sent"}, ...]}}}
    <root>/Annotations/<source>_<vid>_<obj_id>/<frame>.png      binary PNG per object (> 0 = target)

"mask_dict" — the formatted variant the VideoSEG-O3 evaluation reads (`data/video_datas/reasonvos/`):

    <root>/JPEGImages/<video>/<frame>.jpg
    <root>/meta_expressions_format.json   {"videos": {vid: {"frames", "expressions": {eid: {"exp", "anno_id"}}}}}
    <root>/mask_dict.json                 {anno_id: [RLE | null per frame]}

`layout="auto"` (default) picks "mask_dict" when `<root>/mask_dict.json` exists, else "raw".

ASSUMPTIONS (the raw layout is documented only through third-party loaders): mask PNGs are named by frame stem;
a frame without a PNG is an error unless `missing_mask="absent"`. ReasonVOS has duplicate `exp_id`s within a
video; the first keeps its id and later ones become `"<exp_id>_dup<k>"` (the VideoSEG-O3 formatted file
re-numbers them differently, so expression ids of the two layouts are not comparable). `source` and `is_sent`
are kept in `extra`. ReasonVOS has no expression types: `type_id` is None.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from videoseg_o3_verl.data.converters import register_converter
from videoseg_o3_verl.data.converters._common import (
    ProgressLike,
    as_frame_list,
    check_frame_files,
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
from videoseg_o3_verl.data.converters.mevis_revos import iter_mask_dict_layout
from videoseg_o3_verl.data.records import RLE, RVOSRecord

_LAYOUTS = ("auto", "raw", "mask_dict")


def _binary_masks(folder: str, frames: list[str], missing_mask: str, ctx: str) -> list[RLE | None]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{ctx}: object mask folder {folder} does not exist")
    present = set(os.listdir(folder))
    masks: list[RLE | None] = []
    for frame in frames:
        if frame + ".png" not in present:
            if missing_mask == "error":
                raise FileNotFoundError(f"{ctx}: mask {os.path.join(folder, frame + '.png')} is missing "
                                        f"(pass missing_mask='absent' to treat it as target-absent)")
            masks.append(None)
            continue
        labels = read_label_png(os.path.join(folder, frame + ".png"), ctx)  # [H, W]
        masks.append(encode_or_none(labels > 0))
    return masks


def _iter_raw(
    root: str, dataset_name: str, check_frames: bool, missing_mask: str, progress: ProgressLike | None
) -> Iterator[RVOSRecord]:
    meta_file = os.path.join(root, "meta_expressions.json")
    videos = videos_of(load_json(meta_file, "ReasonVOS meta expressions file"), meta_file)
    for vid, vdata in iterate(progress, list(videos.items()), dataset_name):
        vctx = where(meta_file, video=vid)
        frames = as_frame_list(get_key(vdata, "frames", vctx), vctx)
        source = get_key(vdata, "source", vctx, str)
        expressions = get_key(vdata, "expressions", vctx, list)
        frames_dir = os.path.abspath(os.path.join(root, "JPEGImages", vid))
        if check_frames:
            check_frame_files(frames_dir, frames, ".jpg", vctx)
        cache: dict[str, list[RLE | None]] = {}
        seen: dict[str, int] = {}
        for k, edata in enumerate(expressions):
            ectx = where(meta_file, video=vid, index=k)
            exp_id = str(get_key(edata, "exp_id", ectx, (int, str)))
            ctx = where(meta_file, video=vid, expression=exp_id)
            exp = get_key(edata, "exp_text", ctx, str)
            obj_id = get_key(edata, "obj_id", ctx, (int, str))
            if exp_id in seen:
                seen[exp_id] += 1
                exp_id = f"{exp_id}_dup{seen[exp_id]}"
            else:
                seen[exp_id] = 0
            folder = os.path.join(root, "Annotations", f"{source}_{vid}_{obj_id}")
            if folder not in cache:
                cache[folder] = _binary_masks(folder, frames, missing_mask, ctx)
            masks = tuple(cache[folder])
            hw = hw_of(masks) or image_hw(os.path.join(frames_dir, frames[0] + ".jpg"), vctx)
            extra: dict[str, Any] = {"source": source}
            if "is_sent" in edata:
                extra["is_sent"] = edata["is_sent"]
            yield folder_record(
                ctx,
                frames_dir=frames_dir,
                frames=frames,
                hw=hw,
                dataset=dataset_name,
                video_id=vid,
                expression=exp,
                expression_id=exp_id,
                object_ids=(obj_id,),
                mask_existence=existence_of(masks),
                masks_rle=masks,
                type_id=None,
                extra=extra,
            )


def _formatted_extra(vid: str, vdata: Any, edata: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if isinstance(vdata.get("source"), str):
        extra["source"] = vdata["source"]
    if "is_sent" in edata:
        extra["is_sent"] = edata["is_sent"]
    return extra


@register_converter("reasonvos")
def convert_reasonvos(
    root: str,
    split: str = "valid",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    layout: str = "auto",
    check_frames: bool = True,
    missing_mask: str = "error",
    meta_file: str | None = None,
    dataset_name: str = "reasonvos",
) -> list[RVOSRecord]:
    """ReasonVOS → records (layouts in the module docstring).

    Args:
        root: ReasonVOS root (`.../ReasonVOS` or `data/video_datas/reasonvos`).
        split: only "valid" exists (ReasonVOS is an evaluation benchmark).
        limit: stop after this many records.
        progress: optional progress wrapper over videos.
        layout: "auto", "raw" or "mask_dict".
        check_frames: verify that every frame JPEG exists.
        missing_mask: raw layout: "error" (default) or "absent" for frames without a mask PNG.
        meta_file: mask_dict layout: meta file (default `<root>/meta_expressions_format.json`).
        dataset_name: `record.dataset`.
    """
    if split != "valid":
        raise ValueError(f"ReasonVOS has only the 'valid' split, got split={split!r}")
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    if missing_mask not in ("error", "absent"):
        raise ValueError(f"missing_mask must be 'error' or 'absent', got {missing_mask!r}")
    mask_file = os.path.join(root, "mask_dict.json")
    if layout == "auto":
        layout = "mask_dict" if os.path.isfile(mask_file) else "raw"
    if layout == "raw":
        return take(_iter_raw(root, dataset_name, check_frames, missing_mask, progress), limit)
    return take(
        iter_mask_dict_layout(
            dataset_name=dataset_name,
            meta_file=meta_file or os.path.join(root, "meta_expressions_format.json"),
            mask_file=mask_file,
            frames_root=os.path.join(root, "JPEGImages"),
            check_frames=check_frames,
            progress=progress,
            extra_fn=_formatted_extra,
        ),
        limit,
    )

