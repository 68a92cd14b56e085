# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Typed settings of the ``videoseg_o3:`` section of a recipe (everything verl does not already configure).

Load with :func:`load_videoseg_config` (``OmegaConf.structured`` merge, so a misspelled key fails at start-up);
:meth:`VideoSegO3Config.validate` checks the rules that need the whole trainer config and reports every
problem at once, each naming the key to set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

PAPER_REWARD_TERMS = ("strict_format_cot", "step_format_cot", "lr_vtg_iou_dense", "lr_vtg_keyframe",
                      "lr_maskiou_dense", "lr_keyframe_vs_mask_dense", "lr_progressive_keyframe_dense")
"""The seven reward terms of train_rl.sh (docs/method.md §5), each with weight 1."""

ENGINE_MODEL_TYPE = "videoseg_o3_seg_lm"
"""``actor_rollout_ref.model.model_type`` that selects the seg-head engine."""

TRAINER_MODE = "videoseg_o3_sync"
"""``trainer.v1.trainer_mode`` that selects the VideoSEG-O3 trainer."""


@dataclass
class Sam2Settings:
    """The SAM2 model behind the seg head (and the reward service)."""

    checkpoint: str = MISSING
    """Path of a SAM2 checkpoint (``sam2*_hiera_*.pt`` layout; the tiny one from ``videoseg-o3 build-tiny``)."""
    config: str | None = None
    """SAM2 config (e.g. ``sam2.1_hiera_l``); ``None`` = stored in the checkpoint, else ``sam2.1_hiera_t``."""
    image_size: int | None = None
    """Input resolution override; ``None`` = the checkpoint's (1024 for released models)."""


@dataclass
class SegHeadSettings:
    """The ``[SEG]`` → SAM2 prompt head attached to the policy."""

    path: str | None = None
    """Directory with ``seg_head.safetensors`` (e.g. the cold-start export); ``None`` initialises the
    projection randomly and the prompt encoder/mask decoder from the SAM2 checkpoint."""
    max_segs_per_sample: int = 3
    """Most ``[SEG]`` tokens of a trajectory that get a gradient (calibration and auxiliary loss) in the training
    forward: the first ones in order (released ``MAX_OBJS``). The rewards always score every turn's own [SEG]s."""
    frame_cache_size: int = 64
    """Frozen SAM2 image-encoder features kept per worker (keyed by video and frame)."""
    input_norm: bool = False
    """A fresh head (``path: null``) standardises the [SEG] hidden states with running per-feature statistics before
    ``proj`` (not in the released head; a loaded head keeps what it was saved with, its statistics frozen unless
    ``input_norm_momentum`` moves them). For small randomly initialised policies, whose [SEG] states are nearly one
    shared vector (the learning demo)."""
    input_norm_momentum: float = 0.0
    """Momentum of a loaded head's standardizer statistics in the training forwards (``stat ← (1 - m)·stat +
    m·batch_stat``); 0 keeps the statistics it was saved with. Training moves the policy's [SEG] states, so frozen
    statistics feed the projection shifted inputs; following them helped the learning demo's masks in some RL runs
    and hurt them in others (docs/learning_demo.md). Ignored without a standardizer."""


@dataclass
class CalibrationSettings:
    """SEG-aware logit calibration (docs/method.md §6.2)."""

    enabled: bool = True
    """Add the mask log-likelihood to the ``[SEG]`` token's log-prob (``use_mask_logps``)."""
    grid: int = 32
    """Side of the grid both masks are resized to."""
    threshold: float = 0.5
    """Threshold on the rollout mask *logits* that makes the target mask."""
    weight: float = 1.0
    """Scale of the mask log-prob before injection (the released code uses 1)."""


@dataclass
class AuxLossSettings:
    """Supervised BCE + Dice loss on the seg head's masks (docs/method.md §6.4)."""

    ratio: float = 0.2
    """``res_loss_ratio``: weight of the auxiliary loss in the actor loss (0 disables it)."""
    pooling: str = "per_sample"
    """How the BCE + Dice terms are averaged: ``released`` pools them over the micro-batch (video term: mean over
    every decoded [SEG]; keyframe term: mean over (trajectory, turn) pairs, the turn's LAST [SEG]) as the released
    code; ``per_sample`` averages each trajectory's [SEG]s (all of them for both terms) and then the samples like
    verl's sequence-mean losses."""


TRAINABLE_GROUPS = ("policy", "seg_head.proj", "seg_head.prompt_encoder", "seg_head.mask_decoder")
"""What ``videoseg_o3.trainable_modules`` may name (``policy`` = the whole Qwen-VL); the SAM2 image encoder is never
trained."""

AUX_POOLINGS = ("released", "per_sample")
"""Allowed values of ``videoseg_o3.aux_loss.pooling``."""


