# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The replay buffer's poll interval: ``trainer.v1.sampler.sampler_kwargs.poll_interval`` reaches verl's buffer.

verl's sync trainer waits for a step's trajectories by polling its replay buffer every ``poll_interval`` seconds
(2 s, never configurable from the trainer config); the plugin's trainer sets it from the sampler kwargs. Builds the
buffer of the real trainer class on a composed recipe (no Ray, no model); ~5 s.
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf, open_dict

from videoseg_o3_verl.launch import compose_recipe
from videoseg_o3_verl.verl_ext.trainer import VideoSegO3Trainer, replay_poll_interval


def _config(*overrides: str):
    return compose_recipe("demo_rl", ["actor_rollout_ref.model.path=/m", "videoseg_o3.sam2.checkpoint=/s.pt",
                                      "videoseg_o3.seg_head.path=/h", "data.train_files=/t.parquet",
                                      "data.val_files=/v.parquet", *overrides])


def _buffer(cfg):
    trainer = VideoSegO3Trainer.__new__(VideoSegO3Trainer)  # only what _build_replay_buffer reads
    trainer.config, trainer.trainer_mode = cfg, "videoseg_o3_sync"
    return trainer._build_replay_buffer()


def test_trainer_poll_interval_from_sampler_kwargs_reaches_buffer():
    cfg = _config("trainer.v1.sampler.sampler_kwargs.poll_interval=0.25")
    buffer = _buffer(cfg)
    assert buffer.poll_interval == 0.25
    # without the key the buffer keeps verl's own default (2 s in verl 0.9.1)
    with open_dict(cfg):
        del cfg.trainer.v1.sampler.sampler_kwargs["poll_interval"]
    assert _buffer(cfg).poll_interval == 2.0


@pytest.mark.parametrize("value", [0, -1.0, True, "fast"])
def test_trainer_poll_interval_invalid_names_key(value):
    cfg = OmegaConf.create({"trainer": {"v1": {"sampler": {"sampler_kwargs": {"poll_interval": value}}}}})
    with pytest.raises(ValueError, match=r"trainer\.v1\.sampler\.sampler_kwargs\.poll_interval"):
        replay_poll_interval(cfg, 2.0)


def test_trainer_poll_interval_unset_keeps_default():
    assert replay_poll_interval(OmegaConf.create({"trainer": {"v1": {}}}), 2.0) == 2.0
    assert replay_poll_interval({"trainer": {"v1": {"sampler": {"sampler_kwargs": {"poll_interval": 1}}}}}, 2.0) == 1.0
