# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The VideoSEG-O3 recipes compose, verl's own config classes accept them, and the GPU recipes carry docs/method.md §7.

Everything here composes YAML only (Hydra + OmegaConf + verl's config dataclasses); nothing starts Ray or loads a
model. Runtime ~25 s on 2 cores, most of it the ``--cfg job`` subprocess and the launch-script dry run.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

import videoseg_o3_verl.register  # noqa: F401  (the `videoseg_json` resolver the recipes use)
from videoseg_o3_verl.config import PAPER_REWARD_TERMS, VideoSegO3Config, load_videoseg_config
from videoseg_o3_verl.launch import compose_recipe, recipe_path

REPO = Path(__file__).resolve().parents[2]
RECIPES = ("tiny_cpu", "demo_rl", "qwen3vl_2b", "qwen3vl_4b")
DOCUMENTED_RECIPES = (*RECIPES, "coldstart_tiny_cpu", "coldstart_qwen3vl_2b", "coldstart_qwen3vl_4b",
                      "eval_tiny_cpu", "eval_qwen3vl", "eval_demo", "demo_coldstart")
"""Every recipe whose keys must each have a comment line above them."""
GPU_RECIPES = ("qwen3vl_2b", "qwen3vl_4b")

# Values for every `???` of each recipe (dummy paths: composing does not read them).
FILL = {
    "tiny_cpu": {
        "actor_rollout_ref.model.path": "/ckpt/tiny_qwen",
        "videoseg_o3.sam2.checkpoint": "/ckpt/sam2_tiny.pt",
        "data.train_files": "/data/train.parquet",
        "data.val_files": "/data/val.parquet",
    },
    "demo_rl": {
        "actor_rollout_ref.model.path": "/demo/sft/hf_policy",
        "videoseg_o3.sam2.checkpoint": "/ckpt/sam2_tiny.pt",
        "videoseg_o3.seg_head.path": "/demo/sft/seg_head",
        "data.train_files": "/demo/rl.parquet",
        "data.val_files": "/demo/rl.parquet",
    },
    **{
        name: {
            "actor_rollout_ref.model.path": "/ckpt/coldstart",
            "videoseg_o3.sam2.checkpoint": "/ckpt/coldstart/sam2_grounding_encoder.pt",
            "videoseg_o3.seg_head.path": "/ckpt/coldstart",
            "data.train_files": "/data/revos_rl.parquet",
            "data.val_files": "/data/revos_val.parquet",
        }
        for name in GPU_RECIPES
    },
}

# Keys a recipe may set although verl's composed ppo_trainer does not have them (fnmatch patterns), with why
# verl still accepts them.
ALLOWED_NEW_KEYS = {
    "actor_rollout_ref.model.model_type": "field of verl.workers.config.HFModelConfig, absent from hf_model.yaml",
    "actor_rollout_ref.model.override_config.*": "free-form dict of HF config overrides",
    "actor_rollout_ref.rollout.engine_kwargs.hf.*": "free-form per-backend dict (the plugin's HF backend)",
    "actor_rollout_ref.*.fsdp_config.mixed_precision.*": "field of FSDPEngineConfig, absent from engine/fsdp.yaml",
    "actor_rollout_ref.rollout.limit_images": "field of RolloutConfig, absent from rollout.yaml (read by "
                                              "vllm_rollout/vllm_async_server.py:289 as limit_mm_per_prompt)",
    "actor_rollout_ref.*.fsdp_config.wrap_policy.transformer_layer_cls_to_wrap":
        "read by verl.utils.fsdp_utils (apply_fsdp2 / get_fsdp_wrap_policy)",
    "reward.custom_reward_function.reward_kwargs.*": "read by verl/trainer/ppo/reward.py:82 (get_custom_reward_fn)",
    "ray_kwargs.ray_init.*": "passed to ray.init(**ray_init) (verl/trainer/main_ppo.py:63-74)",
    "trainer.v1.sampler.sampler_kwargs.*": "free-form kwargs of the replay buffer (poll_interval: read by the plugin's "
                                           "trainer, verl_ext/trainer.py:replay_poll_interval)",
    "videoseg_o3.*": "the plugin's section (typed by videoseg_o3_verl.config.VideoSegO3Config)",
}


def _overrides(name: str, extra: list[str] | None = None) -> list[str]:
    return [f"{k}={v}" for k, v in FILL[name].items()] + list(extra or [])


def _flatten(node, prefix: str = "") -> dict:
    """Dotted leaf keys of a (nested) plain dict; lists are leaves."""
    out = {}
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _has_key(node: dict, dotted: str) -> bool:
    """Whether a plain nested dict has the dotted key (a `???` value counts as present)."""
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _raw_recipe(name: str) -> dict:
    raw = OmegaConf.to_container(OmegaConf.load(recipe_path(name)), resolve=False)
    return {k: v for k, v in raw.items() if k not in ("hydra", "defaults")}


@pytest.fixture(scope="module")
def composed():
    """Each recipe composed with its `???` filled."""
    return {name: compose_recipe(name, _overrides(name)) for name in RECIPES}


@pytest.fixture(scope="module")
def verl_defaults():
    """verl's own ppo_trainer config, composed without any recipe."""
    import verl.trainer.config as verl_config
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=os.path.dirname(verl_config.__file__), version_base=None):
        cfg = compose(config_name="ppo_trainer")
    GlobalHydra.instance().clear()
    return OmegaConf.to_container(cfg, resolve=False)