@dataclass
class ReportSettings:
    """What the trainer writes for reports besides verl's metrics."""

    samples_dir: str | None = None
    """Directory where the trainer appends the first scored trajectories of every training step (texts, reward
    terms, per-turn IoUs, final keyframe mask) to ``samples.jsonl``, read by the ``videoseg-o3 demo`` HTML report;
    ``None`` (default) writes nothing."""


@dataclass
class DebugSettings:
    """Test-only switches (leave unset in real runs)."""

    dump_dir: str | None = None
    """Directory where each engine worker appends ``engine_<actor|ref>_<pid>.jsonl``: per old-log-prob pass the
    [SEG] targets' plain and calibrated log-probs with the mask log-prob, per update micro-batch the loss metrics
    and the optimizer steps taken so far. Used by the end-to-end tests; ``None`` (default) writes nothing."""


@dataclass
class JFRewardSettings:
    """The optional J&F reward term scored by the SAM2 reward service (propagation from the final keyframe)."""

    enabled: bool = False
    """Add the ``jf`` term (needs the reward service)."""
    weight: float = 1.0
    """Its weight in the summed reward."""
    num_frames: int = 8
    """Frames (uniformly sampled over the video) on which the propagated mask is scored."""


@dataclass
class RewardSettings:
    """Reward composition (docs/method.md §5)."""

    terms: list[str] = field(default_factory=lambda: list(PAPER_REWARD_TERMS))
    """Names of the reward terms (``videoseg_reward.terms`` registry)."""
    weights: list[float] | None = None
    """One weight per term; ``None`` = all 1."""
    parity: bool = True
    """Reproduce the released code's quirks bit for bit (see ``videoseg_reward.terms``)."""
    jf: JFRewardSettings = field(default_factory=JFRewardSettings)
    """The extra J&F term."""


@dataclass
class RewardServiceSettings:
    """Where the J&F term's SAM2 runs."""

    actor_name: str = "videoseg_o3_sam2_service"
    """Name of the Ray actor (created on first use, shared by all callers in the job)."""
    num_gpus: float = 0.0
    """GPUs reserved for the service actor (0 = CPU, or share a GPU fractionally, e.g. 0.2)."""
    call_timeout_s: float = 600.0
    """Time limit in seconds of one call to the service (a step's J&F requests, a decoder-weights push): a hung
    actor raises an error naming the request instead of blocking training forever."""


@dataclass
class ProcessorSettings:
    """Pixel bounds of the policy's image processor, applied alike in the rollout and in the actor and reference
    forward (:func:`videoseg_o3_verl.model.processor.pixel_bounds_kwargs`)."""

    min_pixels: int | None = None
    """Smallest area (px) an image is scaled up to before patching; ``None`` = the checkpoint's (Qwen3-VL's stock
    minimum up-scales the environment's low-resolution frames). The released trainer sets 3,136."""
    max_pixels: int | None = None
    """Largest area (px) an image is scaled down to; ``None`` = the checkpoint's. The released trainer sets 200,704."""


