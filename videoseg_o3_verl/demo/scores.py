# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Per-policy metrics of the demo's evaluation runs (means with 95 % bootstrap intervals)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def policy_metrics(eval_dir: Path, seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{metric: {"mean", "ci95"}}`` of one ``videoseg-o3 eval`` output folder."""
    raise NotImplementedError("waiting for the eval metrics")
