# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Where the trained weights go besides the optimizer: the policy to the rollout (without the seg head) and the seg
head's prompt encoder + mask decoder to the SAM2 reward service (the J&F term)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn as nn

from ..config import RewardServiceSettings

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


def reward_service_handle(settings: RewardServiceSettings):
    """This process's one :class:`videoseg_reward.actor.Sam2Service` handle of the reward-service actor (the actor
    must exist), with the configured call timeout. Every call returns the same handle, so it keeps the last pushed
    weights."""
    from videoseg_reward.actor import Sam2Service

    return Sam2Service.connect(settings.actor_name, call_timeout_s=settings.call_timeout_s)


class DecoderWeightsPusher:
    """Sends the trained prompt encoder + mask decoder to the SAM2 reward service after every optimizer step.

    One long-lived service handle per process, created at the first push. Each push is recorded by the handle and
    by the service's weights keeper actor, from which any other process's handle (the trainer's, which sends the
    J&F requests) re-pushes the latest weights to a restarted actor before it computes any request.
    """

    def __init__(self, settings: RewardServiceSettings):
        self.settings = settings
        self.version = 0
        self._service = None

    @property
    def service(self):
        """The handle (connected on first use, then reused)."""
        if self._service is None:
            self._service = reward_service_handle(self.settings)
        return self._service

    def push(self, state: dict[str, Any]) -> int:
        """Push ``state`` (SAM2 keys, see :func:`decoder_state`) as the next version; returns that version."""
        self.version = next_decoder_version(self.version)
        return self.service.update_decoder_weights(state, self.version)
