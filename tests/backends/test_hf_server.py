# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The HF rollout server without Ray: reproducible sampling (per-request generators seeded from run seed, request id
and turn), scripted replies only through the config key, and abort of in-flight requests."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from PIL import Image

from videoseg_o3_verl.backends.cpu.hf_engine import request_seed
from videoseg_o3_verl.backends.cpu.scripted import check_scripted_rollout, scripted_fraction, stratified_draw
from videoseg_o3_verl.backends.cpu.server import HFRolloutServer


def _server(model_path, seed=5, **hf):
    from verl.workers.config import HFModelConfig, RolloutConfig

    rollout = RolloutConfig(name="hf", prompt_length=2048, response_length=512, seed=seed,
                            engine_kwargs={"hf": {"max_batch_size": 4, "batch_window_ms": 30, **hf}})
    return HFRolloutServer(rollout, HFModelConfig(path=str(model_path)))


def _prompt(server, text, n_images=1, history=()):
    images = [Image.fromarray(np.random.default_rng(k).integers(0, 255, (56, 84, 3), dtype=np.uint8))
              for k in range(n_images)]
    content = [{"type": "image", "image": im} for im in images] + [{"type": "text", "text": text}]
    messages = [{"role": "user", "content": content}, *history]
    processor = server.engine.processor
    chat = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[chat], images=images, return_tensors="pt")["input_ids"][0].tolist(), images


def _run(server, calls, delays):
    """``calls``: (request_id, prompt_ids, images); each starts after its delay (different arrival orders and batch
    compositions). Returns request_id -> TokenOutput."""
    params = {"temperature": 1.0, "top_p": 0.9, "max_tokens": 10, "logprobs": True}

    async def one(request_id, ids, images, delay):
        await asyncio.sleep(delay)
        return request_id, await server.generate(ids, params, request_id, image_data=images)

    async def main():
        return dict(await asyncio.gather(*(one(*call, d) for call, d in zip(calls, delays))))

    return asyncio.run(main())


def _by_prompt(calls, outputs) -> dict[tuple, list]:
    """Outputs grouped by prompt, each group sorted: the samples of a GRPO group are interchangeable."""
    groups: dict[tuple, list] = {}
    for request_id, ids, _ in calls:
        out = outputs[request_id]
        groups.setdefault(tuple(ids), []).append((tuple(out.token_ids), tuple(np.round(out.log_probs, 4))))
    return {k: sorted(v) for k, v in groups.items()}


def test_same_seed_gives_identical_trajectories_whatever_the_arrival_order(tiny_qwen25_path):
    first = _server(tiny_qwen25_path)
    ids, images = _prompt(first, "the red one")
    other_ids, other_images = _prompt(first, "the blue one that moves", n_images=2)
    # a GRPO group: the same prompt four times, plus another prompt
    calls = [(f"traj-{k}", ids, images) for k in range(4)] + [("traj-x", other_ids, other_images)]
    run_a = _run(first, calls, delays=[0, 0, 0, 0, 0])  # one batch of 4 + a batch of 1
    # another server, random request ids (as verl's agent loops send), reversed order, other batch compositions
    renamed = [(f"uuid-{k * 7919}", i, im) for k, (_, i, im) in enumerate(calls[::-1])]
    run_b = _run(_server(tiny_qwen25_path), renamed, delays=[0, 0.05, 0.1, 0.15, 0.2])
    assert _by_prompt(calls, run_a) == _by_prompt(renamed, run_b)
    group = [tuple(run_a[f"traj-{k}"].token_ids) for k in range(4)]
    assert len(set(group)) > 1  # the samples of a group get their own streams
    run_c = _run(_server(tiny_qwen25_path, seed=6), calls, delays=[0] * 5)
    assert _by_prompt(calls, run_c) != _by_prompt(calls, run_a)


