# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The synthetic dataset of `videoseg_o3_verl.data.synthetic` → records, through the real ReVOS/MeViS readers."""

from __future__ import annotations

import os

from videoseg_o3_verl.data.converters import register_converter
from videoseg_o3_verl.data.converters._common import ProgressLike
from videoseg_o3_verl.data.converters.mevis_revos import convert_mevis, convert_revos
from videoseg_o3_verl.data.records import RVOSRecord


@register_converter("synthetic")
def convert_synthetic(
    root: str,
    split: str = "train",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    layout: str | None = None,
    check_frames: bool = True,
    dataset_name: str = "synthetic",
) -> list[RVOSRecord]:
    """Read a dataset written by `generate_synthetic_dataset`.

    Args:
        root: the generator's output folder.
        split: split name.
        limit: stop after this many records.
        progress: optional progress wrapper over videos.
        layout: "revos" or "mevis"; default: "mevis" when `<root>/<split>/meta_expressions.json` exists, else
            "revos".
        check_frames: verify that every frame JPEG exists.
        dataset_name: `record.dataset`.
    """
    if layout is None:
        layout = "mevis" if os.path.isfile(os.path.join(root, split, "meta_expressions.json")) else "revos"
    if layout == "revos":
        return convert_revos(root, split, limit=limit, progress=progress, check_frames=check_frames,
                             dataset_name=dataset_name)
    if layout == "mevis":
        return convert_mevis(root, split, limit=limit, progress=progress, with_masks=True,
                             check_frames=check_frames, dataset_name=dataset_name)
    raise ValueError(f"layout must be 'revos' or 'mevis', got {layout!r}")
