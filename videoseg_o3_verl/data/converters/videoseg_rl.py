# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The VideoSEG-O3 RL annotation JSON (docs/method.md §2) + a MeViS/ReVOS `mask_dict.json` → records.

The RL JSON is a list; element `i` is a list of object-info dicts of which only `[0]` is used (the authors'
`selected_indexes=[0]`). A plain dict element is accepted too (the VTS-CoT files of docs/method.md §10 use that shape).
Fields: `video_name`, `frames` (all frame ids, temporal order), `exp`, `anno_id` (list of mask-dict keys,
OR-merged), `mask_existence` (0/1 per frame, optional). Optional `type_id` is kept; `sample_frame_indice` and
`cot_trace` (VTS-CoT) are kept in `extra`, as is the list index (`source_index`). The expression id is the list
index as a string. Object ids are the anno_ids.

Default paths (docs/method.md §2), relative to `root` = the authors' `data/` folder, for `dataset_name`:

- mevis: `VideoSEG-O3-RL/rl_mevis_data.json`, `video_datas/mevis/<split>/mask_dict.json`,
  frames `video_datas/mevis/<split>/JPEGImages`;
- revos: `VideoSEG-O3-RL/rl_revos_data.json`, `video_datas/revos/mask_dict.json`, frames `video_datas/revos`.

