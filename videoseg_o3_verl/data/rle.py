# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""COCO run-length encoding (RLE) helpers on top of `pycocotools` (spec §1.3).

A mask RLE is a dict `{"size": [H, W], "counts": str}` in COCO's compressed form (column-major runs, first run
is background). Annotation files store it with `counts` as `str` (JSON) or `bytes` (pickles), sometimes in the
uncompressed form `counts: list[int]`. `pycocotools` trusts its input: a counts string whose runs do not add up
to `H * W` makes its C decoder read or write past the mask buffer. Every helper here therefore checks the runs
first (`normalize_rle`) and raises `ValueError` saying what is wrong.

Dimension letters: `H`, `W` mask height and width in pixels; `N` number of RLEs decoded together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

RLE = dict[str, Any]
"""A COCO RLE dict: `{"size": [H, W], "counts": str}`."""

_MAX_GROUP_CHARS = 12
"""Longest 5-bit group sequence of one run in a counts string (12 * 5 = 60 bits fit in int64)."""


def _check_size(size: Any) -> tuple[int, int]:
    if not isinstance(size, list | tuple) or len(size) != 2:
        raise ValueError(f"RLE 'size' must be [H, W] (two ints), got {size!r}")
    h, w = size
    if isinstance(h, bool) or isinstance(w, bool) or not isinstance(h, int | np.integer):
        raise ValueError(f"RLE 'size' must be [H, W] (two ints), got {size!r}")
    if not isinstance(w, int | np.integer) or h < 0 or w < 0:
        raise ValueError(f"RLE 'size' must be [H, W] (two non-negative ints), got {size!r}")
    return int(h), int(w)


def runs_from_counts_string(counts: str | bytes) -> np.ndarray:
    """Decode a COCO compressed counts string into its run lengths (no size check).

    Mirrors pycocotools' `rleFrString`: each run is a little-endian sequence of 5-bit groups stored as chars
    `48 + value` (bit 0x20 = another group follows, bit 0x10 of the last group = negative), and run `m >= 3`
    is stored as the difference to run `m - 2`.

    Args:
        counts: the compressed counts, `str` or ASCII `bytes`.

    Returns:
        runs: [M] int64, alternating background/foreground run lengths.

    Raises:
        ValueError: a character outside ASCII 48..111, a truncated last run or an over-long run.

    Example:
        >>> runs_from_counts_string("41202").tolist()  # runs 4, 1, 2, 0+1, 2+2
        [4, 1, 2, 1, 4]
    """
    try:
        raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    except UnicodeEncodeError as err:
        raise ValueError(f"RLE counts contain a non-ASCII character at position {err.start}") from err
    if not raw:
        return np.zeros(0, dtype=np.int64)
    chars = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    bad = np.flatnonzero((chars < 0) | (chars > 63))
    if bad.size:
        pos = int(bad[0])
        raise ValueError(
            f"RLE counts contain invalid character {chr(raw[pos])!r} at position {pos} (allowed: ASCII 48..111)"
        )
    more = (chars & 0x20) != 0
    if more[-1]:
        raise ValueError("RLE counts end in the middle of a run (last character has the continuation bit 0x20)")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_GROUP_CHARS:
        raise ValueError(f"RLE counts hold a run of {int(lengths.max())} characters (at most {_MAX_GROUP_CHARS})")
    pos_in_run = np.arange(chars.size) - np.repeat(starts, lengths)
    values = np.add.reduceat((chars & 0x1F) << (5 * pos_in_run), starts)
    negative = (chars[ends] & 0x10) != 0
    values[negative] |= -(np.int64(1) << (5 * lengths[negative]))
    runs = values.copy()
    # run m >= 3 is stored relative to run m - 2: two independent cumulative sums (odd and even positions >= 2)
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def normalize_rle(rle: Any) -> RLE:
    """Check one RLE and return it as `{"size": [H, W], "counts": str}` (compressed).

    Accepts `counts` as `str`, ASCII `bytes` or an uncompressed `list[int]` of run lengths.

    Raises:
        TypeError: `rle` is not a mapping.
        ValueError: a missing key, a bad size, a malformed counts string, a negative run, or runs that do not add
            up to `H * W`.

    Example:
        >>> normalize_rle({"size": [3, 4], "counts": [5, 2, 5]})
        {'size': [3, 4], 'counts': '525'}
    """
    return normalize_rle_with_area(rle)[0]


