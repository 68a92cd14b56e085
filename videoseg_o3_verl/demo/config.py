# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The settings of the learning demo (``videoseg-o3 demo``): sizes of each stage, seeds, recipes, tiny models."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

HELDOUT_SEED_OFFSET = 1_000_003
"""Added to the demo seed for the held-out videos (a disjoint generator seed: videos never seen in training)."""


@dataclass(frozen=True)
class DemoConfig:
    """One learning-demo run: synthetic RVOS → VTS-CoT → SFT → seg head → RL → eval of three policies → report."""

    output_dir: str = "demo_output"
    """Where everything goes: data, checkpoints, ``logs/<stage>.log``, ``summary.json``, ``report.html``."""
    seed: int = 0
    """Seed of the training videos, the VTS-CoT phrasing and both trainers; held-out videos use
    ``seed + HELDOUT_SEED_OFFSET``."""
    n_train: int = 200
    """Synthetic training videos (3 expressions each; SFT and RL draw from them; 200 keep every frame in the SFT
    frame cache)."""
    n_eval: int = 300
    """Held-out samples each policy is evaluated on."""
    sft_steps: int | None = None
    """Optimizer steps of the cold-start SFT; None: the SFT recipe's ``trainer.total_training_steps``."""
    head_steps: int = 500
    """Optimizer steps of the cold start's last part: a new seg head trained alone on the frozen SFT policy (same
    trajectories, same mask loss, ``videoseg_o3.trainable_modules`` without ``policy``); 0 skips it. Not in the
    released recipe: on the shared-window task the head trained with the policy often ends the cold start predicting
    nothing, while a new head on the frozen policy leaves the empty-mask plateau at step ~160-250
    (docs/learning_demo.md, ninth round)."""
    rl_steps: int | None = None
    """Training steps of the VideoSEG-O3 RL run; None: the RL recipe's ``trainer.total_training_steps``."""
    data_preset: str = "grounding_shared"
    """Synthetic data preset (``videoseg-o3 synthetic --preset``): the three objects of a video share one 2-frame
    window, so every frame with the target shows the two distractors beside it."""
    think_style: str = "grounded"
    """VTS-CoT reasoning template (``videoseg-o3 vts-cot --think-style``): the compact trace whose step 3 names the
    query, just before the answer's [SEG]."""
    max_selects: int = 1
    """Most ``<select>`` turns of a VTS-CoT trajectory (``videoseg-o3 vts-cot --max-selects``)."""
    env_recipe: str = "demo_env"
    """Environment constants shared by VTS-CoT, SFT, RL and eval (``recipes/<name>.yaml``, ``--env-file``)."""
    sft_recipe: str = "demo_coldstart"
    """SFT recipe (``recipes/<name>.yaml``)."""
    rl_recipe: str = "demo_rl"
    """RL recipe (``recipes/<name>.yaml``)."""
    eval_recipe: str = "eval_demo"
    """Eval recipe (``recipes/<name>.yaml``): the training observations with the demo's environment constants."""
    model_hidden_size: int = 128
    """Text hidden size of the tiny random Qwen2.5-VL."""
    model_layers: int = 2
    """Decoder layers of the tiny random Qwen2.5-VL."""
    sam2_image_size: int = 128
    """Input size of the tiny random SAM2 (the demo's frames are 56 px)."""
    sam2_small_trunk: bool = True
    """The tiny SAM2 with a 0.3 M-parameter image-encoder trunk instead of Hiera-T's 27 M (frame encoding ~10x
    cheaper; every training video is then new to the frame cache)."""
    sam2_width: int = 64
    """C of the tiny SAM2's neck, prompt encoder, mask decoder and memory modules (256 in the released configs): at
    64 the seg head has 0.8 M parameters instead of 4.3 M and a cold-start SFT step costs ~20 % less."""
    report_videos: int = 4
    """Held-out samples whose SFT and RL trajectories the report shows side by side."""
    threads: int | None = None
    """Torch threads (``OMP_NUM_THREADS``) of the one-process stages, SFT, seg-head and eval; None: every core. The RL
    stage keeps the environment's setting (``scripts/cpu_env.sh``: 1), since Ray's workers share the cores."""

    def stage_threads(self) -> int:
        """:attr:`threads`, or the number of cores when it is None."""
        return self.threads if self.threads is not None else max(1, os.cpu_count() or 1)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            optional = f.type == "int | None" and value is None
            if f.type in ("int", "int | None") and not optional and (not isinstance(value, int)
                                                                     or isinstance(value, bool)):
                raise TypeError(f"[demo] {f.name} must be an integer, got {value!r}")
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise ValueError(f"[demo] output_dir must be a non-empty path, got {self.output_dir!r}")
        for key in ("n_train", "n_eval", "sft_steps", "rl_steps", "model_hidden_size", "model_layers",
                    "sam2_image_size", "sam2_width", "threads"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"[demo] {key} must be >= 1, got {getattr(self, key)}")
        for key in ("seed", "head_steps"):
            if getattr(self, key) < 0:
                raise ValueError(f"[demo] {key} must be >= 0, got {getattr(self, key)}")
        if self.report_videos < 0:
            raise ValueError(f"[demo] report_videos must be >= 0, got {self.report_videos}")
        if self.max_selects < 0:
            raise ValueError(f"[demo] max_selects must be >= 0, got {self.max_selects}")
        for key in ("data_preset", "think_style", "env_recipe", "sft_recipe", "rl_recipe", "eval_recipe"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ValueError(f"[demo] {key} must be a non-empty name, got {getattr(self, key)!r}")
