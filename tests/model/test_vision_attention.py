# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The batched vision attention gives the stock per-window loop's outputs and gradients, and falls back to the stock
forward when the windows differ in length."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from videoseg_o3_verl.model import vision_attention


def _vision_inputs(path, sizes):
    processor = AutoProcessor.from_pretrained(path)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in sizes]
    out = processor.image_processor(images=images, return_tensors="pt")
    return out["pixel_values"], out["image_grid_thw"]


def _run(model, pixels, grid):
    model.zero_grad()
    out = model.model.visual(pixels, grid_thw=grid)
    out = out.pooler_output if hasattr(out, "pooler_output") else out
    out = out[0] if isinstance(out, tuple) else out
    out.pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.model.visual.named_parameters() if p.grad is not None}
    return out.detach(), grads


@pytest.mark.parametrize("fixture", ["tiny_qwen25_path", "tiny_qwen3_path"])
def test_batched_windows_match_the_stock_loop(fixture, request):
    path = request.getfixturevalue(fixture)
    model = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa").float()
    pixels, grid = _vision_inputs(path, [(56, 56)] * 5)
    stock_out, stock_grads = _run(model, pixels, grid)
    calls = []
    real_sdpa = torch.nn.functional.scaled_dot_product_attention
    vision_attention.install()
    try:
        vision_attention.F.scaled_dot_product_attention = lambda *a, **k: calls.append(a[0].shape) or real_sdpa(*a,
                                                                                                                 **k)
        out, grads = _run(model, pixels, grid)
    finally:
        vision_attention.F.scaled_dot_product_attention = real_sdpa
        vision_attention.uninstall()
    # one batched call per vision block (5 windows of 16 patches each), not one per window
    depth = len(model.model.visual.blocks)
    assert len(calls) == depth and all(shape[0] == 5 for shape in calls)
    torch.testing.assert_close(out, stock_out, rtol=1e-5, atol=1e-6)
    assert grads.keys() == stock_grads.keys() and grads
    for name in grads:
        torch.testing.assert_close(grads[name], stock_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_unequal_windows_use_the_stock_forward(tiny_qwen25_path):
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen25_path, attn_implementation="sdpa").float()
    pixels, grid = _vision_inputs(tiny_qwen25_path, [(56, 56), (112, 56)])
    stock_out, _ = _run(model, pixels, grid)
    cls = type(model.model.visual.blocks[0].attn)
    vision_attention.install()
    vision_attention.install()  # idempotent
    stock, fallbacks = vision_attention._STOCK[cls], []
    vision_attention._STOCK[cls] = lambda self, *a, **k: fallbacks.append(a[0].shape[0]) or stock(self, *a, **k)
    try:
        out, _ = _run(model, pixels, grid)
    finally:
        vision_attention._STOCK[cls] = stock
        vision_attention.uninstall()
    # the full-attention block's chunks are the two images (16 and 32 patches): the stock loop; the windowed
    # block's windows all have 16 patches: batched
    assert fallbacks == [48]
    torch.testing.assert_close(out, stock_out, rtol=1e-5, atol=1e-6)
    assert vision_attention.equal_chunk_length(torch.tensor([0, 16, 48])) is None
    assert vision_attention.equal_chunk_length(torch.tensor([0])) is None
    assert cls.forward is not vision_attention.batched_forward  # uninstalled
