# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Long-RVOS (minute-long videos) → records.

Layout of the release (github.com/iSEE-Laboratory/Long_RVOS README and its dataset/eval code; the VideoSEG-O3
evaluation reads the same `valid/` folder):

    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/<split>/Annotations/<video>/<obj_id>/<frame>.png     grey PNG per object, > 0 = target
    <root>/<split>/meta_expressions.json
        {"videos": {vid: {"frames": [...],
                          "expressions": {eid: {"exp": str, "obj_id": int | [int], "type": "static" |
                                                "dynamic" | "hybrid"}}}}}

As in the official evaluation, a frame WITHOUT a PNG in the object's folder means "target absent" (objects
disappear and re-appear); the object folder itself must exist. A list `obj_id` is OR-merged. The description
type is kept in `extra["type"]`; `type_id` is None.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from videoseg_o3_verl.data.converters import register_converter
from videoseg_o3_verl.data.converters._common import (
    ProgressLike,
    as_frame_list,
    as_id_list,
    check_frame_files,
    encode_or_none,
    existence_of,
    folder_record,
    get_key,
    hw_of,
    image_hw,
    iterate,
    load_json,
    merge_objects,
    read_label_png,
    take,
    videos_of,
    where,
)
from videoseg_o3_verl.data.records import RLE, RVOSRecord


def _object_masks(folder: str, frames: list[str], ctx: str) -> list[RLE | None]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{ctx}: object annotation folder {folder} does not exist")
    present = set(os.listdir(folder))
    return [
        encode_or_none(read_label_png(os.path.join(folder, f + ".png"), ctx) > 0) if f + ".png" in present else None
        for f in frames
    ]


def _iter_longrvos(
    root: str, split: str, dataset_name: str, with_masks: bool, check_frames: bool, progress: ProgressLike | None
) -> Iterator[RVOSRecord]:
    split_dir = os.path.join(root, split)
    meta_file = os.path.join(split_dir, "meta_expressions.json")
    ann_root = os.path.join(split_dir, "Annotations")
    if with_masks and not os.path.isdir(ann_root):
        raise FileNotFoundError(f"annotation folder {ann_root} does not exist (pass with_masks=False for a split "
                                f"without masks)")
    videos = videos_of(load_json(meta_file, "Long-RVOS meta expressions file"), meta_file)
    for vid, vdata in iterate(progress, list(videos.items()), dataset_name):
        vctx = where(meta_file, video=vid)
        frames = as_frame_list(get_key(vdata, "frames", vctx), vctx)
        expressions = get_key(vdata, "expressions", vctx, dict)
        frames_dir = os.path.abspath(os.path.join(split_dir, "JPEGImages", vid))
        if check_frames:
            check_frame_files(frames_dir, frames, ".jpg", vctx)
        cache: dict[str, list[RLE | None]] = {}
        video_hw: tuple[int, int] | None = None
        for eid, edata in expressions.items():
            ctx = where(meta_file, video=vid, expression=eid)
            exp = get_key(edata, "exp", ctx, str)
            obj_ids = as_id_list(get_key(edata, "obj_id", ctx), ctx, "obj_id")
            masks: tuple[RLE | None, ...] = ()
            if with_masks:
                for oid in obj_ids:
                    if str(oid) not in cache:
                        cache[str(oid)] = _object_masks(os.path.join(ann_root, vid, str(oid)), frames, ctx)
                masks = merge_objects([cache[str(o)] for o in obj_ids], ctx)
            hw = hw_of(masks)
            if hw is None:
                video_hw = video_hw or image_hw(os.path.join(frames_dir, frames[0] + ".jpg"), vctx)
                hw = video_hw
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
                mask_existence=existence_of(masks),
                masks_rle=masks,
                type_id=None,
                extra={"type": edata["type"]} if "type" in edata else {},
            )


@register_converter("longrvos")
def convert_longrvos(
    root: str,
    split: str = "valid",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    with_masks: bool = True,
    check_frames: bool = True,
    dataset_name: str = "longrvos",
) -> list[RVOSRecord]:
    """Long-RVOS `<root>/<split>/{JPEGImages, Annotations, meta_expressions.json}` → records.

    Args:
        root: Long-RVOS root (holding `train/`, `valid/`, `test/`).
        split: split folder name.
        limit: stop after this many records.
        progress: optional progress wrapper over videos.
        with_masks: read `Annotations/` (False: records without ground truth).
        check_frames: verify that every frame JPEG exists.
        dataset_name: `record.dataset`.
    """
    return take(_iter_longrvos(root, split, dataset_name, with_masks, check_frames, progress), limit)
