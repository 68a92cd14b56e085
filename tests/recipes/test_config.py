# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`load_videoseg_config` + `VideoSegO3Config.validate` on the composed tiny_cpu recipe.

A valid config (real files in tmp_path) passes; each broken variant fails with a message naming the key to fix.
Composes YAML only (no Ray, no model); ~10 s on 2 cores.
"""

from __future__ import annotations

import pytest
from omegaconf.errors import MissingMandatoryValue

from videoseg_o3_verl.config import VideoSegO3Config, load_videoseg_config
from videoseg_o3_verl.launch import compose_recipe


@pytest.fixture
def files(tmp_path):
    """Real paths for everything tiny_cpu leaves `???` (validate only checks that they exist)."""
    model = tmp_path / "tiny_qwen"
    model.mkdir()
    paths = {"model": model, "sam2": tmp_path / "sam2_tiny.pt", "train": tmp_path / "train.parquet",
             "val": tmp_path / "val.parquet", "seg_head": tmp_path / "seg_head"}
    for key in ("sam2", "train", "val"):
        paths[key].write_bytes(b"")
    paths["seg_head"].mkdir()
    return paths


def _compose(files, *extra: str, drop: tuple[str, ...] = ()):
    overrides = {
        "actor_rollout_ref.model.path": files["model"],
        "videoseg_o3.sam2.checkpoint": files["sam2"],
        "data.train_files": files["train"],
        "data.val_files": files["val"],
    }
    args = [f"{k}={v}" for k, v in overrides.items() if k not in drop]
    return compose_recipe("tiny_cpu", [*args, *extra])


def _validate(cfg) -> None:
    load_videoseg_config(cfg).validate(cfg)


def test_config_valid_tiny_cpu_passes(files):
    cfg = _compose(files, f"videoseg_o3.seg_head.path={files['seg_head']}")
    settings = load_videoseg_config(cfg)
    assert isinstance(settings, VideoSegO3Config)
    assert settings.sam2.checkpoint == str(files["sam2"])
    assert settings.seg_head.path == str(files["seg_head"])
    settings.validate(cfg)  # raises ValueError listing every problem otherwise


@pytest.mark.parametrize(
    "override, key",
    [
        # a SAM2 checkpoint path that does not exist
        ("videoseg_o3.sam2.checkpoint=/nonexistent/sam2.pt", "videoseg_o3.sam2.checkpoint"),
        # a seg-head directory that does not exist
        ("videoseg_o3.seg_head.path=/nonexistent/seg_head", "videoseg_o3.seg_head.path"),
        # missing training / validation parquet
        ("data.train_files=/nonexistent/train.parquet", "data.train_files"),
        ("data.val_files=/nonexistent/val.parquet", "data.val_files"),
        # one of several training files missing
        ("data.train_files=[{train},/nonexistent/more.parquet]", "data.train_files"),
        # a model directory that does not exist
        ("actor_rollout_ref.model.path=/nonexistent/model", "actor_rollout_ref.model.path"),
        # 3 prompts cannot be cut into mini-batches of 2
        ("data.train_batch_size=3", "data.train_batch_size"),
        # the stock engine cannot attach the seg head
        ("actor_rollout_ref.model.model_type=language_model", "actor_rollout_ref.model.model_type"),
        # the stock trainer does not compute the mask rewards
        ("trainer.v1.trainer_mode=sync", "trainer.v1.trainer_mode"),
        # fused kernels hide the hidden states the seg head reads
        ("actor_rollout_ref.model.use_fused_kernels=true", "actor_rollout_ref.model.use_fused_kernels"),
        # GRPO needs a group of at least 2 samples
        ("actor_rollout_ref.rollout.n=1", "actor_rollout_ref.rollout.n"),
        # the agent loop must be the VideoSEG-O3 one
        ("actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent", "default_agent_loop"),
        # an unknown reward term
        ("videoseg_o3.rewards.terms=[strict_format_cot,no_such_term]", "videoseg_o3.rewards.terms"),
        # 1 weight for 7 terms
        ("videoseg_o3.rewards.weights=[1.0]", "videoseg_o3.rewards.weights"),
        # negative loss weight
        ("videoseg_o3.aux_loss.ratio=-0.1", "videoseg_o3.aux_loss.ratio"),
        # empty calibration grid
        ("videoseg_o3.calibration.grid=0", "videoseg_o3.calibration.grid"),
        # a reward-service call that may never time out
        ("videoseg_o3.reward_service.call_timeout_s=0", "videoseg_o3.reward_service.call_timeout_s"),
        # image-processor bounds: non-positive, or min above max
        ("videoseg_o3.processor.min_pixels=0", "videoseg_o3.processor.min_pixels must be >= 1"),
        ("videoseg_o3.processor.max_pixels=1000", "videoseg_o3.processor.min_pixels (3136) must be <="),
        # pixel bounds given to verl directly would bypass the one place that applies them
        ("+data.mm_processor_kwargs.max_pixels=1000", "data.mm_processor_kwargs.max_pixels is set"),
        # more spatial frames than the reward packing's per-turn slots
        ("+videoseg_o3.env.num_high_res=9", "videoseg_o3.env.num_high_res=9"),
        # the parser switch is a bool
        ("+videoseg_o3.env.parser_parity=2", "parser_parity must be a bool"),
        # scripted replies with a backend that would silently ignore them
        ("actor_rollout_ref.rollout.name=vllm +actor_rollout_ref.rollout.engine_kwargs.hf.scripted_responses=s.json",
         "actor_rollout_ref.rollout.engine_kwargs.hf.scripted_responses"),
    ],
)
def test_config_invalid_value_names_key(files, override, key):
    cfg = _compose(files, *override.format(train=files["train"]).split(" "))
    with pytest.raises(ValueError, match="Invalid VideoSEG-O3 configuration") as err:
        _validate(cfg)
    assert key in str(err.value)


def test_config_batch_problem_names_both_sizes(files):
    cfg = _compose(files, "data.train_batch_size=3")
    with pytest.raises(ValueError) as err:
        _validate(cfg)
    # 3 % 2 != 0: the message states both numbers and both keys
    assert "data.train_batch_size (3)" in str(err.value)
    assert "ppo_mini_batch_size (2)" in str(err.value)


def test_config_reports_every_problem_at_once(files):
    cfg = _compose(files, "videoseg_o3.sam2.checkpoint=/nonexistent/sam2.pt", "data.train_files=/nonexistent/t.parquet",
                   "data.train_batch_size=3")
    with pytest.raises(ValueError) as err:
        _validate(cfg)
    problems = [line for line in str(err.value).splitlines() if line.strip().startswith("- ")]
    assert len(problems) == 3  # checkpoint, train file, batch layout: one line each


def test_config_unfilled_sam2_checkpoint_names_key(files):
    # `???` left in place: omegaconf refuses to build the dataclass. The message names the key (without the
    # `videoseg_o3.` prefix; see the report for the suggested ValueError).
    cfg = _compose(files, drop=("videoseg_o3.sam2.checkpoint",))
    with pytest.raises((ValueError, MissingMandatoryValue)) as err:
        _validate(cfg)
    assert "sam2.checkpoint" in str(err.value)


@pytest.mark.parametrize(
    "override, misspelled",
    [
        ("+videoseg_o3.calibraton.enabled=true", "calibraton"),  # section name
        ("+videoseg_o3.calibration.enabeld=true", "enabeld"),  # key inside a section
        ("+videoseg_o3.rewards.jf.enable=true", "enable"),  # nested section
    ],
)
def test_config_misspelled_key_fails_at_load(files, override, misspelled):
    cfg = _compose(files, override)  # `+` adds the key, as a user typo on the command line would
    with pytest.raises(ValueError) as err:
        load_videoseg_config(cfg)
    assert misspelled in str(err.value) and "videoseg_o3." in str(err.value)


def test_config_misspelled_key_without_plus_fails_at_compose(files):
    # without `+` Hydra itself rejects a key the recipe does not define
    with pytest.raises(Exception, match="calibration.enabeld"):
        _compose(files, "videoseg_o3.calibration.enabeld=true")


def test_config_misspelled_env_key_fails_at_validate(files):
    cfg = _compose(files, "+videoseg_o3.env.max_turnz=2")
    with pytest.raises((ValueError, TypeError), match="max_turnz"):
        _validate(cfg)