@dataclass
class VideoSegO3Config:
    """The whole ``videoseg_o3:`` section."""

    sam2: Sam2Settings = field(default_factory=Sam2Settings)
    processor: ProcessorSettings = field(default_factory=ProcessorSettings)
    seg_head: SegHeadSettings = field(default_factory=SegHeadSettings)
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    aux_loss: AuxLossSettings = field(default_factory=AuxLossSettings)
    rewards: RewardSettings = field(default_factory=RewardSettings)
    reward_service: RewardServiceSettings = field(default_factory=RewardServiceSettings)
    logprob_temperature: float | None = None
    """Temperature of the actor's and the reference model's log-prob forwards (old log-probs, update, reference;
    the mask log-prob is not affected). ``None`` = verl's behaviour (the rollout temperature); the released code
    uses 1.0 (plain ``log_softmax(logits)``)."""
    report: ReportSettings = field(default_factory=ReportSettings)
    debug: DebugSettings = field(default_factory=DebugSettings)
    env: dict[str, Any] = field(default_factory=dict)
    """Overrides of :class:`videoseg_o3_verl.env.EnvConfig` (e.g. ``max_turns``, ``num_low_res``)."""
    trainable_modules: list[str] = field(default_factory=lambda: ["policy", "seg_head.proj",
                                                                 "seg_head.prompt_encoder", "seg_head.mask_decoder"])
    """What the optimizer updates (docs/method.md §1): the whole policy plus the head's projection, prompt encoder
    and mask
    decoder. The SAM2 image encoder is always frozen (it is not part of the trained module)."""

    def validate(self, trainer_config: DictConfig | None = None) -> None:
        """Check static and run-dependent rules; raise one ``ValueError`` listing every problem."""
        problems = []
        if not self.sam2.checkpoint or self.sam2.checkpoint == MISSING:
            problems.append("videoseg_o3.sam2.checkpoint is required (path of a SAM2 .pt; `videoseg-o3 build-tiny` "
                            "prints a tiny one)")
        elif not os.path.isfile(self.sam2.checkpoint):
            problems.append(f"videoseg_o3.sam2.checkpoint={self.sam2.checkpoint!r} does not exist")
        if self.seg_head.path and not os.path.isdir(self.seg_head.path):
            problems.append(f"videoseg_o3.seg_head.path={self.seg_head.path!r} is not a directory")
        if self.calibration.grid < 1:
            problems.append(f"videoseg_o3.calibration.grid must be >= 1, got {self.calibration.grid}")
        if self.aux_loss.ratio < 0:
            problems.append(f"videoseg_o3.aux_loss.ratio must be >= 0, got {self.aux_loss.ratio}")
        if self.aux_loss.pooling not in AUX_POOLINGS:
            problems.append(f"videoseg_o3.aux_loss.pooling must be one of {list(AUX_POOLINGS)}, got "
                            f"{self.aux_loss.pooling!r}")
        if not 0.0 <= self.seg_head.input_norm_momentum <= 1.0:
            problems.append(f"videoseg_o3.seg_head.input_norm_momentum must be in [0, 1], got "
                            f"{self.seg_head.input_norm_momentum}")
        if self.seg_head.max_segs_per_sample < 1:
            problems.append(f"videoseg_o3.seg_head.max_segs_per_sample must be >= 1, got "
                            f"{self.seg_head.max_segs_per_sample}")
        if not self.reward_service.call_timeout_s > 0:
            problems.append(f"videoseg_o3.reward_service.call_timeout_s must be > 0, got "
                            f"{self.reward_service.call_timeout_s}")
        if self.logprob_temperature is not None and not self.logprob_temperature > 0:
            problems.append(f"videoseg_o3.logprob_temperature must be > 0 or null, got {self.logprob_temperature}")
        try:
            from .env import EnvConfig

            env = EnvConfig.train(**dict(self.env or {}))
        except (TypeError, ValueError) as err:
            problems.append(f"videoseg_o3.env: {err} (keys must be fields of videoseg_o3_verl.env.EnvConfig)")
        else:
            from .verl_ext.rewarding import frame_slot_problems

            problems.extend(frame_slot_problems(env))
        problems.extend(_processor_problems(self.processor))
        unknown = sorted(set(self.trainable_modules) - set(TRAINABLE_GROUPS))
        if unknown:
            problems.append(f"videoseg_o3.trainable_modules: unknown entries {unknown}; "
                            f"allowed: {list(TRAINABLE_GROUPS)}")
        if self.rewards.weights is not None and len(self.rewards.weights) != len(self.rewards.terms):
            problems.append(f"videoseg_o3.rewards.weights has {len(self.rewards.weights)} entries for "
                            f"{len(self.rewards.terms)} terms")
        try:
            from videoseg_reward.terms import get_term_fn

            for name in self.rewards.terms:
                get_term_fn(name)
        except (ValueError, KeyError) as err:
            problems.append(f"videoseg_o3.rewards.terms: {err}")
        if trainer_config is not None:
            problems.extend(_trainer_problems(trainer_config))
        if problems:
            raise ValueError("Invalid VideoSEG-O3 configuration:\n  - " + "\n  - ".join(problems))


def _processor_problems(settings: ProcessorSettings) -> list[str]:
    problems = []
    for key in ("min_pixels", "max_pixels"):
        value = getattr(settings, key)
        if value is not None and value < 1:
            problems.append(f"videoseg_o3.processor.{key} must be >= 1 or null, got {value}")
    low, high = settings.min_pixels, settings.max_pixels
    if low is not None and high is not None and low > high:
        problems.append(f"videoseg_o3.processor.min_pixels ({low}) must be <= videoseg_o3.processor.max_pixels "
                        f"({high})")
    return problems