# ------------------------------------------------------------------------------------------------- all recipes


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_fills_every_placeholder(name, composed):
    # the test's FILL covers exactly the keys the recipe marks `???`, and each override lands in the config
    placeholders = {k for k, v in _flatten(_raw_recipe(name)).items() if v == "???"}
    assert placeholders == set(FILL[name])
    cfg = composed[name]
    for key, value in FILL[name].items():
        assert OmegaConf.select(cfg, key) == value, key
    # the only missing value left is verl's own unused reward-model rollout name
    assert OmegaConf.missing_keys(cfg) == {"reward.reward_model.rollout.name"}


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_sets_only_keys_verl_knows(name, verl_defaults):
    from verl.workers.config import FSDPEngineConfig, HFModelConfig

    unknown = []
    for key in _flatten(_raw_recipe(name)):
        if _has_key(verl_defaults, key):
            continue
        if not any(fnmatch.fnmatch(key, pattern) for pattern in ALLOWED_NEW_KEYS):
            unknown.append(key)
    assert unknown == []
    # the two dataclass fields that verl's YAML does not list really exist
    assert "model_type" in {f.name for f in dataclasses.fields(HFModelConfig)}
    assert "mixed_precision" in {f.name for f in dataclasses.fields(FSDPEngineConfig)}


