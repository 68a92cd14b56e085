# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Size of verl's weight-transfer bucket from the model (pure functions; no vLLM import)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

_FLOAT32_BYTES = 4


def checkpoint_numel(model_dir: str | Path) -> int:
    """Number of elements in the ``*.safetensors`` files of a checkpoint directory (reads the headers only)."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"No *.safetensors files in the model directory {model_dir}")
    total = 0
    for path in files:
        with open(path, "rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(header_len))
        total += sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    return total


def transfer_buffer_megabytes(numel: int, configured_mb: int) -> int:
    """The bucket size: the model in float32, rounded up to whole MB, at most ``configured_mb``."""
    return max(1, min(int(configured_mb), math.ceil(numel * _FLOAT32_BYTES / 2**20)))
