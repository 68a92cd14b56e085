# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The VideoSEG-O3 multi-turn agent loop for verl (registered as ``videoseg_o3`` and ``videoseg_o3_eval``).

One trajectory (docs/method.md §3.3): the policy sees low/high-resolution frames and the query, thinks, and either
answers or ``<select>``s an interval + keyframe; the environment answers a select with up to 5 low-resolution
frames of the interval and the keyframe at high resolution, as a new user turn. The loop keeps the sampled
token ids (no re-tokenisation of generated text), gives observation tokens ``response_mask = 0`` and writes
per-turn metadata (:mod:`videoseg_o3_verl.trajectory`) into ``extra_fields``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register

from .backends.cpu.scripted import SCRIPTED_FIELD
from .data.parquet import record_from_extra_info
from .env import (
    EnvConfig,
    initial_frame_indices,
    initial_messages,
    parse_action,
    select_observation_content,
    should_continue,
)
from .env.prompts import SEG_TOKEN
from .model.processor import VISION_PLACEHOLDER_TOKENS, pixel_bounds_kwargs
from .trajectory import Trajectory, TurnRecord
from .video import VideoSource

logger = logging.getLogger(__name__)


def _section(config):
    return config.get("videoseg_o3", None) if hasattr(config, "get") else None


def env_config_for(config, processor, mode: str) -> EnvConfig:
    """The environment constants: spec presets, the processor's patch factor, overrides from
    ``videoseg_o3.env`` in the trainer config (keys of :class:`EnvConfig`)."""
    overrides = {}
    section = _section(config)
    if section is not None and section.get("env", None) is not None:
        overrides = {k: v for k, v in dict(section.get("env")).items() if v is not None}
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None and "patch_factor" not in overrides:
        overrides["patch_factor"] = int(getattr(image_processor, "patch_size", 14)) * int(
            getattr(image_processor, "merge_size", 2))
    return EnvConfig.train(**overrides) if mode == "train" else EnvConfig.eval(**overrides)


def pixel_bounds_for(config, processor) -> dict:
    """The processor kwargs of ``videoseg_o3.processor`` (pixel bounds; ``{}`` when unset)."""
    section = _section(config)
    bounds = (section.get("processor", None) or {}) if section is not None else {}
    return pixel_bounds_kwargs(processor, bounds.get("min_pixels", None), bounds.get("max_pixels", None))


