# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Load on the HTTP reward service (127.0.0.1 only): throughput and p50/p95 latency, batched vs unbatched.

The same tiny random SAM2 model serves twice from one process: once with micro-batching (``--max-batch``,
``--batch-window-ms``) and once with ``max_batch=1`` (every request on its own, as before batching). ``--clients``
threads send ``--requests`` image-mode ``/segment`` requests in total, GRPO-like: one embedding prompt each, the
same clip and frames (the frame features are cached first, so the comparison is about decoding and serving).
Every batched answer is compared with the unbatched one (pixels that differ are reported: merged decoding rounds
differently at logits ~0). Bounded: a fixed number of requests, 120 s per call.

Usage::

    nice .venv/bin/python benchmarks/reward_service_load.py --clients 16 --requests 128
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _reward_fixtures import LoopbackServer, synthetic_clip, tiny_checkpoint, write_clip


def run_load(url: str, prompts: list, frames: list[int], clients: int) -> tuple[float, np.ndarray, list]:
    """``(wall seconds, per-request latencies, results)`` of all prompts sent by ``clients`` threads."""
    from videoseg_reward.client import RewardClient

    latencies = np.zeros(len(prompts))

    def one(i: int):
        with RewardClient(url, timeout=120) as client:
            t0 = time.perf_counter()
            result = client.segment("clip", prompts[i], "image", frames[0], frames)
            latencies[i] = time.perf_counter() - t0
            return result

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(len(prompts))))
    return time.perf_counter() - t0, latencies, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--requests", type=int, default=128, help="requests per configuration")
    parser.add_argument("--frames", type=int, nargs="+", default=[0, 2, 4, 6, 7], help="frame indices per request")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--batch-window-ms", type=float, default=5.0)
    args = parser.parse_args()

    from videoseg_reward.app import ServiceSettings, build_app
    from videoseg_reward.schemas import Prompts
    from videoseg_reward.scorer import Sam2Scorer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        checkpoint = tiny_checkpoint(root)
        write_clip(root / "videos" / "clip", synthetic_clip())
        rng = np.random.default_rng(0)
        prompts = [Prompts.from_embeddings(rng.normal(size=(1, 256)).astype(np.float32)) for _ in range(args.requests)]
        configs = {"unbatched": (1, 0.0), "batched": (args.max_batch, args.batch_window_ms)}
        report, answers = {}, {}
        print(f"reward service load: {args.requests} /segment requests (image mode, {len(args.frames)} frames), "
              f"{args.clients} concurrent clients, 127.0.0.1")
        for name, (max_batch, window) in configs.items():
            scorer = Sam2Scorer(checkpoint, device="cpu", video_roots=[root / "videos"])
            scorer.prefetch(root / "videos" / "clip", args.frames)
            settings = ServiceSettings(video_roots=(str(root / "videos"),), max_batch=max_batch,
                                       batch_window_ms=window, max_queue=max(64, args.requests))
            app = build_app(scorer, settings)
            server = LoopbackServer(app)
            try:
                run_load(server.url, prompts[:4], args.frames, 2)  # warm-up (connections, first decode)
                wall, lat, answers[name] = run_load(server.url, prompts, args.frames, args.clients)
            finally:
                server.close()
            stats = app.state.batcher.stats
            report[name] = args.requests / wall
            print(f"[{name:>9}] {args.requests / wall:7.1f} req/s  p50 {1e3 * np.percentile(lat, 50):7.1f} ms  "
                  f"p95 {1e3 * np.percentile(lat, 95):7.1f} ms  batches {stats['batches']}  "
                  f"largest batch {stats['max_batch_size']}")
        same = all(np.array_equal(a.masks, b.masks) for a, b in zip(answers["batched"], answers["unbatched"],
                                                                        strict=True))
        print(f"batched / unbatched throughput: {report['batched'] / report['unbatched']:.2f}x  "
              f"(answers identical: {same})")
        if not same:
            diff = max(int((a.masks != b.masks).sum()) for a, b in zip(answers["batched"], answers["unbatched"],
                                                                      strict=True))
            print(f"largest difference: {diff} pixel(s) (float rounding of the batched decoder at logits near 0)")


if __name__ == "__main__":
    main()
