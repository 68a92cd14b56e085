# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Export the SFT policy as a Hugging Face folder that RL loads: LoRA merged, seg head left out."""

from __future__ import annotations

import logging
import os
import shutil

import torch

from ..verl_ext.weight_sync import HEAD_ATTR

logger = logging.getLogger(__name__)

PEFT_PREFIX = "base_model.model."
ADAPTER = "default"


def merge_lora_state_dict(state: dict[str, torch.Tensor], r: int, alpha: float) -> dict[str, torch.Tensor]:
    """A PEFT LoRA state dict as plain weights: ``W = W_base + (alpha / r) · B @ A`` for every adapted layer.

    Keys lose the ``base_model.model.`` prefix and the ``base_layer.`` infix; ``lora_A``/``lora_B`` entries go.

    Example:
        >>> s = {"base_model.model.fc.base_layer.weight": torch.zeros(2, 2),
        ...      "base_model.model.fc.lora_A.default.weight": torch.tensor([[1.0, 0.0]]),
        ...      "base_model.model.fc.lora_B.default.weight": torch.tensor([[1.0], [2.0]])}
        >>> merge_lora_state_dict(s, r=1, alpha=2.0)["fc.weight"]   # 2 · [[1], [2]] @ [[1, 0]]
        tensor([[2., 0.],
                [4., 0.]])
    """
    if r <= 0:
        raise ValueError(f"LoRA rank must be > 0, got {r}")
    scale = alpha / r
    merged = {}
    for key, value in state.items():
        if ".lora_" in key:
            continue
        name = key.removeprefix(PEFT_PREFIX)
        if ".base_layer." in name:
            prefix = key[: key.index(".base_layer.")]
            name = name.replace(".base_layer.", ".")
            if key.endswith(".base_layer.weight"):
                a = state.get(f"{prefix}.lora_A.{ADAPTER}.weight")
                b = state.get(f"{prefix}.lora_B.{ADAPTER}.weight")
                if a is None or b is None:
                    raise ValueError(f"LoRA layer {prefix} has no lora_A/lora_B weights for adapter {ADAPTER!r}")
                value = (value.float() + scale * (b.float() @ a.float())).to(value.dtype)
        merged[name] = value
    return merged


def export_hf_policy(state: dict[str, torch.Tensor], base_path: str, out_dir: str, *, tokenizer=None, processor=None,
                     lora: dict | None = None) -> str:
    """Write the policy of a full training state dict (policy + seg head) as a Hugging Face folder.

    Args:
        state: full (gathered) state dict of the trained module.
        base_path: the Hugging Face folder training started from (config, generation config).
        out_dir: output folder (replaced).
        tokenizer, processor: saved alongside (chat template and [SEG] included).
        lora: ``{"r", "alpha"}`` when the module is a PEFT LoRA model (the adapters are merged).

    Returns:
        ``out_dir``.
    """
    from transformers import AutoConfig
    from verl.utils.model import get_hf_auto_model_class

    weights = merge_lora_state_dict(state, lora["r"], lora["alpha"]) if lora else dict(state)
    weights = {k: v for k, v in weights.items() if not k.startswith(HEAD_ATTR + ".")}
    config = AutoConfig.from_pretrained(base_path)
    dtype = next(iter(weights.values())).dtype
    model = get_hf_auto_model_class(config).from_config(config, torch_dtype=dtype)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied and not any(k.endswith(t) for t in tied)]
    if missing or unexpected:
        raise ValueError(f"exported policy does not match {base_path}: missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]}")
    if getattr(config, "tie_word_embeddings", False) or getattr(config.get_text_config(), "tie_word_embeddings", False):
        model.tie_weights()
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir)
    for name in ("generation_config.json",):
        if os.path.isfile(os.path.join(base_path, name)) and not os.path.isfile(os.path.join(out_dir, name)):
            shutil.copy(os.path.join(base_path, name), out_dir)
    if processor is not None:
        processor.save_pretrained(out_dir)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    logger.info("exported the policy to %s", out_dir)
    return out_dir
