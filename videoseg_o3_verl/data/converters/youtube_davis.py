# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Ref-YouTube-VOS (`refytvos`) and Ref-DAVIS17 (`refdavis`): JPEG frames + palette PNG annotations.

Layout (the Ref-YouTube-VOS release; Ref-DAVIS17 as converted to the same layout by ReferFormer/Sa2VA):

    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/<split>/Annotations/<video>/<frame>.png      palette ('P') PNG, pixel value = object id (0 = background)
    <root>/meta_expressions/<split>/meta_expressions.json
        {"videos": {vid: {"frames": [...], "expressions": {eid: {"exp": str, "obj_id": "1"}}}}}

The target mask of an expression on frame t is `png_t == int(obj_id)`. A frame whose annotation PNG is missing is
an error by default (`missing_mask="absent"` treats it as "target absent"). Splits without `Annotations/`
(Ref-YouTube-VOS `valid`/`test`, submission-only) need `with_masks=False` and give records without ground truth.
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
    image_hw,
    iterate,
    load_json,
    read_label_png,
    take,
    videos_of,
    where,
)
from videoseg_o3_verl.data.records import RLE, RVOSRecord

_MISSING_MASK_POLICIES = ("error", "absent")


def _object_masks(
    ann_dir: str, frames: list[str], obj_ids: set[int], missing_mask: str, ctx: str
) -> tuple[dict[int, list[RLE | None]], tuple[int, int]]:
    """Per object id the per-frame RLEs of one video, and the video's (H, W) from its PNGs."""
    if not os.path.isdir(ann_dir):
        raise FileNotFoundError(f"{ctx}: annotation folder {ann_dir} does not exist")
    per_obj: dict[int, list[RLE | None]] = {o: [] for o in obj_ids}
    hw: tuple[int, int] | None = None
    for frame in frames:
        path = os.path.join(ann_dir, frame + ".png")
        if not os.path.isfile(path):
            if missing_mask == "error":
                raise FileNotFoundError(f"{ctx}: annotation {path} is missing (pass missing_mask='absent' to "
                                        f"treat frames without a PNG as target-absent)")
            for o in obj_ids:
                per_obj[o].append(None)
            continue
        labels = read_label_png(path, ctx)  # [H, W] int
        if hw is None:
            hw = (int(labels.shape[0]), int(labels.shape[1]))
        elif labels.shape != hw:
            raise ValueError(f"{ctx}: annotation {path} has size {labels.shape}, earlier frames {hw}")
        for o in obj_ids:
            per_obj[o].append(encode_or_none(labels == o))
    if hw is None:
        raise FileNotFoundError(f"{ctx}: no annotation PNG found in {ann_dir}")
    return per_obj, hw


def iter_palette_layout(
    *,
    dataset_name: str,
    meta_file: str,
    frames_root: str,
    ann_root: str | None,
    check_frames: bool,
    missing_mask: str,
    progress: ProgressLike | None,
) -> Iterator[RVOSRecord]:
    """Records of a JPEGImages + palette-PNG Annotations layout (`ann_root=None`: no ground truth)."""
    if missing_mask not in _MISSING_MASK_POLICIES:
        raise ValueError(f"missing_mask must be one of {_MISSING_MASK_POLICIES}, got {missing_mask!r}")
    if ann_root is not None and not os.path.isdir(ann_root):
        raise FileNotFoundError(f"annotation folder {ann_root} does not exist (submission-only splits have no "
                                f"masks: pass with_masks=False)")
    videos = videos_of(load_json(meta_file, "meta expressions file"), meta_file)
    for vid, vdata in iterate(progress, list(videos.items()), dataset_name):
        vctx = where(meta_file, video=vid)
        frames = as_frame_list(get_key(vdata, "frames", vctx), vctx)
        expressions = get_key(vdata, "expressions", vctx, dict)
        frames_dir = os.path.abspath(os.path.join(frames_root, vid))
        if check_frames:
            check_frame_files(frames_dir, frames, ".jpg", vctx)
        targets: dict[str, int] = {}
        for eid, edata in expressions.items():
            ctx = where(meta_file, video=vid, expression=eid)
            get_key(edata, "exp", ctx, str)
            ids = as_id_list(get_key(edata, "obj_id", ctx), ctx, "obj_id")
            if len(ids) != 1:
                raise ValueError(f"{ctx}: obj_id must be a single object id, got {ids!r}")
            raw = ids[0]
            try:
                targets[eid] = int(raw)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{ctx}: obj_id {raw!r} is not an integer object id") from err
            if targets[eid] <= 0:
                raise ValueError(f"{ctx}: obj_id {raw!r} must be a positive palette index (0 is background)")
        if ann_root is not None:
            per_obj, hw = _object_masks(os.path.join(ann_root, vid), frames, set(targets.values()), missing_mask, vctx)
        else:
            per_obj, hw = {}, image_hw(os.path.join(frames_dir, frames[0] + ".jpg"), vctx)
        for eid, edata in expressions.items():
            ctx = where(meta_file, video=vid, expression=eid)
            masks = tuple(per_obj[targets[eid]]) if ann_root is not None else ()
            yield folder_record(
                ctx,
                frames_dir=frames_dir,
                frames=frames,
                hw=hw,
                dataset=dataset_name,
                video_id=vid,
                expression=edata["exp"],
                expression_id=str(eid),
                object_ids=(targets[eid],),
                mask_existence=existence_of(masks),
                masks_rle=masks,
                type_id=None,
                extra={},
            )


def _convert(
    name: str,
    root: str,
    split: str,
    limit: int | None,
    progress: ProgressLike | None,
    with_masks: bool,
    check_frames: bool,
    missing_mask: str,
) -> list[RVOSRecord]:
    return take(
        iter_palette_layout(
            dataset_name=name,
            meta_file=os.path.join(root, "meta_expressions", split, "meta_expressions.json"),
            frames_root=os.path.join(root, split, "JPEGImages"),
            ann_root=os.path.join(root, split, "Annotations") if with_masks else None,
            check_frames=check_frames,
            missing_mask=missing_mask,
            progress=progress,
        ),
        limit,
    )


@register_converter("refytvos")
def convert_refytvos(
    root: str,
    split: str = "train",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    with_masks: bool = True,
    check_frames: bool = True,
    missing_mask: str = "error",
    dataset_name: str = "refytvos",
) -> list[RVOSRecord]:
    """Ref-YouTube-VOS → records (layout in the module docstring).

    Args:
        root: dataset root (holding `train/`, `valid/`, `meta_expressions/`).
        split: split name.
        limit: stop after this many records.
        progress: optional progress wrapper over videos.
        with_masks: read `Annotations/` (False for the submission-only `valid` split).
        check_frames: verify that every frame JPEG exists.
        missing_mask: "error" (default) or "absent" for frames without an annotation PNG.
        dataset_name: `record.dataset`.
    """
    return _convert(dataset_name, root, split, limit, progress, with_masks, check_frames, missing_mask)


@register_converter("refdavis")
def convert_refdavis(
    root: str,
    split: str = "valid",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    with_masks: bool = True,
    check_frames: bool = True,
    missing_mask: str = "error",
    dataset_name: str = "refdavis",
) -> list[RVOSRecord]:
    """Ref-DAVIS17 → records (same layout as Ref-YouTube-VOS; arguments as `convert_refytvos`)."""
    return _convert(dataset_name, root, split, limit, progress, with_masks, check_frames, missing_mask)
