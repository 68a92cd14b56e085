# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""A right-padded batch without the padding mask: every real token gets what the masked forward gave it, and SDPA
runs its causal kernel (no explicit mask)."""

from __future__ import annotations

import torch
from transformers import AutoModelForImageTextToText

from videoseg_o3_verl.sft.causal_padding import continue_text_positions, without_padding_mask


def test_continue_text_positions_hand_cases():
    # row 0 real length 3: the padding continues 3, 4; row 1 has no padding
    pos = torch.tensor([[0, 1, 2, 0, 0], [0, 1, 2, 3, 4]])
    assert continue_text_positions(pos, torch.tensor([3, 5])).tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    # Qwen-VL [4, B, L] (non-contiguous, as verl builds it): only the text row 0 changes
    mrope = torch.tensor([[[0, 1, 2, 0], [5, 5, 6, 0], [5, 5, 6, 0], [5, 5, 6, 0]]]).transpose(0, 1)
    out = continue_text_positions(mrope, torch.tensor([3]))
    assert out[0].tolist() == [[0, 1, 2, 3]] and out[1:].tolist() == mrope[1:].tolist()
    assert mrope[0].tolist() == [[0, 1, 2, 0]]  # the input is not modified


def test_real_tokens_match_the_masked_forward_and_sdpa_runs_causal(tiny_qwen25_path, monkeypatch):
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen25_path, attn_implementation="sdpa").float().eval()
    lengths = torch.tensor([7, 12, 4])
    ids = torch.randint(10, 200, (3, 12))
    mask = (torch.arange(12)[None] < lengths[:, None]).long()
    ids = ids * mask  # pad id 0 on the right
    text = torch.arange(12)[None].expand(3, -1) * mask  # verl pads the positions with 0
    pos = text[None].expand(4, -1, -1).clone()
    with torch.no_grad():
        masked = model(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True,
                       use_cache=False)
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append((k.get("attn_mask"), k.get("is_causal"))) or sdpa(*a, **k))
    inputs = without_padding_mask({"input_ids": ids, "attention_mask": mask, "position_ids": pos}, lengths)
    with torch.no_grad():
        causal = model(**inputs, output_hidden_states=True, use_cache=False)  # as verl calls it
    assert calls and all(m is None and c for m, c in calls)  # the causal kernel, no explicit mask
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(causal.logits[b, :n], masked.logits[b, :n], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(causal.hidden_states[-1][b, :n], masked.hidden_states[-1][b, :n], rtol=1e-5,
                                   atol=1e-5)