@pytest.mark.filterwarnings("ignore:Disabled critic")
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_accepted_by_verl_config_classes(name, composed):
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    cfg = copy.deepcopy(composed[name])
    # the k3 KL loss needs the reference model (demo_rl trains without it); GRPO needs no critic
    assert need_reference_policy(cfg) == cfg.actor_rollout_ref.actor.use_kl_loss == (name != "demo_rl")
    assert not need_critic(cfg)
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=False)  # bad batch layout
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)  # FSDPActorConfig + FSDPOptimizerConfig checks
    assert actor.optim.lr == cfg.actor_rollout_ref.actor.optim.lr
    rollout = omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    assert rollout.n == cfg.actor_rollout_ref.rollout.n
    assert omega_conf_to_dataclass(cfg.algorithm).adv_estimator == "grpo"
    # the reference config is converted the way verl's engine worker does it (workers/engine_workers.py:545-553)
    ref = cfg.actor_rollout_ref.ref
    with open_dict(ref):
        ref.ppo_mini_batch_size = cfg.actor_rollout_ref.actor.ppo_mini_batch_size
        ref.ppo_micro_batch_size = ref.pop("log_prob_micro_batch_size", None)
        ref.ppo_micro_batch_size_per_gpu = ref.pop("log_prob_micro_batch_size_per_gpu", None)
        ref.use_dynamic_bsz = ref.pop("log_prob_use_dynamic_bsz", False)
        ref.ppo_max_token_len_per_gpu = ref.pop("log_prob_max_token_len_per_gpu", None)
    assert omega_conf_to_dataclass(ref).engine.forward_only is True


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_plugin_section_is_complete_and_typed(name, composed):
    from videoseg_o3_verl.env import EnvConfig

    # the section as composed (demo_rl takes its env block from demo_env.yaml through its defaults list)
    raw = OmegaConf.to_container(composed[name].videoseg_o3, resolve=False)
    # every dataclass field is spelled out in the recipe (env is a dict of EnvConfig overrides)
    typed_keys = set(_flatten(OmegaConf.to_container(OmegaConf.structured(VideoSegO3Config))))
    recipe_keys = {"env" if k.startswith("env.") else k for k in _flatten(raw)}
    assert recipe_keys == typed_keys
    assert set(raw["env"]) <= {f.name for f in dataclasses.fields(EnvConfig)}
    EnvConfig.train(**raw["env"])  # valid overrides
    assert isinstance(load_videoseg_config(composed[name]), VideoSegO3Config)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_names_plugin_components(name, composed):
    cfg = composed[name]
    table = [
        ("actor_rollout_ref.model.model_type", "videoseg_o3_seg_lm"),
        ("actor_rollout_ref.model.external_lib", "videoseg_o3_verl.register"),
        ("actor_rollout_ref.model.use_fused_kernels", False),  # the seg head reads the lm_head input
        ("actor_rollout_ref.rollout.agent.default_agent_loop", "videoseg_o3"),
        ("trainer.use_v1", True),
        ("trainer.v1.trainer_mode", "videoseg_o3_sync"),
        ("data.return_raw_chat", True),
        ("data.filter_overlong_prompts", False),
        ("algorithm.adv_estimator", "grpo"),
        ("algorithm.use_kl_in_reward", False),
        ("actor_rollout_ref.actor.loss_agg_mode", "seq-mean-token-mean"),  # docs/method.md §6.3
        ("reward.custom_reward_function.path", "pkg://videoseg_o3_verl.verl_ext.reward_fn"),
        ("reward.custom_reward_function.name", "compute_score"),
        ("reward.custom_reward_function.reward_kwargs.parity", cfg.videoseg_o3.rewards.parity),
    ]
    for key, expected in table:
        assert OmegaConf.select(cfg, key) == expected, key


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_reward_function_loads_as_verl_loads_it(name, composed):
    from verl.utils.import_utils import load_extern_object

    from videoseg_o3_verl.verl_ext.reward_fn import compute_score

    fn_cfg = composed[name].reward.custom_reward_function
    assert load_extern_object(module_path=fn_cfg.path, object_name=fn_cfg.name) is compute_score


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_engine_receives_plugin_section(name, composed):
    # the seg-head engine only sees the model config: the section travels as JSON in override_config.videoseg_o3
    cfg = composed[name]
    raw = OmegaConf.to_container(cfg.actor_rollout_ref.model.override_config, resolve=False)
    assert raw["videoseg_o3"] == "${videoseg_json:${videoseg_o3}}"
    payload = json.loads(cfg.actor_rollout_ref.model.override_config.videoseg_o3)
    assert payload == OmegaConf.to_container(cfg.videoseg_o3, resolve=True)
    assert load_videoseg_config({"videoseg_o3": payload}) == load_videoseg_config(cfg)


@pytest.mark.parametrize("name", DOCUMENTED_RECIPES)
def test_recipe_every_key_has_comment_above(name):
    # STYLE.md convention 3: a comment line directly above every leaf key (hydra/defaults boilerplate excepted)
    lines = recipe_path(name).read_text().splitlines()
    key_re = re.compile(r"^(\s*)([A-Za-z_][\w.]*):\s*(.*)$")
    uncommented, top = [], None
    for i, line in enumerate(lines):
        match = key_re.match(line)
        if not match:
            continue
        indent, key, value = match.groups()
        if not indent:
            top = key
        if top in ("hydra", "defaults"):
            continue
        following = next((x for x in lines[i + 1:] if x.strip()), "")
        is_leaf = bool(value) or following.lstrip().startswith("- ")
        if is_leaf and not lines[i - 1].lstrip().startswith("#"):
            uncommented.append(f"line {i + 1}: {key}")
    assert uncommented == []


