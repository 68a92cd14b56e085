# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Guard against vLLM normalising Qwen-VL pixels with random numbers (GPU and CPU alike).

Recent vLLM releases normalise Qwen2-VL/Qwen2.5-VL pixels on the device (``mm_device_do_normalize``, on by
default) with mean/std kept as model buffers. verl starts vLLM with ``rollout.load_format=dummy``, which fills
every buffer with random values, and its weight sync sends the actor's state dict, which has no such buffers:
the rollout then sees every image and video frame normalised with random numbers while the actor sees the right
ones (rollout/actor log-probs of the same tokens disagree; the policy is sampled from a different model).
``load_format=auto`` builds the buffers from the processor config at start-up (the recipes set it);
``engine_kwargs.vllm.mm_device_do_normalize=false`` (normalise in the processor, as the actor does) also works.
"""

from __future__ import annotations

from omegaconf import DictConfig


def pixel_normalisation_problem(rollout: DictConfig) -> str | None:
    """Why this rollout config would feed vLLM randomly normalised pixels, or ``None`` when it is safe."""
    if rollout.get("name") != "vllm" or not str(rollout.get("load_format", "")).startswith("dummy"):
        return None
    vllm_kwargs = (rollout.get("engine_kwargs") or {}).get("vllm") or {}
    if vllm_kwargs.get("mm_device_do_normalize") is False:
        return None
    return ("actor_rollout_ref.rollout.load_format=dummy with the vllm rollout: vLLM would normalise image/video "
            "pixels with randomly initialised mean/std buffers that the weight sync never sends. Set "
            "actor_rollout_ref.rollout.load_format=auto (or "
            "+actor_rollout_ref.rollout.engine_kwargs.vllm.mm_device_do_normalize=false).")


def check_pixel_normalisation(cfg: DictConfig) -> None:
    """Raise ``ValueError`` when :func:`pixel_normalisation_problem` finds a problem in the trainer config."""
    problem = pixel_normalisation_problem(cfg.actor_rollout_ref.rollout)
    if problem:
        raise ValueError(f"[rollout] {problem}")
