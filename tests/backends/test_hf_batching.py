# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Batched generation in the HF rollout backend: a left-padded batch gives the same tokens and log-probs as one
request at a time (images, text-only, different lengths), and the server's batcher merges concurrent requests."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from videoseg_o3_verl.backends.cpu.hf_engine import (
    GenerationRequest,
    HFEngineConfig,
    HFGenerationEngine,
    SamplingRequest,
)
from videoseg_o3_verl.backends.cpu.server import GenerationBatcher


def _requests(engine, temperature=0.0):
    requests = []
    for n, size in enumerate([(56, 84), (84, 112), None]):
        if size:
            images = [Image.fromarray(np.random.default_rng(n + k).integers(0, 255, (*size, 3), dtype=np.uint8))
                      for k in range(n + 1)]
            content = [{"type": "image", "image": im} for im in images] + [{"type": "text", "text": "which " * (n + 1)}]
        else:
            images, content = None, [{"type": "text", "text": "no image here, only text"}]
        text = engine.processor.apply_chat_template([{"role": "user", "content": content}],
                                                    add_generation_prompt=True, tokenize=False)
        ids = engine.processor(text=[text], images=images, return_tensors="pt")["input_ids"][0].tolist()
        sampling = SamplingRequest(max_tokens=6 + n, temperature=temperature, logprobs=True)
        requests.append(GenerationRequest(ids, sampling, images))
    return requests


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "qwen3_vl"])
def test_generate_batch_matches_single_requests(kind):
    from videoseg_o3_verl.model.tiny import tiny_qwen_vl

    engine = HFGenerationEngine(str(tiny_qwen_vl(kind)))
    requests = _requests(engine)  # greedy: tokens must agree exactly
    single = [engine.generate_batch([r])[0] for r in requests]
    batch = engine.generate_batch(requests)
    for (tokens_1, logp_1), (tokens_b, logp_b), request in zip(single, batch, requests):
        assert tokens_b == tokens_1 and len(tokens_b) <= request.sampling.max_tokens
        np.testing.assert_allclose(logp_b, logp_1, atol=1e-4)


def test_generate_batch_rejects_mixed_sampling(tiny_qwen25_path):
    engine = HFGenerationEngine(str(tiny_qwen25_path))
    a, b = _requests(engine)[:2]
    b = replace(b, sampling=replace(b.sampling, temperature=0.7))
    with pytest.raises(ValueError, match="share"):
        engine.generate_batch([a, b])


def test_batcher_merges_concurrent_requests_by_sampling_key(tiny_qwen25_path):
    engine = HFGenerationEngine(str(tiny_qwen25_path), HFEngineConfig(max_batch_size=8, batch_window_ms=50))
    greedy = _requests(engine)
    sampled = _requests(engine, temperature=1.0)[:2]
    expected = [engine.generate_batch([r])[0][0] for r in greedy]

    async def main():
        batcher = GenerationBatcher(engine)
        results = await asyncio.gather(*(batcher.submit(r) for r in greedy + sampled))
        return batcher, results

    batcher, results = asyncio.run(main())
    assert sorted(batcher.batch_sizes) == [2, 3]  # one call per sampling setting, not one per request
    assert [tokens for tokens, _ in results[:3]] == expected


def test_batcher_fails_only_the_bad_request_of_a_batch(tiny_qwen25_path):
    engine = HFGenerationEngine(str(tiny_qwen25_path), HFEngineConfig(max_batch_size=4, batch_window_ms=50))
    good, bad, text = _requests(engine)
    bad = replace(bad, image_data=bad.image_data[:1])  # fewer images than placeholders
    expected = [engine.generate_batch([r])[0][0] for r in (good, text)]

    async def main():
        batcher = GenerationBatcher(engine)
        results = await asyncio.gather(batcher.submit(good), batcher.submit(bad), batcher.submit(text),
                                       return_exceptions=True)
        return batcher, results

    batcher, results = asyncio.run(main())
    assert batcher.batch_sizes[0] == 3  # they were merged, the merged call failed ...
    assert isinstance(results[1], ValueError)  # ... and only the bad request fails
    assert [results[0][0], results[2][0]] == expected