def test_recipe_unfilled_placeholder_stays_missing():
    cfg = compose_recipe("qwen3vl_2b", [])
    # wanted: the unfilled model path and data files are reported missing, not replaced by verl's gsm8k defaults
    assert {"actor_rollout_ref.model.path", "data.train_files"} <= OmegaConf.missing_keys(cfg)


# --------------------------------------------------------------------------------------------------- tiny_cpu


def test_tiny_cpu_handles_cpu_traps_and_demo_sizes(composed):
    cfg = composed["tiny_cpu"]
    table = [
        ("trainer.device", "cpu"),
        ("actor_rollout_ref.rollout.name", "hf"),
        ("actor_rollout_ref.model.override_config.attn_implementation", "sdpa"),
        ("actor_rollout_ref.rollout.engine_kwargs.hf.attn_implementation", "sdpa"),
        ("actor_rollout_ref.model.use_remove_padding", False),  # verl's Qwen-VL rmpad patch needs flash-attn
        ("actor_rollout_ref.actor.use_torch_compile", False),
        ("actor_rollout_ref.actor.fsdp_config.use_torch_compile", False),
        ("actor_rollout_ref.ref.fsdp_config.use_torch_compile", False),
        ("actor_rollout_ref.actor.strategy", "fsdp2"),
        ("actor_rollout_ref.actor.fsdp_config.dtype", "float32"),
        ("actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype", "fp32"),
        ("actor_rollout_ref.ref.fsdp_config.mixed_precision.param_dtype", "fp32"),
        ("transfer_queue.backend.SimpleStorage.num_data_storage_units", 1),
        ("trainer.v1.sampler.sampler_kwargs.poll_interval", 0.05),  # verl's 2 s wait would dominate a step
        ("ray_kwargs.ray_init.include_dashboard", False),
        ("ray_kwargs.ray_init._system_config.prestart_worker_first_driver", False),
        ("ray_kwargs.ray_init.num_cpus", 16),
        ("ray_kwargs.ray_init.num_gpus", 1),
        ("data.dataloader_num_workers", 0),
        ("actor_rollout_ref.rollout.n", 2),
        ("data.train_batch_size", 2),
        ("actor_rollout_ref.actor.ppo_mini_batch_size", 2),
        ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", 4),
        ("actor_rollout_ref.actor.optim.lr", 1e-4),
        ("actor_rollout_ref.actor.use_kl_loss", True),
        ("actor_rollout_ref.actor.kl_loss_coef", 0.04),
        ("actor_rollout_ref.actor.kl_loss_type", "low_var_kl"),
        ("trainer.total_training_steps", 3),
        ("data.max_prompt_length", 1024),
        ("data.max_response_length", 1024),
        ("actor_rollout_ref.rollout.prompt_length", 1024),  # interpolated from data.*
        ("actor_rollout_ref.rollout.response_length", 1024),
        ("actor_rollout_ref.rollout.temperature", 1.0),
        ("videoseg_o3.env.max_new_tokens", 96),
        ("videoseg_o3.calibration.enabled", True),
        ("videoseg_o3.aux_loss.ratio", 0.2),
    ]
    for key, expected in table:
        assert OmegaConf.select(cfg, key) == expected, key
    # 2 prompts x 2 samples = 4 trajectories, all in one mini-batch (one optimizer step per rollout batch)
    assert cfg.data.train_batch_size * cfg.actor_rollout_ref.rollout.n == 4
    assert list(load_videoseg_config(cfg).rewards.terms) == list(PAPER_REWARD_TERMS)


# ---------------------------------------------------------------------------------------------------- demo_rl


