# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""MeViS and ReVOS: JPEG frames + `mask_dict.json` (COCO RLE per anno_id and frame) + meta expressions.

MeViS (`mevis`), as released:

    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/<split>/mask_dict.json            {anno_id: [RLE | null per frame]}   (absent for `valid`)
    <root>/<split>/meta_expressions.json     {"videos": {vid: {"frames": [...],
                                               "expressions": {eid: {"exp", "obj_id": [...], "anno_id": [...]}}}}}

ReVOS (`revos`), as released (video ids contain "/", e.g. "UVO/all/-fbscFfkh4M"):

    <root>/JPEGImages/<video>/<frame>.jpg    (or <root>/<video>/<frame>.jpg, the Sa2VA / VideoSEG-O3 layout)
    <root>/mask_dict.json                    shared by all splits
    <root>/mask_dict_foreground.json         optional, {vid: {"masks_rle": [...]}} for the R metric
    <root>/meta_expressions_{train,valid}_.json   like MeViS, expressions also carry "type_id"
                                                  (0 referring, 1 reasoning) and videos "height"/"width"

Multiple anno_ids of one expression are OR-merged per frame (docs/method.md §2). A frame is "present" when the merged
mask has a foreground pixel. When `mask_dict_foreground.json` exists, `extra["foreground"]` holds
`{"file": <abs path>, "key": <video id>}` (the file is not loaded: it is read by the evaluator).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from videoseg_o3_verl.data.converters import register_converter
from videoseg_o3_verl.data.converters._common import (
    MaskDict,
    ProgressLike,
    as_frame_list,
    as_id_list,
    check_frame_files,
    existence_of,
    folder_record,
    get_key,
    hw_of,
    image_hw,
    iterate,
    load_json,
    merge_objects,
    take,
    videos_of,
    where,
)
from videoseg_o3_verl.data.records import RVOSRecord


def iter_mask_dict_layout(
    *,
    dataset_name: str,
    meta_file: str,
    mask_file: str | None,
    frames_root: str,
    check_frames: bool,
    progress: ProgressLike | None,
    extra_fn: Any = None,
) -> Iterator[RVOSRecord]:
    """Records of a `meta_expressions` + `mask_dict` layout (shared by MeViS, ReVOS and formatted ReasonVOS).

    Args:
        dataset_name: `record.dataset`.
        meta_file: the meta-expressions JSON.
        mask_file: the mask dict JSON, or None for no ground truth (submission splits).
        frames_root: folder holding `<video>/<frame>.jpg`.
        check_frames: verify that every frame file exists.
        progress: optional progress wrapper over videos.
        extra_fn: optional `(video_id, video_dict, expression_dict) -> dict` of extra metadata.
    """
    meta = load_json(meta_file, "meta expressions file")
    videos = videos_of(meta, meta_file)
    masks = MaskDict(mask_file) if mask_file is not None else None
    items = list(videos.items())
    for vid, vdata in iterate(progress, items, dataset_name):
        vctx = where(meta_file, video=vid)
        frames = as_frame_list(get_key(vdata, "frames", vctx), vctx)
        expressions = get_key(vdata, "expressions", vctx, dict)
        frames_dir = os.path.abspath(os.path.join(frames_root, vid))
        if check_frames:
            check_frame_files(frames_dir, frames, ".jpg", vctx)
        video_hw: tuple[int, int] | None = None
        for eid, edata in expressions.items():
            ctx = where(meta_file, video=vid, expression=eid)
            exp = get_key(edata, "exp", ctx, str)
            anno_ids = as_id_list(get_key(edata, "anno_id", ctx), ctx, "anno_id")
            obj_ids = as_id_list(edata["obj_id"], ctx, "obj_id") if edata.get("obj_id") is not None else anno_ids
            type_id = edata.get("type_id")
            if masks is not None:
                per_object = [masks.get(a, len(frames), ctx) for a in anno_ids]
                merged = merge_objects(per_object, ctx)
                existence = existence_of(merged)
                hw = hw_of([m for obj in per_object for m in obj])
            else:
                merged, existence, hw = (), (), None
            if hw is None:
                if "height" in vdata and "width" in vdata:
                    hw = (get_key(vdata, "height", vctx, int), get_key(vdata, "width", vctx, int))
                else:
                    if video_hw is None:
                        video_hw = image_hw(os.path.join(frames_dir, frames[0] + ".jpg"), vctx)
                    hw = video_hw
            extra = extra_fn(vid, vdata, edata) if extra_fn is not None else {}
            yield folder_record(
                ctx,
                frames_dir=frames_dir,
                frames=frames,
                hw=hw,
                dataset=dataset_name,
                video_id=vid,
                expression=exp,
                expression_id=str(eid),
                object_ids=obj_ids,
                mask_existence=existence,
                masks_rle=merged,
                type_id=type_id,
                extra=extra,
            )


