# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The ``videoseg_o3_sft:`` section of a cold-start recipe: mask loss and trainable parts (typed, validated)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

BCE_MODES = ("points", "full")
"""Where the mask BCE and Dice are computed: on uncertainty-sampled points (released) or on every GT pixel."""


@dataclass(frozen=True)
class SFTSettings:
    """Mask supervision of every [SEG] during cold-start SFT (loss = CE + bce_weight·BCE + dice_weight·Dice) and the
    token loss's digit and action weights."""

    bce_weight: float = 2.0
    """Weight of the mask BCE (2.0 in the released cold start)."""

    dice_weight: float = 0.5
    """Weight of the mask Dice loss (0.5 in the released cold start)."""

    bce_mode: str = "points"
    """"points": BCE and Dice on ``num_points`` points sampled by uncertainty (the released loss); "full": on every
    pixel of the ground-truth mask (logits upsampled to the frame size)."""

    num_points: int = 12544
    """Points per mask in "points" mode (112²)."""

    oversample_ratio: float = 3.0
    """Candidate points per kept point before the uncertainty ranking."""

    importance_sample_ratio: float = 0.75
    """Fraction of the kept points chosen by uncertainty (the rest uniformly at random)."""

    digit_weight: float = 1.0
    """Cross-entropy weight of assistant tokens that are digits (frame indices): the token loss is the weighted mean
    ``Σ w·ce / Σ w`` over the assistant tokens, ``w`` = this value on digits and 1 elsewhere (1 = plain CE)."""

    action_weight: float = 1.0
    """Cross-entropy weight of assistant tokens that name the action (``answer``/``select`` in ``Action:`` and in
    the opening and the closing tag), applied as ``digit_weight`` (1 = plain CE)."""

    supervise_spatial: bool = True
    """Also decode every [SEG] on the first turn's high-resolution frames and supervise those masks."""

    supervise_all_frames: bool = False
    """Decode every [SEG] on every frame of the video instead of the high-resolution frames (not released): each
    frame where the target is absent teaches an empty mask, as the evaluation's per-frame propagation needs."""

    first_seg_only: bool = False
    """Released behaviour: only the first [SEG] of a conversation is decoded (on every turn's keyframe and the
    spatial frames); later [SEG]s learn from the token loss only. False: each [SEG] on its own turn's keyframe."""

    batched_vision_attention: bool = False
    """Attend the policy's equal-length vision windows in one SDPA call instead of transformers' per-window loop
    (the same maths; ``videoseg_o3_verl/model/vision_attention.py``): cheaper on CPU, where there is no flash
    attention."""

    causal_without_padding_mask: bool = False
    """Run the right-padded batch through SDPA's causal kernel without verl's padding mask (the same values on every
    real token; ``causal_padding.py``): the masked kernel computes the whole L x L square."""

    frozen_policy_modules: list[str] = field(default_factory=list)
    """Name fragments of policy parameters kept frozen, e.g. ``["visual"]`` for the vision tower."""

    lora_dropout: float = 0.0
    """Dropout on the LoRA branch (released: 0.05); verl's FSDP LoRA config has no such key."""

    lora_trained_modules: list[str] = field(default_factory=lambda: ["embed_tokens", "lm_head"])
    """With LoRA (``model.lora_rank > 0``): policy parameters whose name contains one of these stay fully trained."""

    def __post_init__(self) -> None:
        if self.bce_mode not in BCE_MODES:
            raise ValueError(f"[videoseg_o3_sft.bce_mode] must be one of {BCE_MODES}, got {self.bce_mode!r}")
        for name in ("bce_weight", "dice_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"[videoseg_o3_sft.{name}] must be >= 0, got {getattr(self, name)}")
        for name in ("digit_weight", "action_weight"):
            if not getattr(self, name) > 0:
                raise ValueError(f"[videoseg_o3_sft.{name}] must be > 0, got {getattr(self, name)}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"[videoseg_o3_sft.lora_dropout] must be in [0, 1), got {self.lora_dropout}")
        if self.num_points < 1:
            raise ValueError(f"[videoseg_o3_sft.num_points] must be >= 1, got {self.num_points}")
        if self.oversample_ratio < 1:
            raise ValueError(f"[videoseg_o3_sft.oversample_ratio] must be >= 1, got {self.oversample_ratio}")
        if not 0 <= self.importance_sample_ratio <= 1:
            raise ValueError(f"[videoseg_o3_sft.importance_sample_ratio] must be in [0, 1], got "
                             f"{self.importance_sample_ratio}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> SFTSettings:
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"[videoseg_o3_sft] unknown keys {unknown}; known: {sorted(known)}")
        return cls(**values)