def test_demo_rl_uses_demo_env_and_starts_from_sft(composed):
    from videoseg_o3_verl.env import load_env_overrides

    cfg = composed["demo_rl"]
    # the same environment constants as the demo's VTS-CoT, SFT and evaluation: one file, through the defaults list
    assert OmegaConf.to_container(cfg.videoseg_o3.env) == load_env_overrides(REPO / "recipes" / "demo_env.yaml")
    # the tiny policy reads frame numbers from "Frame k: " labels (measured: the cold start leaves its plateau sooner)
    assert cfg.videoseg_o3.env.frame_labels is True
    # policy and seg head both come from the SFT checkpoint: neither may be left to a default
    raw = _raw_recipe("demo_rl")
    assert raw["actor_rollout_ref"]["model"]["path"] == "???"
    assert raw["videoseg_o3"]["seg_head"]["path"] == "???"
    # nothing scripted: no scripted-replies file for any rollout backend
    assert "scripted_responses" not in OmegaConf.to_container(cfg.actor_rollout_ref.rollout.engine_kwargs.hf)


def test_demo_rl_trains_the_full_method_and_exports_once(composed):
    cfg = composed["demo_rl"]
    table = [
        ("trainer.device", "cpu"),
        ("actor_rollout_ref.rollout.name", "hf"),
        ("algorithm.adv_estimator", "grpo"),
        ("videoseg_o3.calibration.enabled", True),
        ("videoseg_o3.aux_loss.ratio", 0.2),
        ("trainer.val_before_train", False),
        ("trainer.test_freq", -1),
        ("trainer.v1.sampler.sampler_kwargs.poll_interval", 0.05),
        ("ray_kwargs.ray_init.include_dashboard", False),
        ("ray_kwargs.ray_init._system_config.prestart_worker_first_driver", False),
        # measured (docs/learning_demo.md, tenth round): at 1e-4 for 12 steps the greedy policy's "Step 3:" flipped
        # into a frame number in 8 runs of 10; at 5e-5 for 24 steps in none of 4
        ("actor_rollout_ref.actor.optim.lr", 5e-5),
        ("trainer.total_training_steps", 24),
    ]
    for key, expected in table:
        assert OmegaConf.select(cfg, key) == expected, key
    assert list(load_videoseg_config(cfg).rewards.terms) == list(PAPER_REWARD_TERMS)
    # one checkpoint, after the last step, with the HF policy folder (+ seg_head/) that videoseg-o3 eval reads
    assert cfg.trainer.save_freq == cfg.trainer.total_training_steps
    assert "hf_model" in cfg.actor_rollout_ref.actor.checkpoint.save_contents
    # one optimizer step per rollout batch: the PPO ratio is 1, as in the paper
    assert cfg.actor_rollout_ref.actor.ppo_mini_batch_size == cfg.data.train_batch_size
    assert cfg.actor_rollout_ref.actor.ppo_epochs == 1
    # a group of at least 2 samples per prompt (GRPO), each at most 3 turns of <= 96 tokens
    assert cfg.actor_rollout_ref.rollout.n >= 2
    assert cfg.videoseg_o3.env.max_turns == 3 and cfg.videoseg_o3.env.max_new_tokens == 96
    # the frame-feature cache holds a whole step's distinct frames (prompts x 8 frames), so the update pass reuses
    # the old-log-prob pass's SAM2 encodings
    assert cfg.videoseg_o3.seg_head.frame_cache_size >= cfg.data.train_batch_size * 8


# ------------------------------------------------------------------------------ GPU recipes (docs/method.md §7)