@register_converter("mevis")
def convert_mevis(
    root: str,
    split: str = "train",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    with_masks: bool | None = None,
    check_frames: bool = True,
    dataset_name: str = "mevis",
) -> list[RVOSRecord]:
    """MeViS `<root>/<split>/{JPEGImages, mask_dict.json, meta_expressions.json}` → records.

    Args:
        root: MeViS root (the folder holding `train/`, `valid_u/`, `valid/`).
        split: split folder name.
        limit: stop after this many records.
        progress: optional progress wrapper over videos.
        with_masks: read `mask_dict.json` (True), build records without ground truth (False), or decide by
            whether the file exists (None, the default: MeViS `valid` has no masks).
        check_frames: verify that every frame JPEG exists.
        dataset_name: `record.dataset` (e.g. "mevis_valid_u").
    """
    split_dir = os.path.join(root, split)
    mask_file = os.path.join(split_dir, "mask_dict.json")
    use_masks = os.path.isfile(mask_file) if with_masks is None else with_masks
    return take(
        iter_mask_dict_layout(
            dataset_name=dataset_name,
            meta_file=os.path.join(split_dir, "meta_expressions.json"),
            mask_file=mask_file if use_masks else None,
            frames_root=os.path.join(split_dir, "JPEGImages"),
            check_frames=check_frames,
            progress=progress,
        ),
        limit,
    )


@register_converter("revos")
def convert_revos(
    root: str,
    split: str = "train",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    with_masks: bool = True,
    check_frames: bool = True,
    frames_dir: str | None = None,
    meta_file: str | None = None,
    mask_file: str | None = None,
    dataset_name: str = "revos",
) -> list[RVOSRecord]:
    """ReVOS `<root>/{JPEGImages/, mask_dict.json, meta_expressions_<split>_.json}` → records.

    Args:
        root: ReVOS root.
        split: "train" or "valid" (selects `meta_expressions_<split>_.json`).
        limit: stop after this many records.
        progress: optional progress wrapper over videos.
        with_masks: read `mask_dict.json` (False builds records without ground truth).
        check_frames: verify that every frame JPEG exists.
        frames_dir: folder holding `<video>/<frame>.jpg`; default `<root>/JPEGImages` when that folder exists,
            else `<root>` (the layout used by Sa2VA / VideoSEG-O3, docs/method.md §2).
        meta_file: override of the meta-expressions path.
        mask_file: override of the mask-dict path.
        dataset_name: `record.dataset`.
    """
    if frames_dir is None:
        jpeg = os.path.join(root, "JPEGImages")
        frames_dir = jpeg if os.path.isdir(jpeg) else root
    meta_file = meta_file or os.path.join(root, f"meta_expressions_{split}_.json")
    mask_file = mask_file or os.path.join(root, "mask_dict.json")
    foreground = os.path.join(root, "mask_dict_foreground.json")
    extra_fn = None
    if os.path.isfile(foreground):
        fg_abs = os.path.abspath(foreground)

        def extra_fn(vid: str, vdata: Any, edata: Any) -> dict[str, Any]:
            return {"foreground": {"file": fg_abs, "key": vid}}

    return take(
        iter_mask_dict_layout(
            dataset_name=dataset_name,
            meta_file=meta_file,
            mask_file=mask_file if with_masks else None,
            frames_root=frames_dir,
            check_frames=check_frames,
            progress=progress,
            extra_fn=extra_fn,
        ),
        limit,
    )