def normalize_rle_with_area(rle: Any) -> tuple[RLE, int]:
    """`normalize_rle` plus the number of foreground pixels, from one pass over the runs."""
    if not isinstance(rle, Mapping):
        raise TypeError(f"an RLE must be a dict with 'size' and 'counts', got {type(rle).__name__}")
    missing = [k for k in ("size", "counts") if k not in rle]
    if missing:
        raise ValueError(f"RLE is missing key(s) {missing} (has {sorted(rle)})")
    h, w = _check_size(rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list | tuple):
        runs = np.asarray(counts)
        if runs.ndim != 1 or (runs.size and not np.issubdtype(runs.dtype, np.integer)):
            raise ValueError(f"uncompressed RLE counts must be a flat list of ints, got {counts!r:.80}")
        runs = runs.astype(np.int64)
        _check_runs(runs, h, w)
        compressed = mask_utils.frPyObjects({"size": [h, w], "counts": [int(x) for x in runs]}, h, w)
        return {"size": [h, w], "counts": compressed["counts"].decode("ascii")}, int(runs[1::2].sum())
    if not isinstance(counts, str | bytes):
        raise ValueError(f"RLE 'counts' must be str, bytes or list[int], got {type(counts).__name__}")
    runs = runs_from_counts_string(counts)
    _check_runs(runs, h, w)
    text = counts if isinstance(counts, str) else counts.decode("ascii")
    return {"size": [h, w], "counts": text}, int(runs[1::2].sum())


def _check_runs(runs: np.ndarray, h: int, w: int) -> None:
    if runs.size and runs.min() < 0:
        raise ValueError(f"RLE has a negative run length ({int(runs.min())}) at run {int(np.argmin(runs))}")
    total = int(runs.sum())
    if total != h * w:
        raise ValueError(f"RLE runs add up to {total} pixels but size [{h}, {w}] needs {h * w}")


def rle_area(rle: Any) -> int:
    """Number of foreground pixels of one RLE (checked with `normalize_rle`).

    Example:
        >>> rle_area({"size": [3, 4], "counts": "41202"})
        2
    """
    return normalize_rle_with_area(rle)[1]


def encode_mask(mask: np.ndarray) -> RLE:
    """Encode a binary mask as a compressed COCO RLE with `str` counts.

    Args:
        mask: [H, W] bool (integer arrays holding only 0/1 are accepted too).

    Returns:
        `{"size": [H, W], "counts": str}`.

    Example:
        >>> m = np.zeros((3, 4), dtype=bool); m[1, 1:3] = True
        >>> encode_mask(m)
        {'size': [3, 4], 'counts': '41202'}
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"encode_mask expects a [H, W] mask, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer) or (arr.size and (arr.min() < 0 or arr.max() > 1)):
            raise TypeError(f"encode_mask expects a bool mask (or integers 0/1), got dtype {arr.dtype}")
    rle = mask_utils.encode(np.asfortranarray(arr.astype(np.uint8)))
    return {"size": [int(arr.shape[0]), int(arr.shape[1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: Any) -> np.ndarray:
    """Decode an RLE (or a list of RLEs of one size, OR-ed) into a bool mask.

    A list decodes with pycocotools to [H, W, N]; as in spec §1.3 it is summed over the last axis and
    binarized (`> 0`), i.e. the union of the masks.

    Args:
        rle: one RLE dict (`counts` str/bytes/list[int]) or a non-empty list of them.

    Returns:
        mask: [H, W] bool.

    Example:
        >>> decode_rle({"size": [3, 4], "counts": "41202"}).astype(int).tolist()
        [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    if isinstance(rle, list | tuple):
        if not rle:
            raise ValueError("decode_rle got an empty list of RLEs")
        norms = [normalize_rle(r) for r in rle]
        sizes = {tuple(n["size"]) for n in norms}
        if len(sizes) != 1:
            raise ValueError(f"decode_rle got RLEs of different sizes {sorted(sizes)}")
    else:
        norms = [normalize_rle(rle)]
    encoded = [{"size": n["size"], "counts": n["counts"].encode("ascii")} for n in norms]
    h, w = norms[0]["size"]
    if h * w == 0:
        return np.zeros((h, w), dtype=bool)
    decoded = mask_utils.decode(encoded)  # [H, W, N] uint8
    return decoded.sum(axis=-1) > 0


def merge_rles(rles: Sequence[Any | None]) -> RLE | None:
    """OR several RLEs of one size into one; `None` entries (target absent) are skipped.

    Args:
        rles: RLE dicts or `None`.

    Returns:
        The union as `{"size": [H, W], "counts": str}`, or `None` when every entry is `None` or the union has
        no foreground pixel (so `None` always means "absent").

    Example:
        >>> a = {"size": [3, 4], "counts": "41202"}    # pixels (1,1), (1,2)
        >>> b = {"size": [3, 4], "counts": [1, 1, 10]}  # pixel (1,0)
        >>> decode_rle(merge_rles([a, None, b])).astype(int).tolist()
        [[0, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
        >>> merge_rles([None, None]) is None
        True
    """
    norms = [normalize_rle(r) for r in rles if r is not None]
    if not norms:
        return None
    sizes = {tuple(n["size"]) for n in norms}
    if len(sizes) != 1:
        raise ValueError(f"merge_rles got RLEs of different sizes {sorted(sizes)}")
    encoded = [{"size": n["size"], "counts": n["counts"].encode("ascii")} for n in norms]
    merged = encoded[0] if len(encoded) == 1 else mask_utils.merge(encoded, intersect=False)
    if int(mask_utils.area(merged)) == 0:
        return None
    return {"size": list(norms[0]["size"]), "counts": merged["counts"].decode("ascii")}
