# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Decoder weights from the seg-head engine to the SAM2 reward service: SAM2 key names, one service handle per
process with the configured call timeout, and a restarted actor that gets the engine's latest weights back before
the trainer's J&F request is computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from videoseg_o3_verl.config import RewardServiceSettings
from videoseg_o3_verl.verl_ext.weight_sync import DecoderWeightsPusher, decoder_state


def test_decoder_state_renames_prompt_encoder_and_mask_decoder_to_sam2_keys():
    head = nn.Module()
    head.proj = nn.Linear(2, 1)
    head.prompt_encoder = nn.Linear(1, 1, bias=False)
    head.mask_decoder = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        head.prompt_encoder.weight.fill_(2.0)
        head.mask_decoder.weight.fill_(3.0)
    state = decoder_state(head.to(torch.bfloat16))
    # the projection stays on the policy side; the two SAM2 modules take the SAM2 model's attribute names
    assert sorted(state) == ["sam_mask_decoder.weight", "sam_prompt_encoder.weight"]
    assert state["sam_prompt_encoder.weight"].tolist() == [[2.0]]
    assert state["sam_mask_decoder.weight"].dtype == torch.float32  # the service expects float32


class _FakeService:
    """Stands in for ``videoseg_reward.actor.Sam2Service``: counts handles, records pushes."""

    instances: list[_FakeService] = []
    registry: dict[str, _FakeService] = {}

    def __init__(self, name: str, call_timeout_s: float = 600.0):
        self.name, self.call_timeout_s, self.pushes = name, call_timeout_s, []
        _FakeService.instances.append(self)

    @classmethod
    def connect(cls, name: str, **kwargs):
        if name not in cls.registry:
            cls.registry[name] = cls(name, **kwargs)
        return cls.registry[name]

    def update_decoder_weights(self, state, version):
        self.pushes.append(version)
        return version


def test_pushes_reuse_one_service_handle_with_the_configured_timeout(monkeypatch):
    from videoseg_reward import actor

    monkeypatch.setattr(_FakeService, "instances", [])
    monkeypatch.setattr(_FakeService, "registry", {})
    monkeypatch.setattr(actor, "Sam2Service", _FakeService)
    pusher = DecoderWeightsPusher(RewardServiceSettings(actor_name="svc", call_timeout_s=7.5))
    first = pusher.push({"w": torch.zeros(1)})
    second = pusher.push({"w": torch.ones(1)})
    assert len(_FakeService.instances) == 1  # one long-lived handle, not one per push
    handle = _FakeService.instances[0]
    assert handle.call_timeout_s == 7.5 and handle.pushes == [first, second]
    assert second > first  # versions only increase


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.ray
def test_restarted_actor_serves_the_trainers_request_with_the_engines_last_weights(ray_session, tiny_sam2_path):
    import os
    import signal

    from videoseg_reward.actor import Sam2Service
    from videoseg_reward.schemas import Prompts
    from videoseg_reward.scorer import Sam2Scorer

    from videoseg_o3_verl.config import load_videoseg_config
    from videoseg_o3_verl.verl_ext.jf_scoring import connect_reward_service

    settings = load_videoseg_config({"videoseg_o3": {
        "sam2": {"checkpoint": str(tiny_sam2_path)}, "rewards": {"jf": {"enabled": True}},
        "reward_service": {"actor_name": "videoseg-test-weight-sync", "call_timeout_s": 120.0}}})
    trainer_service = connect_reward_service(settings)  # the trainer process's handle (creates the actor)
    try:
        assert trainer_service.call_timeout_s == 120.0
        decoder = Sam2Scorer(str(tiny_sam2_path), device="cpu").decoder_state_dict()
        weights = [{k: v * scale for k, v in decoder.items() if "output_hypernetworks" in k} for scale in (1.5, 2.0)]

        @ray_session.remote(num_cpus=0)
        def engine_pushes(pushed):  # the engine's rank 0: another process, its own handle
            pusher = DecoderWeightsPusher(settings.reward_service)
            versions = [pusher.push(state) for state in pushed]
            return versions, pusher.service.call_timeout_s, len(Sam2Service._registry)

        versions, timeout, handles = ray_session.get(engine_pushes.remote(weights), timeout=300)
        assert timeout == 120.0 and handles == 1 and versions[1] > versions[0]
        os.kill(trainer_service.stats()["pid"], signal.SIGKILL)  # the actor restarts without decoder weights
        video = np.random.default_rng(0).integers(0, 255, (4, 64, 80, 3), dtype=np.uint8)
        prompts = Prompts.from_embeddings(np.random.default_rng(1).normal(size=(1, 256)).astype(np.float32))
        result = trainer_service.segment(video, prompts, "image", 1, [1])
        # computed after the trainer's handle re-pushed the engine's LAST weights (not the first, not none)
        assert result.model_version == versions[1]
        assert trainer_service.counters["weight_repushes"] == 1
        local = Sam2Scorer(str(tiny_sam2_path), device="cpu")
        local.update_decoder_weights(weights[1], versions[1])
        assert int((result.masks != local.segment(video, prompts, "image", 1, [1]).masks).sum()) <= 2
    finally:
        trainer_service.shutdown()
