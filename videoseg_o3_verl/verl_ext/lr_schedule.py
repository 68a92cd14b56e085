# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The linear learning-rate schedule (warm-up, then linear decay to ``min_lr_ratio × lr``) for verl's FSDP engine.

verl 0.9.1's FSDP optimizer config accepts ``lr_scheduler_type`` constant/cosine only (its ``__post_init__``
asserts it). Select the linear schedule with::

    actor_rollout_ref.actor.optim._target_: videoseg_o3_verl.verl_ext.lr_schedule.FSDPOptimizerConfigWithLinear
    actor_rollout_ref.actor.optim.lr_scheduler_type: linear

The config class only widens the accepted types; the seg-head engine builds the scheduler
(``VideoSegO3FSDPEngine._build_lr_scheduler``) and leaves constant/cosine to verl.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from verl.workers.config.optimizer import FSDPOptimizerConfig, OptimizerConfig

LR_SCHEDULER_TYPES = ("constant", "cosine", "linear")
"""``actor_rollout_ref.actor.optim.lr_scheduler_type`` values the plugin supports."""

OPTIMIZER_CONFIG_TARGET = "videoseg_o3_verl.verl_ext.lr_schedule.FSDPOptimizerConfigWithLinear"
"""``actor_rollout_ref.actor.optim._target_`` that lets verl's config accept ``linear``."""


def linear_lr_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based): ``step / W`` during the W warm-up steps, then
    ``m + (1 - m) · max(0, (T - step) / (T - W))`` with ``m = min_lr_ratio`` (the HF/TRL linear schedule for m = 0).

    Example (T = 10, no warm-up): steps 0, 5, 9 give 1.0, 0.5, 0.1.
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    remaining = max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * remaining


def get_linear_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int,
                                    min_lr_ratio: float | None = 0.0, zero_indexed_step: bool = True) -> LambdaLR:
    """A ``LambdaLR`` following :func:`linear_lr_factor` (``zero_indexed_step=False`` counts steps from 1, as
    verl's cosine schedule does)."""
    ratio = 0.0 if min_lr_ratio is None else float(min_lr_ratio)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"[actor_rollout_ref.actor.optim.min_lr_ratio] must be in [0, 1], got {ratio}")
    if num_training_steps <= 0:
        raise ValueError(f"the linear lr schedule needs the number of training steps, got {num_training_steps}")
    offset = 0 if zero_indexed_step else 1
    factor = functools.partial(_factor_at, offset=offset, warmup=num_warmup_steps, total=num_training_steps,
                               ratio=ratio)
    return LambdaLR(optimizer, factor)


def _factor_at(step: int, offset: int, warmup: int, total: int, ratio: float) -> float:
    return linear_lr_factor(step + offset, warmup, total, ratio)


@dataclass
class FSDPOptimizerConfigWithLinear(FSDPOptimizerConfig):
    """verl's FSDP optimizer config that also accepts ``lr_scheduler_type: linear`` (see the module docstring)."""

    def __post_init__(self):
        if self.lr_scheduler_type not in LR_SCHEDULER_TYPES:
            raise ValueError(f"[actor_rollout_ref.actor.optim.lr_scheduler_type] must be one of "
                             f"{list(LR_SCHEDULER_TYPES)}, got {self.lr_scheduler_type!r}")
        if self.lr_scheduler_type == "linear" and self.warmup_style is None:
            OptimizerConfig.__post_init__(self)  # verl's subclass check only rejects the new type
            return
        super().__post_init__()
