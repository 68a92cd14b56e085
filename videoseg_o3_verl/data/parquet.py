# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""verl parquet rows for RVOS records: the contract between the data converters, the agent loop and the trainer.

Row schema (one row per `RVOSRecord`; verl's `RLHFDataset` reads it unchanged):

- `data_source` (str): dataset name (`record.dataset`), e.g. "mevis", "revos", "synthetic".
- `agent_name` (str): `"videoseg_o3"`, selects our agent loop per sample.
- `ability` (str): `"rvos"`.
- `prompt` (list of {role, content}): `[{"role": "system", "content": SEG_COT_SYS}, {"role": "user", "content":
  SEG_COT_TEMPORAL_TEMPLATE.format(question=expression, total_frames=T)}]`. Text only: the agent loop inserts
  the initial frames and their index texts (docs/method.md §3.1) before the query text.
- `reward_model` ({style, ground_truth}): `{"style": "rule", "ground_truth": record.expression_id}`.
- `extra_info` ({index, videoseg}): `{"index": i, "videoseg": <JSON string of the whole record>}`.

`extra_info.videoseg` is `RVOSRecord.to_json()`: every record field, including the per-frame RLE masks, as ONE
JSON string, so that pyarrow schema inference never meets None-heavy nested lists and every row has the same
schema. Readers call `record_from_extra_info(row["extra_info"])` (or `RVOSRecord.from_row(row)`).
`i` is the row's position in its file (after the optional shuffle).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.env.prompts import SEG_COT_SYS, SEG_COT_TEMPORAL_TEMPLATE

AGENT_NAME = "videoseg_o3"
"""Value of the `agent_name` column (the registered agent loop)."""

ABILITY = "rvos"
"""Value of the `ability` column."""

EXTRA_INFO_KEY = "videoseg"
"""Key of the record JSON inside `extra_info`."""


def build_prompt(expression: str, num_frames: int) -> list[dict[str, str]]:
    """The text-only initial messages of a sample (docs/method.md §3.1; frames are added by the agent loop).

    Example:
        >>> msgs = build_prompt("the red square", 24)
        >>> [m["role"] for m in msgs], msgs[1]["content"].strip()[:31]
        (['system', 'user'], 'The query is "the red square". ')
    """
    return [
        {"role": "system", "content": SEG_COT_SYS},
        {"role": "user", "content": SEG_COT_TEMPORAL_TEMPLATE.format(question=expression, total_frames=num_frames)},
    ]


def record_to_row(record: RVOSRecord, index: int) -> dict[str, Any]:
    """The verl parquet row of one record (schema in the module docstring)."""
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
        raise ValueError(f"row index must be a non-negative int, got {index!r} (record {record.name})")
    return {
        "data_source": record.dataset,
        "agent_name": AGENT_NAME,
        "ability": ABILITY,
        "prompt": build_prompt(record.expression, record.num_frames),
        "reward_model": {"style": "rule", "ground_truth": record.expression_id},
        "extra_info": {"index": int(index), EXTRA_INFO_KEY: record.to_json()},
    }


def record_from_extra_info(extra_info: Mapping[str, Any]) -> RVOSRecord:
    """Rebuild the record stored in a row's `extra_info` (as written by `record_to_row`)."""
    if not isinstance(extra_info, Mapping):
        raise TypeError(f"extra_info must be a dict, got {type(extra_info).__name__}")
    if EXTRA_INFO_KEY not in extra_info or extra_info[EXTRA_INFO_KEY] is None:
        raise ValueError(f"extra_info (index {extra_info.get('index', '?')}) has no '{EXTRA_INFO_KEY}' entry; "
                         f"keys: {sorted(extra_info)}. Was the parquet written by videoseg_o3_verl.data.parquet?")
    payload = extra_info[EXTRA_INFO_KEY]
    if isinstance(payload, str):
        return RVOSRecord.from_json(payload)
    if isinstance(payload, Mapping):
        return RVOSRecord.from_payload(payload)
    raise TypeError(f"extra_info['{EXTRA_INFO_KEY}'] must be a JSON str, got {type(payload).__name__}")


def record_from_row(row: Mapping[str, Any]) -> RVOSRecord:
    """Rebuild the record of a parquet row (or of an `RLHFDataset` item)."""
    if "extra_info" not in row:
        raise ValueError(f"row has no 'extra_info' column; columns: {sorted(row)}")
    return record_from_extra_info(row["extra_info"])


def write_parquet(records: Sequence[RVOSRecord], path: str | os.PathLike, shuffle_seed: int | None = None) -> str:
    """Write records as verl parquet rows.

    Args:
        records: the records, written in this order unless `shuffle_seed` is given.
        path: output `.parquet` file (parent folders are created).
        shuffle_seed: if not None, rows are permuted with `np.random.default_rng(shuffle_seed)`.

    Returns:
        The path written.
    """
    import pandas as pd

    path = os.fspath(path)
    if not path.endswith(".parquet"):
        raise ValueError(f"output path must end with '.parquet' (verl picks the reader by extension), got {path!r}")
    if not records:
        raise ValueError(f"no records to write to {path}")
    order = list(range(len(records)))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(records)).tolist()
    rows = [record_to_row(records[j], i) for i, j in enumerate(order)]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False, engine="pyarrow")
    return path


