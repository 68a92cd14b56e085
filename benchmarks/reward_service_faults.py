# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Fault injection on the Ray SAM2 service (local Ray, loopback only): N callers, K actor crashes.

``--callers`` threads share one :class:`videoseg_reward.actor.Sam2Service` handle and each run
``--requests-per-caller`` image-mode requests in one ``run`` call, against a tiny random SAM2 model whose decoder
weights were pushed once (version 1). While they wait, the actor process is SIGKILLed ``--crashes`` times,
``--crash-interval-s`` apart (each kill hits the restarted actor). Every answer is checked against a local scorer
with the same weights. Prints, per request id: answered (correct result), errored (an exception, e.g. retries
exhausted), lost (no answer at all), duplicated (answered more than once), wrong (a result that is not this
request's, or computed with other weights). Bounded: ``--deadline-s`` for the whole run; Ray is shut down at the end.

Usage::

    flock /tmp/videoseg_heavy.lock nice .venv/bin/python benchmarks/reward_service_faults.py --callers 8 --crashes 2
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _reward_fixtures import synthetic_clip, tiny_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--requests-per-caller", type=int, default=4)
    parser.add_argument("--crashes", type=int, default=2)
    parser.add_argument("--crash-interval-s", type=float, default=4.5)
    parser.add_argument("--max-retries", type=int, default=2)
    parser.add_argument("--deadline-s", type=float, default=600.0)
    args = parser.parse_args()

    import ray
    from videoseg_reward.actor import Sam2Service
    from videoseg_reward.schemas import Prompts, SegmentResult
    from videoseg_reward.scorer import Sam2Scorer

    frames = (0, 2, 4, 6)
    video = synthetic_clip()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = tiny_checkpoint(Path(tmp))
            service = Sam2Service.get_or_create("sam2-fault-bench", checkpoint, device="cpu", batch_window_ms=20,
                                                max_batch=4, feature_cache_frames=0, max_restarts=args.crashes + 1,
                                                max_retries=args.max_retries, retry_backoff_s=0.2,
                                                call_timeout_s=args.deadline_s / 2)
            local = Sam2Scorer(checkpoint, device="cpu")
            weights = {k: v * 1.5 for k, v in local.decoder_state_dict().items() if "output_hypernetworks" in k}
            service.update_decoder_weights(weights, 1)
            local.update_decoder_weights(weights, 1)
            rng = np.random.default_rng(0)
            total = args.callers * args.requests_per_caller
            requests = [service.make_request(video, Prompts.from_embeddings(rng.normal(size=(1, 256)).astype(
                np.float32)), "image", 3, frames, request_id=f"req-{i}") for i in range(total)]
            chunks = [requests[i::args.callers] for i in range(args.callers)]
            start = time.monotonic()
            injected = 0
            with ThreadPoolExecutor(args.callers) as pool:
                futures = [pool.submit(service.run, chunk, return_exceptions=True) for chunk in chunks]
                while service.stats()["started"] < 1 and time.monotonic() - start < args.deadline_s:
                    time.sleep(0.05)
                for k in range(args.crashes):
                    if k:
                        time.sleep(args.crash_interval_s)
                    if all(f.done() for f in futures):
                        break
                    os.kill(service.stats()["pid"], signal.SIGKILL)
                    injected += 1
                outcomes = [f.result(timeout=max(args.deadline_s - (time.monotonic() - start), 1.0))
                            for f in futures]
            elapsed = time.monotonic() - start
            answers = Counter()
            answered = errored = wrong = max_differ = 0
            for chunk, outs in zip(chunks, outcomes, strict=True):
                for req, out in zip(chunk, outs, strict=False):
                    answers[req.request_id] += 1
                    if isinstance(out, SegmentResult):
                        expected = local.segment(video, req.prompts, "image", 3, frames).masks
                        differ = int((out.masks != expected).sum())
                        max_differ = max(max_differ, differ)
                        # merged batches round differently: a pixel at logit ~0 may flip; a wrong answer differs widely
                        if out.model_version == 1 and differ <= 2:
                            answered += 1
                        else:
                            wrong += 1
                    else:
                        errored += 1
            lost = sum(1 for r in requests if answers[r.request_id] == 0)
            duplicated = sum(1 for r in requests if answers[r.request_id] > 1)
            print(f"reward service faults: {args.callers} callers x {args.requests_per_caller} requests, "
                  f"{injected} SIGKILL(s) of the actor {args.crash_interval_s:g} s apart, {elapsed:.1f} s")
            print(f"requests {total}  answered {answered}  errored {errored}  lost {lost}  duplicated {duplicated}  "
                  f"wrong {wrong} (largest pixel difference to a lone decode: {max_differ})  |  recoveries {service.counters['recoveries']}  weight re-pushes "
                  f"{service.counters['weight_repushes']}  resubmitted {service.counters['resubmitted']}")
            service.shutdown()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
