# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Ref-SAV evaluation set (`refsav`): the released `ref_sav_eval` layout, a meta-expressions + mask-dict layout.

    <root>/videos/<video>/<frame>.jpg
    <root>/mask_dict.json                   {anno_id: [RLE | null per frame]}
    <root>/meta_expressions_<split>.json    {"videos": {vid: {"frames": [...], "height", "width",
                                              "expressions": {eid: {"exp", "anno_id": [...], "type_id"}}}}}

`type_id` is the expression length class the benchmark reports separately: 0 long, 1 short. Multiple anno_ids of
one expression are OR-merged per frame, as for MeViS and ReVOS.
"""

from __future__ import annotations

import os

from videoseg_o3_verl.data.converters import register_converter
from videoseg_o3_verl.data.converters._common import ProgressLike, take
from videoseg_o3_verl.data.converters.mevis_revos import iter_mask_dict_layout
from videoseg_o3_verl.data.records import RVOSRecord

REFSAV_LONG = 0
"""Ref-SAV `type_id` of long expressions."""
REFSAV_SHORT = 1
"""Ref-SAV `type_id` of short expressions."""


@register_converter("refsav")
def convert_refsav(
    root: str,
    split: str = "valid",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    with_masks: bool = True,
    check_frames: bool = True,
    frames_dir: str | None = None,
    dataset_name: str = "refsav",
) -> list[RVOSRecord]:
    """Ref-SAV `<root>/{videos/, mask_dict.json, meta_expressions_<split>.json}` → records.

    Args:
        root: the `ref_sav_eval` folder.
        split: selects `meta_expressions_<split>.json` (the release has `valid`).
        limit: stop after this many records.
        progress: optional progress wrapper over videos.
        with_masks: read `mask_dict.json` (False builds records without ground truth).
        check_frames: verify that every frame JPEG exists.
        frames_dir: folder holding `<video>/<frame>.jpg`; default `<root>/videos`.
        dataset_name: `record.dataset`.
    """
    return take(
        iter_mask_dict_layout(
            dataset_name=dataset_name,
            meta_file=os.path.join(root, f"meta_expressions_{split}.json"),
            mask_file=os.path.join(root, "mask_dict.json") if with_masks else None,
            frames_root=frames_dir or os.path.join(root, "videos"),
            check_frames=check_frames,
            progress=progress,
        ),
        limit,
    )