@pytest.mark.parametrize("name", GPU_RECIPES)
def test_gpu_recipe_matches_spec_section6(name, composed):
    from videoseg_o3_verl.env import EnvConfig

    cfg = composed[name]
    table = [
        ("actor_rollout_ref.actor.optim.lr", 3e-6),
        ("actor_rollout_ref.actor.optim.lr_warmup_steps_ratio", 0.0),  # no warmup
        ("actor_rollout_ref.actor.optim.min_lr_ratio", 0.0),  # decays to 0
        ("actor_rollout_ref.actor.optim.weight_decay", 0.0),
        ("actor_rollout_ref.actor.optim.clip_grad", 1.0),
        ("actor_rollout_ref.actor.optim.betas", [0.9, 0.999]),
        ("actor_rollout_ref.rollout.n", 4),  # G
        ("data.train_batch_size", 16),  # prompts per optimizer step
        ("actor_rollout_ref.actor.ppo_mini_batch_size", 16),  # one update per rollout batch
        ("actor_rollout_ref.actor.ppo_epochs", 1),
        ("videoseg_o3.env.max_turns", 3),
        ("videoseg_o3.env.max_new_tokens", 512),
        ("actor_rollout_ref.rollout.temperature", 0.9),
        ("actor_rollout_ref.rollout.top_p", 0.9),
        ("actor_rollout_ref.actor.use_kl_loss", True),
        ("actor_rollout_ref.actor.kl_loss_coef", 0.04),  # beta
        ("actor_rollout_ref.actor.kl_loss_type", "low_var_kl"),  # k3
        ("algorithm.use_kl_in_reward", False),
        ("algorithm.norm_adv_by_std_in_grpo", True),
        ("actor_rollout_ref.actor.entropy_coeff", 0),
        ("videoseg_o3.calibration.enabled", True),  # use_mask_logps
        ("videoseg_o3.calibration.weight", 1.0),
        ("videoseg_o3.calibration.grid", 32),
        ("videoseg_o3.calibration.threshold", 0.5),
        ("videoseg_o3.aux_loss.ratio", 0.2),  # res_loss_ratio
        ("videoseg_o3.aux_loss.pooling", "released"),  # pooled over the micro-batch, last [SEG] per turn
        ("videoseg_o3.logprob_temperature", 1.0),  # log_softmax(logits) for actor and reference
        ("actor_rollout_ref.actor.optim.lr_scheduler_type", "linear"),  # HF Trainer's linear decay
        ("trainer.total_training_steps", 1000),
        ("trainer.save_freq", 1000),
        ("actor_rollout_ref.rollout.name", "vllm"),
        ("videoseg_o3.sam2.config", "sam2_hiera_l"),  # released grounding encoder: SAM2 v1 Hiera-L
        ("actor_rollout_ref.model.enable_gradient_checkpointing", True),
        ("actor_rollout_ref.model.use_remove_padding", True),
        ("actor_rollout_ref.model.override_config.attn_implementation", "flash_attention_2"),
        ("actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype", "bf16"),
        ("actor_rollout_ref.actor.freeze_vision_tower", False),  # full fine-tuning (docs/method.md §1)
        ("trainer.n_gpus_per_node", 8),
        ("trainer.nnodes", 1),
        # released behaviour (issue: training that matches the released run)
        ("videoseg_o3.processor.min_pixels", 3136),  # the released trainer's image-processor bounds
        ("videoseg_o3.processor.max_pixels", 200704),
        ("videoseg_o3.env.patch_factor", 28),  # first-turn snap factor of the released data code
        ("videoseg_o3.env.parser_parity", True),  # missing VTG key -> 0, as the released RL parser
        ("actor_rollout_ref.rollout.top_k", 50),  # HF generate's default in the released rollout
    ]
    for key, expected in table:
        assert OmegaConf.select(cfg, key) == expected, key
    # 16 prompts x 4 samples = 64 trajectories per optimizer step (docs/method.md §7)
    assert cfg.data.train_batch_size * cfg.actor_rollout_ref.rollout.n == 64
    rewards = load_videoseg_config(cfg).rewards
    assert list(rewards.terms) == list(PAPER_REWARD_TERMS) and len(rewards.terms) == 7
    assert rewards.weights is None  # = weight 1 each
    assert rewards.jf.enabled is False  # not a paper term
    # vLLM must hold prompt + response; the rollout lengths follow data.*
    rollout = cfg.actor_rollout_ref.rollout
    assert rollout.max_model_len == rollout.prompt_length + rollout.response_length == 2048 + 4096
    # a response holds 3 turns x 512 generated tokens + 2 observations (~540 tokens each, recipe header)
    assert rollout.response_length >= 3 * 512 + 2 * 540
    # vLLM accepts every image of a full trajectory: 10 + 5 initial frames + 2 selects x (5 + 1) = 27
    env = EnvConfig.train(**OmegaConf.to_container(cfg.videoseg_o3.env))
    most_images = env.num_low_res + env.num_high_res + (env.max_turns - 1) * (env.max_frames_per_round + 1)
    assert rollout.limit_images == most_images == 27


