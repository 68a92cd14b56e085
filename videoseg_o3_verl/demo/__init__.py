# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""``videoseg-o3 demo``: the learning demo (:mod:`.pipeline`: synthetic data → VTS-CoT → SFT → seg head → RL →
held-out evaluation → report) and, with ``--quick``, the one-minute plumbing run (:mod:`.quick`).

The runners are imported on first use, so reading :class:`DemoConfig` (the CLI's defaults) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import DemoConfig
from .console import console_to_log, log_tail

_LAZY = {"run_demo": ".pipeline", "run_quick_demo": ".quick", "is_scripted": ".quick"}

__all__ = ["DemoConfig", "console_to_log", "is_scripted", "log_tail", "run_demo", "run_quick_demo"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
