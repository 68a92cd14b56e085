# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The HF rollout server (a Ray actor), its replica and the in-worker adapter, registered in verl's registries.

- :class:`HFRolloutServer` serves ``generate`` for verl's agent-loop server manager with the same signature
  as verl's vLLM server (`verl/workers/rollout/vllm_rollout/vllm_async_server.py:558`), plus the control
  methods the replica fans out to (`verl/workers/rollout/replica.py:196-240`).
- :class:`HFReplica` (``RolloutReplicaRegistry`` name ``hf``) starts one server per replica on the node of
  its first worker.
- :class:`HFServerAdapter` (``_ROLLOUT_REGISTRY[("hf", "async")]``) lives in the FSDP worker: on a weight sync
  every rank iterates the per-tensor generator (FSDP all-gathers), and the replica's rank 0 pushes the tensors
  to its server.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
from typing import Any

import numpy as np
import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

from .hf_engine import GenerationRequest, HFEngineConfig, HFGenerationEngine, SamplingRequest, request_seed
from .scripted import SCRIPTED_FIELD, ScriptedResponses, stratified_draw

logger = logging.getLogger(__name__)

SERVER_NAME_PREFIX = "videoseg_hf_server"


def server_actor_name(replica_rank: int) -> str:
    """Ray actor name of the HF server of a replica (the adapter finds its server by this name)."""
    job = ray.get_runtime_context().get_job_id()
    return f"{SERVER_NAME_PREFIX}_{job}_{replica_rank}"


def engine_config_from(rollout_config) -> HFEngineConfig:
    """``rollout.engine_kwargs.hf`` → :class:`HFEngineConfig` (unknown keys raise, naming the key)."""
    kwargs = dict((getattr(rollout_config, "engine_kwargs", None) or {}).get("hf", None) or {})
    kwargs.pop("scripted_responses", None)
    allowed = set(HFEngineConfig.__dataclass_fields__)
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"[rollout.engine_kwargs.hf] unknown keys {unknown}; allowed: {sorted(allowed)}")
    return HFEngineConfig(**kwargs)


def _no_stop_iteration(fn, *args):
    """Run ``fn``; a ``StopIteration`` escaping a thread cannot be set on an asyncio future and would leave the
    request hanging forever (verl then waits for the sample), so it is re-raised as a ``RuntimeError``."""
    try:
        return fn(*args)
    except StopIteration as err:
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} raised StopIteration (inconsistent multimodal inputs?)") \
            from err