@pytest.mark.parametrize("name", GPU_RECIPES)
def test_gpu_recipe_lr_schedule_decays_linearly_from_peak_to_zero(name, composed):
    # the released HF Trainer's linear schedule, no warm-up: lr_k = 3e-6 x (T - k) / T over T = 1000 steps ->
    # k = 0: 3e-6, k = 500: 1.5e-6, k = 999: 3e-9; built by the seg-head engine from verl's optimizer config
    from types import SimpleNamespace

    import torch
    from verl.utils.config import omega_conf_to_dataclass

    from videoseg_o3_verl.verl_ext.engine import VideoSegO3FSDPEngine

    cfg = copy.deepcopy(composed[name].actor_rollout_ref.actor.optim)
    cfg.total_training_steps = composed[name].trainer.total_training_steps  # as verl's trainer fills it in
    optim_cfg = omega_conf_to_dataclass(cfg)
    assert optim_cfg.lr_scheduler_type == "linear"
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=optim_cfg.lr)
    engine = SimpleNamespace(optimizer_config=optim_cfg, rank=0)
    schedule = VideoSegO3FSDPEngine._build_lr_scheduler(engine, optimizer)
    factors = [schedule.lr_lambdas[0](step) for step in (0, 500, 999)]
    assert factors == pytest.approx([1.0, 0.5, 0.001], abs=1e-12)


@pytest.mark.parametrize("nnodes", [1, 2])
def test_gpu_recipes_valid_on_paper_layouts(nnodes):
    # 1 x 8 GPUs (train_rl.sh) and 2 x 8 GPUs (paper scale): 64 trajectories divide by 8 and by 16
    from verl.utils.config import validate_config

    for name in GPU_RECIPES:
        cfg = compose_recipe(name, _overrides(name, [f"trainer.nnodes={nnodes}"]))
        validate_config(cfg, use_reference_policy=True, use_critic=False)
        per_gpu = cfg.data.train_batch_size * cfg.actor_rollout_ref.rollout.n // (8 * nnodes)
        assert per_gpu % cfg.actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu == 0


def test_gpu_recipes_differ_only_in_size_dependent_keys(composed):
    flat_2b = _flatten(OmegaConf.to_container(composed["qwen3vl_2b"], resolve=True))
    flat_4b = _flatten(OmegaConf.to_container(composed["qwen3vl_4b"], resolve=True))
    assert flat_2b.keys() == flat_4b.keys()
    differing = {k for k in flat_2b if flat_2b[k] != flat_4b[k]}
    assert differing == {
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",  # 4 (2B) vs 2 (4B)
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu",
        "trainer.experiment_name",
        "actor_rollout_ref.rollout.trace.experiment_name",  # interpolates trainer.experiment_name
        "trainer.default_local_dir",  # checkpoints/${project_name}/${experiment_name}
    }


# --------------------------------------------------------------------------------------------------------- CLI


def test_cli_cfg_job_prints_resolved_recipe_without_training():
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "videoseg_o3_verl", "train", "--config-name", "qwen3vl_2b",
                           "trainer.nnodes=2", "--cfg", "job"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert elapsed < 60
    assert "trainer_mode: videoseg_o3_sync" in proc.stdout
    printed = OmegaConf.create(proc.stdout)  # the whole stdout is the YAML of the composed config
    assert printed.trainer.nnodes == 2  # the override was applied
    assert printed.actor_rollout_ref.rollout.n == 4
    assert "Training Progress" not in proc.stdout + proc.stderr  # verl's step progress bar never appeared


# ----------------------------------------------------------------------------------------------- launch script


LAUNCH = REPO / "recipes" / "launch" / "ray_cluster.sh"


