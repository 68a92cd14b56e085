# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""verl's vLLM server and replica for CPU machines (registered as ``vllm`` by :func:`..register`).

Hook overrides of ``vLLMHttpServer``: sleep mode off (vLLM rejects it on CPU; its CPU worker's sleep/wake are
no-ops anyway, so the rollout weights and KV cache stay resident), the CPU worker extension, and scripted
replies (``engine_kwargs.vllm.scripted_responses``, as for the HF backend: a random tiny model never writes a valid
``<select>``; the reply's log-probs are the model's own, teacher-forced). The replica sweeps orphaned
``/dev/shm`` segments before it starts its servers.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from typing import Any

import ray
from verl.workers.rollout.replica import TokenOutput
from verl.workers.rollout.vllm_rollout.vllm_async_server import vLLMHttpServer, vLLMReplica

from ..cpu.scripted import ScriptedResponses
from . import KV_CACHE_GB
from .shm import remove_orphan_segments

logger = logging.getLogger(__name__)

WORKER_EXTENSION_FQN = "videoseg_o3_verl.backends.vllm_cpu.worker_ext.CPUColocateWorkerExtension"
SCRIPT_KEY = "scripted_responses"
"""``engine_kwargs.vllm`` key of a scripted-replies JSON file (tests and demos; not a vLLM argument)."""


class CPUvLLMHttpServer(vLLMHttpServer):
    """verl's vLLM server with the CPU hook overrides (see the module docstring)."""

    script: ScriptedResponses | None = None

    def _init_config(self, config):
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", KV_CACHE_GB)  # read by the engine this server starts
        config = super()._init_config(config)
        return dataclasses.replace(config, enable_sleep_mode=False) if config.enable_sleep_mode else config

    def _preprocess_engine_kwargs(self, engine_kwargs: dict) -> None:
        super()._preprocess_engine_kwargs(engine_kwargs)
        script = engine_kwargs.pop(SCRIPT_KEY, None)
        self.script = ScriptedResponses.load(script) if script else None
        self._script_rng = random.Random(int(self.config.seed) * 1000 + self.replica_rank)

    def _get_worker_extension_cls(self) -> str:
        return WORKER_EXTENSION_FQN

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       *args, **kwargs) -> TokenOutput:
        reply = None
        if self.script is not None:
            reply = self.script.reply_ids(self.model_config.tokenizer, prompt_ids, self._script_rng.random())
        if reply is None:
            return await super().generate(prompt_ids, sampling_params, request_id, *args, **kwargs)
        return await self._score_reply(list(prompt_ids), reply, dict(sampling_params), request_id, *args, **kwargs)

    async def _score_reply(self, prompt_ids: list[int], reply: list[int], sampling_params: dict, request_id: str,
                           *args, **kwargs) -> TokenOutput:
        """The scripted ``reply`` with its teacher-forced log-probs (vLLM's prompt log-probs of those tokens)."""
        reply = reply[: sampling_params.pop("max_tokens", None) or self.config.response_length]
        want_logprobs = bool(sampling_params.pop("logprobs", False))
        sampling_params.update(max_tokens=1, prompt_logprobs=0)
        out = await super().generate(prompt_ids + reply, sampling_params, request_id, *args, **kwargs)
        extra = dict(out.extra_fields)
        rows = extra.pop("prompt_logprobs")[:-1]  # the last row is verl's padding for the final prompt token
        extra.pop("prompt_ids", None)
        extra["scripted"] = True
        log_probs = [row[0] for row in rows[-len(reply):]] if want_logprobs else None
        return TokenOutput(token_ids=reply, log_probs=log_probs, stop_reason="completed", extra_fields=extra)


class CPUvLLMReplica(vLLMReplica):
    """verl's vLLM replica that launches :class:`CPUvLLMHttpServer`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.server_class = ray.remote(CPUvLLMHttpServer)

    async def launch_servers(self):
        removed = remove_orphan_segments()
        if removed:
            logger.info("removed %d orphaned /dev/shm segments of earlier vLLM runs", len(removed))
        await super().launch_servers()
