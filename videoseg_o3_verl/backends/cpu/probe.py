# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The one accelerator probe of the CPU backend (no verl import, so the plugin entry point can call it while verl is
still importing)."""

from __future__ import annotations

import shutil

import torch


def no_accelerator() -> bool:
    """True without CUDA and without ``nvidia-smi`` (so a CPU-only Ray actor on a GPU node, which sees no CUDA device,
    still says False and keeps the node's real platform)."""
    return not torch.cuda.is_available() and shutil.which("nvidia-smi") is None
