# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""COCO run-length encoding (RLE) helpers for the dataset records (see docs/method.md, "Data").

A mask RLE is a dict `{"size": [H, W], "counts": str}` in COCO's compressed form (column-major runs, first run
is background). Annotation files store it with `counts` as `str` (JSON) or `bytes` (pickles), sometimes in the
uncompressed form `counts: list[int]`. `pycocotools` trusts its input, so every RLE is validated first — by
`videoseg_reward.masks.rle_counts`, the project's one RLE validator (alphabet, truncation, negative runs, runs
that must add up to `H * W`, the `MAX_RLE_PIXELS` size limit); this module only adds the record-side helpers
(normalised form, area, union of several masks).

Dimension letters: `H`, `W` mask height and width in pixels; `N` number of RLEs decoded together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from videoseg_reward import masks as reward_masks

RLE = dict[str, Any]
"""A COCO RLE dict: `{"size": [H, W], "counts": str}`."""


def normalize_rle(rle: Any) -> RLE:
    """Check one RLE and return it as `{"size": [H, W], "counts": str}` (compressed).

    Accepts `counts` as `str`, ASCII `bytes` or an uncompressed `list[int]` of run lengths.

    Raises:
        TypeError: `rle` is not a mapping.
        ValueError: from `videoseg_reward.masks.rle_counts` — a missing key, a bad or too large size, a malformed
            counts string, a negative run, or runs that do not add up to `H * W`.

    Example:
        >>> normalize_rle({"size": [3, 4], "counts": [5, 2, 5]})
        {'size': [3, 4], 'counts': '525'}
    """
    return normalize_rle_with_area(rle)[0]


def normalize_rle_with_area(rle: Any) -> tuple[RLE, int]:
    """`normalize_rle` plus the number of foreground pixels, from one pass over the runs."""
    if not isinstance(rle, Mapping):
        raise TypeError(f"an RLE must be a dict with 'size' and 'counts', got {type(rle).__name__}")
    (h, w), runs = reward_masks.rle_counts(dict(rle), name="RLE")
    area = int(sum(runs[1::2]))
    counts = rle["counts"]
    if isinstance(counts, list | tuple):
        compressed = mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)
        return {"size": [h, w], "counts": compressed["counts"].decode("ascii")}, area
    text = counts if isinstance(counts, str) else counts.decode("ascii")
    return {"size": [h, w], "counts": text}, area


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
    return reward_masks.encode_mask(arr)


def decode_rle(rle: Any) -> np.ndarray:
    """Decode an RLE (or a list of RLEs of one size, OR-ed) into a bool mask.

    A list of several objects' masks decodes to their union (the target of a multi-object expression).

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
        decoded = [decode_rle(r) for r in rle]
        sizes = {m.shape for m in decoded}
        if len(sizes) != 1:
            raise ValueError(f"decode_rle got RLEs of different sizes {sorted(sizes)}")
        return np.any(decoded, axis=0)
    if not isinstance(rle, Mapping):
        raise TypeError(f"an RLE must be a dict with 'size' and 'counts', got {type(rle).__name__}")
    return reward_masks.decode_rle(dict(rle))


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