class VideoSegO3AgentLoop(AgentLoopBase):
    """Coarse-to-fine video search with ``<select>`` (train protocol; see :class:`VideoSegO3EvalAgentLoop`)."""

    mode = "train"

    def __init__(self, *args, tools=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.env = env_config_for(self.config, self.processor, self.mode)
        self.response_length = int(self.rollout_config.response_length)
        vocab = self.tokenizer.get_vocab()
        if SEG_TOKEN not in vocab:
            raise ValueError(f"The tokenizer has no {SEG_TOKEN} token; add it (videoseg_o3_verl.model.seg_head_io."
                             "ensure_seg_token) before training VideoSEG-O3")
        self.seg_token_id = vocab[SEG_TOKEN]
        self.vision_token_ids = {vocab[t] for t in VISION_PLACEHOLDER_TOKENS if t in vocab}
        # one set of processor kwargs for the prompt's pads (the token builder), the server and the actor forward
        self.mm_processor_kwargs = {**(self.mm_processor_kwargs or {}), **pixel_bounds_for(self.config, self.processor)}
        builder = self.continuous_token_builder
        if hasattr(builder, "mm_processor_kwargs"):
            builder.mm_processor_kwargs = {**(builder.mm_processor_kwargs or {}), **self.mm_processor_kwargs}

    async def run(self, sampling_params: dict[str, Any], **kwargs) -> AgentLoopOutput:
        # 1. the sample: record (video, query, ground truth) and the video
        record = record_from_extra_info(kwargs["extra_info"])
        video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids) or None)
        num_frames = len(video)

        # 2. first observation: low/high-resolution frames + query (docs/method.md §3.1 / §2.3)
        messages = await asyncio.to_thread(initial_messages, video, record.expression, self.env)
        images = [item["image"] for item in messages[1]["content"] if item.get("type") == "image"]
        self._assert_mm_supported(bool(images))
        prompt_ids = await self.ct_build_initial_tokens(messages, images=images)
        trajectory = Trajectory(num_frames=num_frames, mode=self.mode,
                                initial_low_res=initial_frame_indices(num_frames, self.env.num_low_res, self.mode),
                                spatial_frames=initial_frame_indices(num_frames, self.env.num_high_res, self.mode))

        ids, mask, logprobs = list(prompt_ids), [], []
        request_id = uuid4().hex
        pending_keyframe = EnvConfig.turn0_keyframe(num_frames)
        stop_reason = "max_turns"
        server_fields: dict[str, Any] = {}  # verl's global_steps tags and the scripted flag, over all turns
        for turn in range(self.env.max_turns):
            # 3. generate one assistant turn (per-turn budget and what is left of the response budget)
            budget = min(self.env.max_new_tokens, self.response_length - len(mask))
            params = {**sampling_params, "max_tokens": max(1, budget)}
            output = await self.server_manager.generate(request_id=request_id, prompt_ids=ids, sampling_params=params,
                                                        image_data=images or None,
                                                        mm_processor_kwargs=self._get_mm_processor_kwargs())
            tokens, token_logprobs = list(output.token_ids), output.log_probs
            server_fields = merge_server_fields(server_fields, output.extra_fields)
            cut = next((i for i, t in enumerate(tokens) if t in self.vision_token_ids), None)
            if cut is not None:  # a sampled vision placeholder would break mrope position ids: end here
                tokens, token_logprobs = tokens[:cut], (token_logprobs[:cut] if token_logprobs else token_logprobs)
            start = len(mask)
            merge, mask, logprobs = await self.ct_merge_assistant_token(
                ids, tokens, mask, logprobs if (logprobs or token_logprobs) else None,
                assistant_logprobs=token_logprobs or None)
            ids, logprobs = merge.token_ids, logprobs or []
            text = self.tokenizer.decode(tokens, skip_special_tokens=False)
            messages.append({"role": "assistant", "content": text})

            # 4. parse <select>/<answer> and record the turn
            action = parse_action(text, num_frames, self.mode, parity=self.env.parser_parity)
            response = ids[len(ids) - len(mask):]
            seg_positions = [start + i for i, t in enumerate(response[start:]) if t == self.seg_token_id
                             and mask[start + i] == 1]
            record_turn = TurnRecord(index=turn, span=(start, len(mask)), text=text, kind=action.kind,
                                     reason=action.reason, vtg=_vtg(action), seg_keyframe=pending_keyframe,
                                     seg_positions=seg_positions)
            trajectory.turns.append(record_turn)
            if cut is not None:
                stop_reason = "vision_token"
                break
            if not should_continue(action, turn, self.env.max_turns):
                stop_reason = {"select": "max_turns"}.get(action.kind, action.kind)
                break
            if len(mask) >= self.response_length:
                stop_reason = "response_budget"
                break

            # 5. observation: interval frames + high-resolution keyframe, as a new user turn (response_mask 0)
            content, shown = await asyncio.to_thread(select_observation_content, video, action, record.expression,
                                                     self.env)
            previous = list(messages)
            messages.append({"role": "user", "content": content})
            merge, new_mask, new_logprobs = await self.ct_merge_context_msg(previous, messages, ids, mask,
                                                                            logprobs or None)
            if len(new_mask) >= self.response_length:
                stop_reason = "response_budget"
                break
            ids, mask, logprobs = merge.token_ids, new_mask, new_logprobs or []
            images.extend(item["image"] for item in content if item.get("type") == "image")
            record_turn.observation_low_res = list(shown.low_res_indices)
            record_turn.observation_keyframe = shown.keyframe
            pending_keyframe = int(action.keyframe)
        trajectory.stop_reason = stop_reason

        # 6. output: prompt = initial observation, response = assistant turns + observations
        n = len(mask)
        return AgentLoopOutput(
            prompt_ids=ids[: len(ids) - n],
            response_ids=ids[len(ids) - n:][: self.response_length],
            response_mask=mask[: self.response_length],
            response_logprobs=logprobs[: self.response_length] if logprobs else None,
            multi_modal_data={"images": images},
            mm_processor_kwargs=self._get_mm_processor_kwargs(),
            num_turns=2 * len(trajectory.turns),
            metrics={},
            extra_fields={**server_fields, **trajectory.to_extra_fields()},
        )


def merge_server_fields(kept: dict[str, Any], turn: dict[str, Any] | None) -> dict[str, Any]:
    """The trajectory's server ``extra_fields`` after one more turn's reply: the first turn's fields (verl's
    ``global_steps`` tags), the latest ``max_global_steps``, and :data:`SCRIPTED_FIELD` True when any turn's reply
    was scripted.

    Example:
        >>> merge_server_fields({"global_steps": 3, "scripted": False}, {"global_steps": 4, "scripted": True})
        {'global_steps': 3, 'scripted': True}
    """
    turn = turn or {}
    merged = dict(kept) if kept else dict(turn)
    if kept and turn.get("max_global_steps") is not None:
        merged["max_global_steps"] = turn["max_global_steps"]
    if turn.get(SCRIPTED_FIELD):
        merged[SCRIPTED_FIELD] = True
    return merged


class VideoSegO3EvalAgentLoop(VideoSegO3AgentLoop):
    """The inference protocol (docs/method.md §3.4): 20 + 8 initial frames, larger keyframes, 1024 tokens per turn."""

    mode = "eval"


def _vtg(action) -> dict[str, int] | None:
    if action.start is None or action.end is None or action.keyframe is None:
        return None
    return {"start": int(action.start), "end": int(action.end), "keyframe": int(action.keyframe)}


register("videoseg_o3")(VideoSegO3AgentLoop)
register("videoseg_o3_eval")(VideoSegO3EvalAgentLoop)