def read_parquet_records(path: str | os.PathLike) -> list[RVOSRecord]:
    """Read back the records of a parquet file written by `write_parquet` (in row order)."""
    import pandas as pd

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"parquet file {path} does not exist")
    frame = pd.read_parquet(path, engine="pyarrow")
    if "extra_info" not in frame.columns:
        raise ValueError(f"{path}: no 'extra_info' column (columns: {list(frame.columns)})")
    records = []
    for i, extra in enumerate(frame["extra_info"]):
        try:
            records.append(record_from_extra_info(extra))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: row {i}: {err}") from err
    return records


def split_by_video(
    records: Sequence[RVOSRecord], val_fraction: float, seed: int = 0
) -> tuple[list[RVOSRecord], list[RVOSRecord]]:
    """Split records into (train, val) by video, so that no video appears in both.

    `round(val_fraction * n_videos)` videos (at least 1, at most n_videos - 1) are drawn with
    `np.random.default_rng(seed)`; record order is kept within each part.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0.0:
        return list(records), []
    videos = sorted({(r.dataset, r.video_id) for r in records})
    if len(videos) < 2:
        raise ValueError(f"val_fraction={val_fraction} needs at least 2 videos to split, got {len(videos)}")
    n_val = min(max(1, round(val_fraction * len(videos))), len(videos) - 1)
    picked = np.random.default_rng(seed).permutation(len(videos))[:n_val]
    val_videos = {videos[k] for k in picked.tolist()}
    train = [r for r in records if (r.dataset, r.video_id) not in val_videos]
    val = [r for r in records if (r.dataset, r.video_id) in val_videos]
    return train, val


@dataclass(frozen=True)
class ConversionResult:
    """What `convert_to_parquet` wrote."""

    train_path: str
    """Parquet file with the training rows."""

    val_path: str | None
    """Parquet file with the validation rows (None when `val_fraction` is 0)."""

    num_train: int
    """Number of training rows."""

    num_val: int
    """Number of validation rows."""

    summary: dict[str, Any]
    """`{"train": records_summary(train), "val": records_summary(val) or None}` for logs."""


ProgressFn = Callable[..., Iterable[Any]]
"""`progress(iterable, total=..., desc=...)` wrapper, e.g. `tqdm.tqdm`; converters call it on their video loop."""


def convert_to_parquet(
    dataset: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str = "train",
    limit: int | None = None,
    val_fraction: float = 0.0,
    val_out: str | os.PathLike | None = None,
    seed: int = 0,
    shuffle_seed: int | None = None,
    progress: ProgressFn | None = None,
    **converter_options: Any,
) -> ConversionResult:
    """Convert an on-disk RVOS dataset to verl parquet (the `videoseg-o3 data` verb and `tools/convert_dataset.py`).

    Args:
        dataset: registered converter name (see `videoseg_o3_verl.data.converters.list_converters()`).
        root: dataset root folder as the converter documents it.
        out: training parquet path.
        split: dataset split passed to the converter.
        limit: keep only the first `limit` records (converter order), before the validation split.
        val_fraction: fraction of VIDEOS held out into a validation file (0 = none).
        val_out: validation parquet path; default `<out without .parquet>_val.parquet`.
        seed: seed of the train/val video split.
        shuffle_seed: if not None, shuffle the rows of each file with this seed.
        progress: optional progress wrapper (e.g. `tqdm.tqdm`).
        **converter_options: converter-specific keyword options.
    """
    from videoseg_o3_verl.data.converters import get_converter

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    convert = get_converter(dataset)
    records = convert(os.fspath(root), split=split, limit=limit, progress=progress, **converter_options)
    if not records:
        raise ValueError(f"converter {dataset!r} produced no records from {root} (split {split!r})")
    train, val = split_by_video(records, val_fraction, seed)
    out = os.fspath(out)
    write_parquet(train, out, shuffle_seed=shuffle_seed)
    val_path = None
    if val:
        val_path = os.fspath(val_out) if val_out is not None else out[: -len(".parquet")] + "_val.parquet"
        write_parquet(val, val_path, shuffle_seed=shuffle_seed)
    summary = {"train": records_summary(train), "val": records_summary(val) if val else None}
    return ConversionResult(train_path=out, val_path=val_path, num_train=len(train), num_val=len(val),
                            summary=summary)


def records_summary(records: Sequence[RVOSRecord]) -> dict[str, Any]:
    """Counts for logs: records, videos, datasets, type_id histogram, mean frames and mean visible fraction."""
    videos = {(r.dataset, r.video_id) for r in records}
    types: dict[str, int] = {}
    for r in records:
        types[str(r.type_id)] = types.get(str(r.type_id), 0) + 1
    with_gt = [r for r in records if r.has_ground_truth]
    visible = [sum(r.mask_existence) / r.num_frames for r in with_gt]
    return {
        "records": len(records),
        "videos": len(videos),
        "datasets": sorted({r.dataset for r in records}),
        "type_id": types,
        "mean_frames": (sum(r.num_frames for r in records) / len(records)) if records else math.nan,
        "mean_visible_fraction": (sum(visible) / len(visible)) if visible else math.nan,
    }

