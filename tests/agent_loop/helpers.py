# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Shared pieces of the agent-loop tests: a scripted server manager and a tiny synthetic record."""

from __future__ import annotations

from typing import Any

from verl.workers.rollout.replica import TokenOutput


class ScriptedServerManager:
    """Answers each generate call with the next scripted text (tokenised), recording what it was sent."""

    def __init__(self, tokenizer, replies: list[str], extra_fields: list[dict] | None = None):
        self.tokenizer = tokenizer
        self.replies = list(replies)
        self.extra_fields = list(extra_fields) if extra_fields is not None else None  # one per reply, as a server
        self.calls: list[dict[str, Any]] = []

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, video_data=None,
                       mm_processor_kwargs=None, **kwargs):
        self.calls.append({"prompt_ids": list(prompt_ids), "sampling_params": dict(sampling_params),
                           "num_images": len(image_data or []), "images": list(image_data or []),
                           "mm_processor_kwargs": mm_processor_kwargs})
        text = self.replies.pop(0)
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        fields = self.extra_fields.pop(0) if self.extra_fields is not None else {}
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids), stop_reason="completed", extra_fields=fields)


def synthetic_rows(root, num_videos=1, num_frames=24, height=96, width=128):
    """Parquet-style rows (dicts) of a small synthetic dataset written under ``root``."""
    from videoseg_o3_verl.data.converters import convert_dataset
    from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset

    generate_synthetic_dataset(root, num_videos=num_videos, num_frames=num_frames, height=height, width=width, seed=0)
    records = convert_dataset("synthetic", root, split="train")
    return [record.to_row(i) for i, record in enumerate(records)]
