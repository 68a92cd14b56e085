# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Rollout throughput: N concurrent agent-loop trajectories vs the same N one after another.

The authors roll out one GRPO group per device with plain HF ``generate`` and one trajectory's turns strictly in
sequence (spec §2.2); verl's agent loop runs many trajectories as concurrent coroutines against a generation
server. This script measures what that buys on the CPU backend: the real :class:`VideoSegO3AgentLoop` (frame
reading, prompt building, observations), a tiny random Qwen-VL behind :class:`HFGenerationEngine`
(``max_parallel`` threads) reached through an in-process server manager, synthetic videos.

A random model never writes a valid ``<select>``, so every trajectory would stop after one turn. With
``--scripted`` the first turn of every trajectory is a fixed ``<select>`` (its log-probs are still the model's,
teacher-forced with ``engine.score``), which yields a second, sampled turn with the select's observation.

Usage (keep it small on a shared CPU):
    source scripts/cpu_env.sh
    nice .venv/bin/python benchmarks/rollout_bench.py --n 8 --max-parallel 2 --max-new-tokens 32 --repeats 2
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
    p.add_argument("--device", default="cpu", help="engine device (the CPU backend by default)")
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
    engine = HFGenerationEngine(path, HFEngineConfig(max_parallel=args.max_parallel, device=args.device,
                                                     max_batch_size=args.max_batch_size))
    processor = AutoProcessor.from_pretrained(path)
    model_type = AutoConfig.from_pretrained(path).model_type
    prompt_length, response_length = 8192, 4096
    config = OmegaConf.create({
        "actor_rollout_ref": {"rollout": {"prompt_length": prompt_length, "response_length": response_length,
                                          "full_determinism": False}},
        "data": {},
    })
    server = EngineServerManager(engine, prompt_length, response_length, args.max_new_tokens,
                                 SCRIPTED_SELECT if args.scripted else None)
    sampling_params = {"temperature": 0.9, "top_p": 0.9, "logprobs": True}

    def make_loop():
        return VideoSegO3AgentLoop(trainer_config=DictConfigWrap(config), server_manager=server,
                                   tokenizer=processor.tokenizer, processor=processor, dataset_cls=RLHFDataset,
                                   data_config=DictConfigWrap(config.data), hf_model_type=model_type)

    with tempfile.TemporaryDirectory(prefix="rollout_bench_") as root:
        rows = _rows(root, args.num_videos, args.num_frames)

        async def bench():
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
              f"repeats={args.repeats} scripted={args.scripted} model={args.kind} device={engine.device} "
              f"torch_threads={torch.get_num_threads()} rows={len(rows)}", flush=True)
        results = asyncio.run(bench())

    summary = {}
    for mode, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        tokens = statistics.median(s.sampled_tokens + s.scripted_tokens for _, s in runs)
        sampled = statistics.median(s.sampled_tokens for _, s in runs)
        summary[mode] = {"wall_s": wall, "traj_per_s": args.n / wall, "tokens_per_s": tokens / wall,
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
