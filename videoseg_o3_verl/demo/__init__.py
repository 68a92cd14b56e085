# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""``videoseg-o3 demo``: the learning demo (:mod:`.pipeline`: synthetic data → VTS-CoT → SFT → RL → held-out
evaluation → report) and, with ``--quick``, the one-minute plumbing run (:mod:`.quick`)."""

from .config import DemoConfig
from .console import console_to_log, log_tail
from .pipeline import run_demo
from .quick import is_scripted, run_quick_demo

__all__ = ["DemoConfig", "console_to_log", "is_scripted", "log_tail", "run_demo", "run_quick_demo"]