Other names need all three paths. The JSON's `mask_existence` is the record's existence, as the released RL
dataset reads it (the VTG rewards' temporal ground truth); without the field it is derived from the masks. Where it
disagrees with the masks (a frame marked 1 without foreground, or 0 with foreground) the masks stay the IoU ground
truth; the converter counts the disagreeing records and warns with examples, or fails with `strict_existence=True`
(`--opt strict_existence=true`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    where,
)
from videoseg_o3_verl.data.records import RVOSRecord

_DEFAULT_PATHS = {
    "mevis": (
        "VideoSEG-O3-RL/rl_mevis_data.json",
        "video_datas/mevis/{split}/mask_dict.json",
        "video_datas/mevis/{split}/JPEGImages",
    ),
    "revos": ("VideoSEG-O3-RL/rl_revos_data.json", "video_datas/revos/mask_dict.json", "video_datas/revos"),
}
_KEPT_EXTRA_KEYS = ("sample_frame_indice", "cot_trace")
_EXAMPLES = 3
"""Disagreements quoted in the warning."""

logger = logging.getLogger(__name__)


@dataclass
class ExistenceReport:
    """Records whose JSON `mask_existence` disagrees with their masks."""

    records: int = 0
    """How many records disagree on at least one frame."""
    frames: int = 0
    """How many frames disagree in total."""
    examples: list[str] = field(default_factory=list)
    """The first few disagreements, each naming the entry and its first disagreeing frame."""

    def warn(self, annotation_file: str, total: int) -> None:
        if self.records:
            logger.warning("%s: 'mask_existence' disagrees with the masks in %d of %d records (%d frames); the JSON's "
                           "flags are kept as released (--opt strict_existence=true fails instead), e.g. %s",
                           os.path.basename(annotation_file), self.records, total, self.frames,
                           "; ".join(self.examples))


def _existence(given: Any, derived: tuple[int, ...], strict: bool, report: ExistenceReport, ctx: str
               ) -> tuple[int, ...]:
    """The JSON's existence flags after checking their shape; disagreements with the masks are reported."""
    if not isinstance(given, list) or len(given) != len(derived):
        n = len(given) if isinstance(given, list) else type(given).__name__
        raise ValueError(f"{ctx}: 'mask_existence' must be a list with one 0/1 per frame ({len(derived)}), got {n}")
    for t, v in enumerate(given):
        if isinstance(v, bool) or v not in (0, 1):
            raise ValueError(f"{ctx}: 'mask_existence'[{t}] must be 0 or 1, got {v!r}")
    mismatch = [t for t, (a, b) in enumerate(zip(given, derived, strict=True)) if int(a) != b]
    if mismatch:
        t = mismatch[0]
        detail = (f"{ctx}: 'mask_existence' disagrees with the masks at {len(mismatch)} frame(s), first frame {t} "
                  f"(json {given[t]}, mask {'non-empty' if derived[t] else 'empty'})")
        if strict:
            raise ValueError(f"{detail}; strict_existence=True stops on any disagreement")
        report.records += 1
        report.frames += len(mismatch)
        if len(report.examples) < _EXAMPLES:
            report.examples.append(detail)
    return tuple(int(v) for v in given)


def _iter_rl(
    annotation_file: str,
    mask_file: str,
    frames_root: str,
    dataset_name: str,
    check_frames: bool,
    strict_existence: bool,
    progress: ProgressLike | None,
    report: ExistenceReport,
) -> Iterator[RVOSRecord]:
    data = load_json(annotation_file, "RL annotation JSON")
    if not isinstance(data, list):
        raise ValueError(f"{annotation_file}: expected a JSON list of samples, got {type(data).__name__}")
    masks = MaskDict(mask_file)
    checked_videos: set[str] = set()
    for i, element in iterate(progress, list(enumerate(data)), dataset_name):
        ictx = where(annotation_file, index=i)
        if isinstance(element, list):
            if not element:
                raise ValueError(f"{ictx}: empty list of object infos (element [0] is used)")
            info = element[0]
        else:
            info = element
        if not isinstance(info, dict):
            raise ValueError(f"{ictx}: expected an object-info dict, got {type(info).__name__}")
        vid = get_key(info, "video_name", ictx, str)
        ctx = where(annotation_file, index=i, video=vid)
        frames = as_frame_list(get_key(info, "frames", ctx), ctx)
        exp = get_key(info, "exp", ctx, str)
        anno_ids = as_id_list(get_key(info, "anno_id", ctx), ctx, "anno_id")
        frames_dir = os.path.abspath(os.path.join(frames_root, vid))
        if check_frames and vid not in checked_videos:
            check_frame_files(frames_dir, frames, ".jpg", ctx)
            checked_videos.add(vid)
        merged = merge_objects([masks.get(a, len(frames), ctx) for a in anno_ids], ctx)
        existence = existence_of(merged)
        if "mask_existence" in info:
            existence = _existence(info["mask_existence"], existence, strict_existence, report, ctx)
        hw = hw_of(merged)
        if hw is None:
            hw = hw_of([m for a in anno_ids for m in masks.get(a, len(frames), ctx)])
        if hw is None:
            hw = image_hw(os.path.join(frames_dir, frames[0] + ".jpg"), ctx)
        extra: dict[str, Any] = {"source_index": i}
        extra.update({k: info[k] for k in _KEPT_EXTRA_KEYS if k in info})
        yield folder_record(
            ctx,
            frames_dir=frames_dir,
            frames=frames,
            hw=hw,
            dataset=dataset_name,
            video_id=vid,
            expression=exp,
            expression_id=str(i),
            object_ids=anno_ids,
            mask_existence=existence,
            masks_rle=merged,
            type_id=info.get("type_id"),
            extra=extra,
        )


@register_converter("videoseg_rl_json")
def convert_videoseg_rl_json(
    root: str,
    split: str = "train",
    *,
    limit: int | None = None,
    progress: ProgressLike | None = None,
    dataset_name: str = "mevis",
    annotation_file: str | None = None,
    mask_file: str | None = None,
    frames_dir: str | None = None,
    check_frames: bool = True,
    strict_existence: bool = False,
) -> list[RVOSRecord]:
    """The authors' RL JSON → records (layout and defaults in the module docstring).

    Args:
        root: the authors' `data/` folder (default paths are relative to it).
        split: MeViS split folder used in the default mevis paths.
        limit: stop after this many records.
        progress: optional progress wrapper over the JSON entries.
        dataset_name: `record.dataset`; "mevis"/"revos" also select default paths.
        annotation_file: RL JSON path (absolute, or relative to `root`).
        mask_file: `mask_dict.json` path (absolute, or relative to `root`).
        frames_dir: folder holding `<video_name>/<frame>.jpg` (absolute, or relative to `root`).
        check_frames: verify that every frame JPEG exists (once per video).
        strict_existence: fail when the JSON's `mask_existence` disagrees with the masks (default: keep the JSON's
            flags as released, count the disagreements and warn with examples).
    """
    if not isinstance(strict_existence, bool):
        raise ValueError(f"strict_existence must be true or false, got {strict_existence!r}")
    defaults = _DEFAULT_PATHS.get(dataset_name)
    given = {"annotation_file": annotation_file, "mask_file": mask_file, "frames_dir": frames_dir}
    if defaults is None and any(v is None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        raise ValueError(f"dataset_name {dataset_name!r} has no default paths (known: {sorted(_DEFAULT_PATHS)}); "
                         f"pass {missing}")
    # an absolute path replaces root in os.path.join
    paths = [
        os.path.join(root, value if value is not None else defaults[k].format(split=split))  # type: ignore[index]
        for k, value in enumerate(given.values())
    ]
    report = ExistenceReport()
    records = take(_iter_rl(paths[0], paths[1], paths[2], dataset_name, check_frames, strict_existence, progress,
                            report), limit)
    report.warn(paths[0], len(records))
    return records