def test_launch_script_syntax_and_strict_mode():
    assert subprocess.run(["bash", "-n", str(LAUNCH)], capture_output=True).returncode == 0
    assert "set -euo pipefail" in LAUNCH.read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Usage:"),  # no command: usage on stderr
        (["submit"], "--nnodes N is required"),
        (["submit", "--nnodes", "0"], "--nnodes must be a positive integer"),
        (["submit", "--nnodes"], "--nnodes needs a value"),
        (["worker", "--num-gpus", "8"], "--address HEAD_IP:PORT is required"),
        (["worker", "--address", "node0"], "must be HEAD_IP:PORT"),
        (["frob"], "unknown command 'frob'"),
    ],
)
def test_launch_script_rejects_bad_arguments(args, message):
    proc = subprocess.run(["bash", str(LAUNCH), *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_launch_script_submit_forwards_env_and_nnodes(tmp_path):
    # a stand-in `ray` records its arguments; everything else (plugin check, recipe check) is real
    fake_ray = tmp_path / "ray"
    fake_ray.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/ray_args\n')
    fake_ray.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "VERL_USE_EXTERNAL_PLUGINS"}
    env["PATH"] = f"{tmp_path}:{Path(sys.executable).parent}:{env['PATH']}"
    env["PYTHON"] = sys.executable
    proc = subprocess.run(["bash", str(LAUNCH), "submit", "--nnodes", "2", "--env", "NCCL_SOCKET_IFNAME=eth0",
                           "--", "trainer.total_training_steps=7"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    args = (tmp_path / "ray_args").read_text().splitlines()
    assert args[:2] == ["job", "submit"]
    runtime_env = next(a for a in args if a.startswith("--runtime-env-json="))
    env_vars = json.loads(runtime_env.split("=", 1)[1])["env_vars"]
    assert env_vars["FORCE_QWENVL_VIDEO_READER"] == "decord"
    assert env_vars["NCCL_SOCKET_IFNAME"] == "eth0"
    entry = args[args.index("--") + 1:]
    assert entry == ["videoseg-o3", "train", "--config-name", "qwen3vl_2b", "trainer.nnodes=2",
                     "trainer.n_gpus_per_node=8", "trainer.total_training_steps=7"]


def _fake_ray_env(tmp_path, **extra) -> dict:
    """PATH with a stand-in ``ray`` that records its arguments (the plugin check stays real)."""
    fake_ray = tmp_path / "ray"
    fake_ray.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/ray_args\n')
    fake_ray.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_USE_EXTERNAL_PLUGINS", "RAY_AUTH_MODE")}
    env["PATH"] = f"{tmp_path}:{Path(sys.executable).parent}:{env['PATH']}"
    env["PYTHON"] = sys.executable
    env.update(extra)
    return env


def test_launch_script_head_binds_dashboard_to_loopback_by_default(tmp_path):
    proc = subprocess.run(["bash", str(LAUNCH), "head", "--num-gpus", "1"], capture_output=True, text=True,
                          timeout=120, env=_fake_ray_env(tmp_path), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    args = (tmp_path / "ray_args").read_text().splitlines()
    assert args[:2] == ["start", "--head"]
    assert "--dashboard-host=127.0.0.1" in args
    assert not any("0.0.0.0" in a for a in args)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3"])
def test_launch_script_head_refuses_exposed_dashboard_without_token_auth(tmp_path, host):
    proc = subprocess.run(["bash", str(LAUNCH), "head", "--num-gpus", "1", "--dashboard-host", host],
                          capture_output=True, text=True, timeout=60, env=_fake_ray_env(tmp_path), cwd=REPO)
    assert proc.returncode == 2
    assert "RAY_AUTH_MODE=token" in proc.stderr and "--insecure-dashboard" in proc.stderr
    assert not (tmp_path / "ray_args").exists()  # Ray was never started


@pytest.mark.parametrize("opt_in, env_extra", [(["--insecure-dashboard"], {}), ([], {"RAY_AUTH_MODE": "token"})])
def test_launch_script_head_exposes_dashboard_only_with_opt_in(tmp_path, opt_in, env_extra):
    proc = subprocess.run(["bash", str(LAUNCH), "head", "--num-gpus", "1", "--dashboard-host", "0.0.0.0", *opt_in],
                          capture_output=True, text=True, timeout=120, env=_fake_ray_env(tmp_path, **env_extra),
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--dashboard-host=0.0.0.0" in (tmp_path / "ray_args").read_text().splitlines()
    assert ("without authentication" in proc.stderr) == bool(opt_in)