class GenerationBatcher:
    """Merges concurrent requests with the same sampling settings into batched ``generate`` calls.

    With ``max_batch_size == 1`` every request runs on its own (in a thread; ``max_parallel`` of them at once).
    Otherwise the first waiting request opens a window of ``batch_window_ms``; requests arriving in it join, grouped
    by :meth:`SamplingRequest.batch_key`, and each group is one ``generate_batch`` call.
    """

    def __init__(self, engine: HFGenerationEngine):
        self.engine = engine
        self.max_batch = int(engine.config.max_batch_size)
        self.window_s = float(engine.config.batch_window_ms) / 1000.0
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self.batch_sizes: list[int] = []
        """Size of every ``generate`` call made (for tests and benchmarks)."""

    async def submit(self, request: GenerationRequest) -> tuple[list[int], list[float] | None]:
        if self.max_batch <= 1:
            self.batch_sizes.append(1)
            return (await asyncio.to_thread(_no_stop_iteration, self.engine.generate_batch, [request]))[0]
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.window_s
            while len(batch) < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except asyncio.TimeoutError:
                    break
            groups: dict[tuple, list] = {}
            for item in batch:
                groups.setdefault(item[0].sampling.batch_key(), []).append(item)
            await asyncio.gather(*(self._generate(items) for items in groups.values()))

    async def _generate(self, items: list) -> None:
        self.batch_sizes.append(len(items))
        try:
            results = await asyncio.to_thread(_no_stop_iteration, self.engine.generate_batch, [r for r, _ in items])
        except Exception as err:  # noqa: BLE001 - isolated below, or delivered to the one caller
            if len(items) > 1:  # one bad request (e.g. inconsistent media) must not fail the others: one by one
                logger.warning("HF rollout: a batch of %d failed (%s); retrying its requests one by one",
                               len(items), err)
                await asyncio.gather(*(self._generate([item]) for item in items))
                return
            results = [err]
        for (_, future), result in zip(items, results):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class HFRolloutServer:
    """Token-in/token-out server backed by :class:`HFGenerationEngine` (wrapped with ``ray.remote``)."""

    def __init__(self, config, model_config, replica_rank: int = 0):
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig, RolloutConfig

        config = omega_conf_to_dataclass(config, dataclass_type=RolloutConfig) if not isinstance(
            config, RolloutConfig) else config
        model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig) if not isinstance(
            model_config, HFModelConfig) else model_config
        self.config = config
        self.replica_rank = replica_rank
        self.engine = HFGenerationEngine(model_config.local_path, engine_config_from(config),
                                         trust_remote_code=getattr(model_config, "trust_remote_code", False))
        hf_kwargs = (getattr(config, "engine_kwargs", None) or {}).get("hf", None) or {}
        script = hf_kwargs.get("scripted_responses")
        self.script = ScriptedResponses.load(script) if script else None
        if self.script is not None:
            logger.warning("HF rollout replica %d answers some requests with scripted replies from %s (marked "
                           "'%s' in extra_fields)", replica_rank, script, SCRIPTED_FIELD)
        self.run_seed = int(config.seed)
        self.global_steps: int | None = None
        self._batcher = GenerationBatcher(self.engine)
        self._paused = asyncio.Event()
        self._paused.set()
        self._rejecting = False
        self._ordinals: dict[str, int] = {}
        self._ordinals_step: int | None = None
        self._im_start = self.engine.tokenizer.convert_tokens_to_ids("<|im_start|>")
        self._assistant = self.engine.tokenizer.encode("assistant", add_special_tokens=False)

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       image_data: list | None = None, video_data: list | None = None, audio_data: list | None = None,
                       mm_processor_kwargs: dict | None = None, priority: int = 0, **kwargs) -> TokenOutput:
        if audio_data:
            raise ValueError("The HF rollout backend does not support audio inputs")
        if self._rejecting and not self._paused.is_set():
            return self._aborted_output()
        await self._paused.wait()
        prompt_ids = [int(t) for t in prompt_ids]
        sampling = SamplingRequest.from_verl(sampling_params, len(prompt_ids), self.config.prompt_length,
                                             self.config.response_length, self.config.max_model_len)
        prompt_key, ordinal = self.request_identity(prompt_ids)
        if sampling.seed is None:  # reproducible: the same (run seed, request, turn) samples the same tokens
            sampling.seed = request_seed(self.run_seed, f"{prompt_key}:{ordinal}", self.assistant_turns(prompt_ids))
        offset = random.Random(request_seed(self.run_seed, prompt_key, -1)).random()
        scripted = self._scripted_reply(prompt_ids, stratified_draw(offset, ordinal))
        request = GenerationRequest(prompt_ids, sampling, image_data, video_data, mm_processor_kwargs)
        if scripted is not None:
            token_ids = scripted[: sampling.max_tokens]
            log_probs = await asyncio.to_thread(_no_stop_iteration, self.engine.score, prompt_ids, token_ids,
                                                sampling.temperature, image_data, video_data, mm_processor_kwargs)
            log_probs = log_probs if sampling.logprobs else None
        else:
            token_ids, log_probs = await self._batcher.submit(request)
        stop_reason = "completed"
        if request.aborted and not self._finished(token_ids, sampling):
            stop_reason = "aborted"  # cut short by abort_all_requests: verl resumes it after the weight sync
        return TokenOutput(token_ids=token_ids, log_probs=log_probs, stop_reason=stop_reason,
                           extra_fields={"global_steps": self.global_steps, SCRIPTED_FIELD: scripted is not None})

    def request_identity(self, prompt_ids: list[int]) -> tuple[str, int]:
        """The identity of a request for its seed: ``("<step>:<prompt digest>", ordinal)``, the ordinal counting the
        identical prompts that came before it in this step (the samples of a GRPO group share a prompt).

        verl's agent loops name requests with random ``uuid4`` ids, so the id itself cannot make two runs agree;
        the content and its ordinal do, whatever the arrival order of different prompts or the batch they join.
        """
        if self._ordinals_step != self.global_steps:  # bounded memory: ordinals restart every step
            self._ordinals, self._ordinals_step = {}, self.global_steps
        key = f"{self.global_steps}:{hashlib.sha256(np.asarray(prompt_ids, dtype=np.int64).tobytes()).hexdigest()}"
        ordinal = self._ordinals.get(key, 0)
        self._ordinals[key] = ordinal + 1
        return key, ordinal

    def assistant_turns(self, prompt_ids: list[int]) -> int:
        """Assistant turns already in a chat prompt (the trailing generation prompt not counted): the ``turn`` of
        :func:`request_seed`, so every turn of a trajectory gets its own random stream."""
        width = len(self._assistant)
        opened = sum(1 for i, t in enumerate(prompt_ids)
                     if t == self._im_start and prompt_ids[i + 1: i + 1 + width] == self._assistant)
        return max(opened - 1, 0)

    def _finished(self, token_ids: list[int], sampling: SamplingRequest) -> bool:
        ended = bool(token_ids) and token_ids[-1] in {*self.engine.eos_token_ids, *sampling.stop_token_ids}
        return len(token_ids) >= sampling.max_tokens or (ended and not sampling.ignore_eos)

    def _aborted_output(self) -> TokenOutput:
        return TokenOutput(token_ids=[], log_probs=None, stop_reason="aborted",
                           extra_fields={"global_steps": self.global_steps, SCRIPTED_FIELD: False})

    def _scripted_reply(self, prompt_ids: list[int], draw: float) -> list[int] | None:
        if self.script is None:
            return None
        text = self.engine.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        reply = self.script.pick(text, draw)
        return None if reply is None else self.engine.tokenizer.encode(reply, add_special_tokens=False)

    async def load_weights(self, named_tensors: dict[str, torch.Tensor]) -> dict[str, list[str]]:
        return await asyncio.to_thread(self.engine.load_weights, named_tensors)

    async def weights_version(self) -> int:
        return self.engine.weights_version

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    async def abort_all_requests(self, reject_request: bool = False) -> None:
        """Hold new requests (or, with ``reject_request``, answer them ``aborted`` at once) and stop in-flight ones
        after their current token; they return what they produced with ``stop_reason="aborted"``."""
        self._paused.clear()
        self._rejecting = reject_request
        self.engine.abort()

    async def resume_generation(self) -> None:
        self.engine.resume()
        self._rejecting = False
        self._paused.set()

    # Memory management is a no-op: the tiny/standalone HF model stays resident.
    async def wake_up(self):
        return None

    async def sleep(self):
        return None

    async def clear_kv_cache(self):
        return None

    async def release_kv_cache(self):
        return None

    async def resume_kv_cache(self):
        return None

    async def start_profile(self, **kwargs):
        return None

    async def stop_profile(self):
        return None


