# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The learning demo's tiny random models (built offline, cached): the policy and SAM2."""

from __future__ import annotations

from .config import DemoConfig


def demo_models(cfg: DemoConfig) -> dict[str, str]:
    """``{"model": <tiny Qwen2.5-VL folder>, "sam2": <tiny SAM2 checkpoint>}`` of the demo's sizes."""
    from ..model.tiny import tiny_qwen_vl, tiny_sam2

    return {"model": str(tiny_qwen_vl("qwen2_5_vl", hidden_size=cfg.model_hidden_size, num_layers=cfg.model_layers)),
            "sam2": str(tiny_sam2(image_size=cfg.sam2_image_size, small_trunk=cfg.sam2_small_trunk,
                                  width=cfg.sam2_width))}
