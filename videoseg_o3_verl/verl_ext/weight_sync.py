# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Where the trained weights go besides the optimizer: the policy to the rollout (without the seg head) and the seg
head's prompt encoder + mask decoder to the SAM2 reward service (the J&F term)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn as nn

HEAD_ATTR = "videoseg_seg_head"
"""Attribute (and state-dict prefix) of the seg head on the policy module."""

SAM2_PREFIXES = (("prompt_encoder.", "sam_prompt_encoder."), ("mask_decoder.", "sam_mask_decoder."))
"""Seg-head state-dict prefixes and the SAM2 model's names for the same modules."""


def without_head(generator: Iterable[tuple]) -> Iterator[tuple]:
    """Drop the seg head from the weights sent to the rollout (its names mean nothing to vLLM/HF)."""
    for item in generator:
        if not str(item[0]).startswith(HEAD_ATTR + "."):
            yield item


def decoder_state(head: nn.Module) -> dict[str, torch.Tensor]:
    """The head's prompt encoder + mask decoder as SAM2 keys (float32, CPU). Call on every rank: gathering
    DTensor shards is collective."""
    state = {}
    for name, tensor in head.state_dict().items():
        full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
        for ours, theirs in SAM2_PREFIXES:
            if name.startswith(ours):
                state[theirs + name[len(ours):]] = full.detach().float().cpu()
    return state


def next_decoder_version(previous: int) -> int:
    """Versions only increase, also across restarts of the job against a long-lived service actor."""
    return max(previous + 1, time.time_ns() // 1_000_000)


def push_decoder_weights(actor_name: str, state: dict[str, Any], version: int) -> None:
    """Send decoder weights to the SAM2 reward service actor ``actor_name``."""
    from videoseg_reward.actor import Sam2Service

    Sam2Service(actor_name).update_decoder_weights(state, version)