class HFReplica(RolloutReplica):
    """One HF server per replica, placed on the node of the replica's first worker."""

    async def launch_servers(self):
        node_id = ray.get_runtime_context().get_node_id()
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
        use_gpu = torch.cuda.is_available()
        server = ray.remote(HFRolloutServer).options(
            name=server_actor_name(self.replica_rank),
            scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node_id=node_id,
                                                                                              soft=False),
            num_cpus=0, num_gpus=0.01 if use_gpu else 0, max_concurrency=self.max_concurrency,
        ).remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        await server.weights_version.remote()  # wait until the model is loaded (errors surface here)
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"hf-replica-{self.replica_rank}"


class HFServerAdapter(BaseRollout):
    """In-worker adapter: pushes the trainer's weights to this replica's HF server."""

    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", 0))
        rollout_world_size = (self.config.tensor_model_parallel_size * self.config.data_parallel_size
                              * self.config.pipeline_model_parallel_size)
        self.replica_rank = rank // rollout_world_size if replica_rank == -1 else replica_rank
        self.is_leader = rank % rollout_world_size == 0
        self._server = None

    def _server_handle(self):
        if self._server is None:
            self._server = ray.get_actor(server_actor_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]):
        return None

    async def release(self):
        return None

    async def update_weights(self, weights, wire_format: str = "named_tensors", global_steps: int | None = None,
                             **kwargs):
        if wire_format != "named_tensors":
            raise ValueError(f"HF rollout supports wire_format='named_tensors' only, got {wire_format!r}")
        state = {}
        for name, tensor in weights:  # every rank iterates: FSDP all-gathers inside the generator
            if self.is_leader:
                full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
                state[name] = full.detach().to("cpu", copy=True)
        if self.is_leader:
            server = self._server_handle()
            await server.load_weights.remote(state)
            if global_steps is not None:
                await server.set_global_steps.remote(global_steps)