def test_each_turn_of_a_request_gets_its_own_seed(tiny_qwen25_path):
    server = _server(tiny_qwen25_path)
    first, _ = _prompt(server, "q")
    second, _ = _prompt(server, "q", history=[{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}])
    assert server.assistant_turns(first) == 0 and server.assistant_turns(second) == 1
    # sha256 of "5\x1ftraj\x1f0": stable across processes (Python's hash() of a str is salted per process)
    assert request_seed(5, "traj", 0) == int.from_bytes(__import__("hashlib").sha256(b"5\x1ftraj\x1f0").digest()[:8],
                                                        "big") >> 1
    assert request_seed(5, "traj", 0) != request_seed(5, "traj", 1)


def test_scripted_replies_only_through_the_config_key(tiny_qwen25_path, tmp_path, monkeypatch):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"turn": 0, "response": "<answer>x</answer>", "probability": 0.5}]}))
    monkeypatch.setenv("VIDEOSEG_O3_SCRIPTED_ROLLOUT", str(script))
    assert _server(tiny_qwen25_path).script is None  # the old environment switch does nothing

    def flags(server, order):
        ids, images = _prompt(server, "q")
        calls = [(f"r{k}", ids, images) for k in order]
        out = _run(server, calls, delays=[0] * len(calls))
        return {k: v.extra_fields["scripted"] for k, v in out.items()}

    a = flags(_server(tiny_qwen25_path, scripted_responses=str(script)), range(8))
    b = flags(_server(tiny_qwen25_path, scripted_responses=str(script)), reversed(range(8)))
    c = flags(_server(tiny_qwen25_path, scripted_responses=str(script)), range(8))
    assert a == c  # the same run seed scripts the same requests
    assert sum(a.values()) == sum(b.values()) == 4  # probability 0.5 in a group of 8: exactly half, in any order
    assert scripted_fraction([{"scripted": v} for v in a.values()]) == sum(a.values()) / 8


def test_scripted_replies_refused_outside_the_hf_backend():
    from omegaconf import OmegaConf

    rollout = OmegaConf.create({"name": "vllm", "engine_kwargs": {"hf": {"scripted_responses": "s.json"}}})
    with pytest.raises(ValueError, match="engine_kwargs.hf.scripted_responses.*'vllm'"):
        check_scripted_rollout(rollout)
    check_scripted_rollout(OmegaConf.merge(rollout, {"name": "hf"}))
    check_scripted_rollout(OmegaConf.create({"name": "vllm", "engine_kwargs": {}}))


def test_abort_stops_in_flight_requests_and_resume_restores(tiny_qwen25_path):
    server = _server(tiny_qwen25_path)
    server.engine.model.lm_head.register_forward_hook(lambda *args: time.sleep(0.01))  # ~10 ms per token
    ids, images = _prompt(server, "q")
    params = {"temperature": 1.0, "max_tokens": 400, "ignore_eos": True}

    async def main():
        running = asyncio.create_task(server.generate(ids, params, "long", image_data=images))
        await asyncio.sleep(0.5)
        await server.abort_all_requests(reject_request=True)
        aborted = await asyncio.wait_for(running, 10)
        rejected = await server.generate(ids, params, "late", image_data=images)
        await server.resume_generation()
        done = await server.generate(ids, {**params, "max_tokens": 5}, "after", image_data=images)
        return aborted, rejected, done

    aborted, rejected, done = asyncio.run(main())
    assert aborted.stop_reason == "aborted" and 0 < len(aborted.token_ids) < 400
    assert rejected.stop_reason == "aborted" and rejected.token_ids == []
    assert done.stop_reason == "completed" and len(done.token_ids) == 5


def test_stratified_draws_split_every_power_of_two_group_evenly():
    for offset in (0.0, 0.3, 0.99):
        for size in (2, 4, 8):
            draws = [stratified_draw(offset, k) for k in range(size)]
            assert sum(d < 0.5 for d in draws) == size // 2  # p = 0.5: exactly half, never none
            assert all(0.0 <= d < 1.0 for d in draws)
