# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Qwen-VL vision attention over equal-length windows in ONE batched SDPA call (same maths, fewer kernel launches).

Without flash-attention (CPU), transformers' Qwen2.5-VL and Qwen3-VL vision attention splits the packed patches at
``cu_seqlens`` (one chunk per attention window or image) and calls SDPA once per chunk in a Python loop, twice per
vision block. The demo's cold start has ~200 frames of 16 patches per step, so that loop (and its backward) is
~400 tiny SDPA calls. When every chunk has the same length — the demo's frames all have the same size — the chunks
are the batch dimension of one SDPA call; otherwise the stock forward runs. :func:`install` replaces the
``forward`` of the vision attention classes in this process (idempotent; :func:`uninstall` restores them).
"""

from __future__ import annotations

import importlib
import sys

import torch
import torch.nn.functional as F

VISION_ATTENTION_CLASSES = (
    ("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl", "Qwen2_5_VLVisionAttention"),
    ("transformers.models.qwen3_vl.modeling_qwen3_vl", "Qwen3VLVisionAttention"),
)
"""(module, class) of the vision attention layers whose per-chunk loop is batched."""

_STOCK: dict[type, object] = {}
"""Each patched class's own ``forward``."""


def equal_chunk_length(cu_seqlens: torch.Tensor) -> int | None:
    """The common length of the chunks that ``cu_seqlens`` delimits, or None when they differ (or there are none).

    Example:
        >>> equal_chunk_length(torch.tensor([0, 16, 32, 48]))
        16
        >>> equal_chunk_length(torch.tensor([0, 16, 20])) is None
        True
    """
    lengths = cu_seqlens[1:] - cu_seqlens[:-1]
    if lengths.numel() == 0 or not bool((lengths == lengths[0]).all()):
        return None
    return int(lengths[0])


def batched_forward(self, hidden_states: torch.Tensor, cu_seqlens: torch.Tensor,
                    position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None, **kwargs) -> torch.Tensor:
    """The vision attention's forward with the chunks of equal length attended in one SDPA call."""
    length = equal_chunk_length(cu_seqlens)
    if (length is None or self.config._attn_implementation != "sdpa" or position_embeddings is None
            or kwargs.get("output_attentions")):
        return _STOCK[type(self)](self, hidden_states, cu_seqlens, position_embeddings=position_embeddings, **kwargs)
    seq_length = hidden_states.shape[0]
    q, k, v = self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = position_embeddings
    q, k = sys.modules[type(self).__module__].apply_rotary_pos_emb_vision(q, k, cos, sin)
    chunks = seq_length // length
    # [seq, heads, d] -> [chunks, heads, length, d]: each window is one batch entry
    q, k, v = (t.reshape(chunks, length, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attention_dropout if self.training else 0.0,
                                         scale=self.scaling)
    out = out.transpose(1, 2).reshape(seq_length, -1).contiguous()  # chunk-major, as the stock loop concatenates
    return self.proj(out)


def _classes() -> list[type]:
    found = []
    for module_name, class_name in VISION_ATTENTION_CLASSES:
        try:
            found.append(getattr(importlib.import_module(module_name), class_name))
        except (ImportError, AttributeError):  # an older transformers without this model
            continue
    return found


def install() -> None:
    """Use :func:`batched_forward` in every Qwen-VL vision attention class of this process."""
    for cls in _classes():
        if cls not in _STOCK:
            _STOCK[cls] = cls.forward
            cls.forward = batched_forward


def uninstall() -> None:
    """Restore the stock forwards."""
    for cls, forward in list(_STOCK.items()):
        cls.forward = forward
        del _STOCK[cls]