def _trainer_problems(cfg: DictConfig) -> list[str]:
    problems = []
    arr = cfg.actor_rollout_ref
    for key in ("data.train_files", "data.val_files", "actor_rollout_ref.model.path"):
        parent, leaf = key.rsplit(".", 1)
        if OmegaConf.is_missing(OmegaConf.select(cfg, parent), leaf):
            problems.append(f"{key} is required (the recipe marks it ???)")
    for key in ("train_files", "val_files"):
        if OmegaConf.is_missing(cfg.data, key):
            continue
        path = cfg.data.get(key)
        files = [path] if isinstance(path, str) else list(path or [])
        for f in files:
            if isinstance(f, str) and "://" not in f and not os.path.exists(f):
                problems.append(f"data.{key}: {f!r} does not exist")
    model_path = None if OmegaConf.is_missing(arr.model, "path") else arr.model.get("path")
    if isinstance(model_path, str) and "://" not in model_path and not os.path.isdir(model_path) \
            and (os.path.isabs(model_path) or model_path.startswith(".")):
        problems.append(f"actor_rollout_ref.model.path={model_path!r} is not a directory")
    if arr.model.get("model_type") != ENGINE_MODEL_TYPE:
        problems.append(f"actor_rollout_ref.model.model_type must be {ENGINE_MODEL_TYPE!r} (the seg-head engine), "
                        f"got {arr.model.get('model_type')!r}")
    if arr.model.get("use_fused_kernels"):
        problems.append("actor_rollout_ref.model.use_fused_kernels must be false (hidden states are read before "
                        "lm_head)")
    if cfg.trainer.get("v1", {}).get("trainer_mode") != TRAINER_MODE:
        problems.append(f"trainer.v1.trainer_mode must be {TRAINER_MODE!r}")
    if cfg.algorithm.get("rollout_correction", {}).get("bypass_mode", False):
        problems.append("algorithm.rollout_correction.bypass_mode must be false: the calibrated old log-probs come "
                        "from the actor forward")
    problems.extend(_lr_scheduler_problems(arr.actor.get("optim") or {}))
    n = int(arr.rollout.n)
    batch = int(cfg.data.train_batch_size)
    mini = int(arr.actor.ppo_mini_batch_size)
    if batch % mini != 0:
        problems.append(f"data.train_batch_size ({batch}) must be a multiple of actor.ppo_mini_batch_size ({mini})")
    if n < 2 and cfg.algorithm.adv_estimator == "grpo":
        problems.append(f"actor_rollout_ref.rollout.n must be >= 2 for GRPO (got {n})")
    data_kwargs = cfg.data.get("mm_processor_kwargs") or {}
    for key in ("min_pixels", "max_pixels"):
        if data_kwargs.get(key) is not None:
            problems.append(f"data.mm_processor_kwargs.{key} is set; set videoseg_o3.processor.{key} instead (the "
                            "agent loop applies it to the rollout and the actor/reference forward alike)")
    if arr.rollout.agent.get("default_agent_loop") not in ("videoseg_o3", "videoseg_o3_eval"):
        problems.append("actor_rollout_ref.rollout.agent.default_agent_loop should be 'videoseg_o3'")
    try:
        from .backends.cpu.scripted import check_scripted_rollout

        check_scripted_rollout(arr.rollout)
    except ValueError as err:
        problems.append(str(err))
    return problems


def _lr_scheduler_problems(optim) -> list[str]:
    from .verl_ext.lr_schedule import LR_SCHEDULER_TYPES, OPTIMIZER_CONFIG_TARGET

    kind = optim.get("lr_scheduler_type", "constant")
    if kind not in LR_SCHEDULER_TYPES:
        return [f"actor_rollout_ref.actor.optim.lr_scheduler_type must be one of {list(LR_SCHEDULER_TYPES)}, "
                f"got {kind!r}"]
    if kind == "linear" and optim.get("_target_") != OPTIMIZER_CONFIG_TARGET:
        return [f"actor_rollout_ref.actor.optim.lr_scheduler_type=linear needs "
                f"actor_rollout_ref.actor.optim._target_={OPTIMIZER_CONFIG_TARGET} (verl's own optimizer config "
                f"accepts constant/cosine only)"]
    return []


def load_videoseg_config(trainer_config: DictConfig | dict | None) -> VideoSegO3Config:
    """Merge the ``videoseg_o3`` section of a trainer config onto the typed defaults.

    Unknown keys, wrong types and unset required values raise ``ValueError`` naming ``videoseg_o3.<key>``. A missing
    ``sam2.checkpoint`` is left for :meth:`VideoSegO3Config.validate`, which reports it with the other problems.
    """
    from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError

    section = None
    if trainer_config is not None:
        section = trainer_config.get("videoseg_o3", None)
        if isinstance(section, DictConfig):  # resolve interpolations against the whole config first
            section = OmegaConf.create(OmegaConf.to_container(section, resolve=True, throw_on_missing=False))
    base = OmegaConf.structured(VideoSegO3Config)
    try:
        merged = OmegaConf.merge(base, section) if section is not None else base
        if OmegaConf.is_missing(merged.sam2, "checkpoint"):
            merged.sam2.checkpoint = ""
        return OmegaConf.to_object(merged)
    except (ConfigKeyError, MissingMandatoryValue, ValidationError) as err:
        key = getattr(err, "full_key", None) or ""
        raise ValueError(f"[videoseg_o3.{key}] {err.msg if hasattr(err, 'msg') else err}") from err
