# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The cold-start recipes compose onto verl's SFT config, parse into verl's and our config classes, carry the
released settings (that every key is documented is checked with the other recipes in
tests/recipes/test_recipes.py)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from omegaconf import OmegaConf

from videoseg_o3_verl import register
from videoseg_o3_verl.launch import compose_recipe
from videoseg_o3_verl.sft.config import SFTSettings

RECIPES = ("coldstart_tiny_cpu", "coldstart_qwen3vl_2b", "coldstart_qwen3vl_4b", "demo_coldstart")
FILLS = ["model.path=/m", "videoseg_o3.sam2.checkpoint=/s.pt", "data.train_files=/d.parquet"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_parses_into_verl_and_plugin_configs(name):
    from verl.utils.config import omega_conf_to_dataclass

    from videoseg_o3_verl.config import load_videoseg_config

    register.register_resolvers()
    cfg = compose_recipe(name, FILLS)
    for section in ("engine", "optim", "checkpoint"):
        omega_conf_to_dataclass(cfg[section])
    assert cfg.model.model_type == "videoseg_o3_seg_sft"
    assert cfg.data.custom_cls.name == "VideoSegSFTDataset"
    resolved = OmegaConf.to_container(cfg.model.override_config, resolve=True)
    section = json.loads(resolved["videoseg_o3_sft"])
    SFTSettings.from_dict(section)
    assert set(section) == {f.name for f in dataclasses.fields(SFTSettings)}  # every setting spelled out
    load_videoseg_config(cfg)


@pytest.mark.parametrize("name", ["coldstart_qwen3vl_2b", "coldstart_qwen3vl_4b"])
def test_gpu_recipes_carry_the_released_cold_start(name):
    cfg = compose_recipe(name, FILLS)
    assert (cfg.model.lora_rank, cfg.model.lora_alpha) == (128, 256)
    assert cfg.videoseg_o3_sft.lora_dropout == 0.05
    assert list(cfg.videoseg_o3_sft.frozen_policy_modules) == ["visual"]
    assert list(cfg.videoseg_o3_sft.lora_trained_modules) == ["embed_tokens", "lm_head"]
    assert re.fullmatch(cfg.model.exclude_modules, "model.visual.blocks.0.attn.qkv")
    assert re.fullmatch(cfg.model.exclude_modules, "videoseg_seg_head.proj.0")
    assert not re.fullmatch(cfg.model.exclude_modules, "model.language_model.layers.0.self_attn.q_proj")
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.lr_warmup_steps_ratio) == (4e-5, 0.05, 0.05)
    assert cfg.optim.lr_scheduler_type == "cosine" and cfg.trainer.total_epochs == 1
    assert (cfg.data.train_batch_size, cfg.data.max_length) == (32, 8192)
    assert (cfg.videoseg_o3_sft.bce_weight, cfg.videoseg_o3_sft.dice_weight) == (2.0, 0.5)
    assert cfg.videoseg_o3_sft.bce_mode == "points" and cfg.videoseg_o3_sft.first_seg_only


def test_unfilled_placeholder_names_the_key():
    cfg = compose_recipe("coldstart_tiny_cpu", FILLS[:2])
    assert OmegaConf.is_missing(cfg.data, "train_files")


def test_demo_recipe_carries_the_demo_settings():
    cfg = compose_recipe("demo_coldstart", FILLS)
    assert (cfg.data.train_batch_size, cfg.data.micro_batch_size_per_gpu) == (16, 16)
    assert (cfg.optim.lr, list(cfg.optim.betas), cfg.optim.weight_decay, cfg.optim.clip_grad) == (2e-3, [0.9, 0.98],
                                                                                                  0.01, 1.0)
    # constant after the warm-up; 200 steps on the shared-window task leave RL room in the intervals (350 left it
    # nothing to add; docs/learning_demo.md, tenth round)
    assert (cfg.optim.lr_scheduler_type, cfg.optim.lr_warmup_steps) == ("constant", 30)
    assert cfg.trainer.total_training_steps == 200
    assert cfg.videoseg_o3_sft.supervise_all_frames is False  # measured: the head then predicts empty everywhere
    assert dict(cfg.engine.mixed_precision) == {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    assert cfg.videoseg_o3_sft.digit_weight == 5.0 and cfg.videoseg_o3_sft.bce_weight > 0
    # measured: at weight 1 the cold start never learned which tag it had opened, and the greedy format held only
    # where the closing tag's prior leaned to "answer"; at 5 one cold start of two learned it (eleventh round)
    assert cfg.videoseg_o3_sft.action_weight == 20.0
    assert cfg.videoseg_o3.sam2.image_size == 128 and cfg.videoseg_o3.seg_head.frame_cache_size >= 2048
    # measured: fed the raw [SEG] states the head predicts nothing on the shared-window task (eighth round)
    assert cfg.videoseg_o3.seg_head.input_norm is True
    # speed settings measured by benchmarks/sft_step_profile.py (the same maths)
    assert (cfg.data.num_workers, cfg.data.cache_items, cfg.engine.reshard_after_forward) == (0, True, False)
    assert cfg.videoseg_o3_sft.batched_vision_attention is True
    assert cfg.videoseg_o3_sft.causal_without_padding_mask is True
