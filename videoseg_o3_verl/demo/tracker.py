# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Reading verl's file-tracker JSONL (``VERL_FILE_LOGGER_PATH``: one ``{"step": n, "data": {metric: value}}`` per
logged step), also while the trainer is still writing it."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The complete rows of the file (none when it does not exist yet; a half-written last line is left out)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("data"), dict) and "step" in row:
            rows.append(row)
    return rows


def count_steps(path: str | Path, key: str) -> int:
    """Training steps logged so far: rows that carry ``key`` (validation-only rows do not count)."""
    return sum(1 for row in read_rows(path) if key in row["data"])


def series(rows: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """``(step, value)`` of ``key``, by step (rows without it, and non-numeric values, are left out)."""
    out = []
    for row in rows:
        value = row["data"].get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out.append((float(row["step"]), float(value)))
    return sorted(out)


def keys_with_prefix(rows: Sequence[dict[str, Any]], prefix: str) -> list[str]:
    """Metric names that start with ``prefix``, in first-seen order."""
    found: list[str] = []
    for row in rows:
        found.extend(k for k in row["data"] if k.startswith(prefix) and k not in found)
    return found
