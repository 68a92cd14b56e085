# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Right-padded batches through the causal kernel without a padding mask (the same values on every real token).

verl's padded SFT path (no remove-padding) pads each sequence on the right and passes a padding mask, so SDPA runs
with an explicit ``[B, 1, L, L]`` mask. Under causal attention a real token only attends to earlier positions, and
with right padding those are all real: the mask changes nothing a real token sees, and the padded positions'
outputs are never read (their loss weight is 0). Without the mask, SDPA takes its ``is_causal`` kernel, which skips
the upper triangle. transformers would still build a mask when the text position ids restart on the padding (it
reads a restart as a packed second sequence), so the padding's text position ids continue the sequence's instead.
"""

from __future__ import annotations

import torch


def continue_text_positions(position_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Position ids whose text row counts on through each sequence's right padding.

    Args:
        position_ids: ``[B, L]`` text positions or ``[R, B, L]`` (Qwen-VL: row 0 the text positions when R = 4,
            else the multimodal rows; only row 0 is changed when R = 4, every row otherwise).
        lengths: ``[B]`` real tokens of each row.

    Returns:
        a copy where position ``t >= lengths[b]`` of row ``b`` holds ``last + 1 + (t - lengths[b])``, ``last`` the
        position of the row's last real token.

    Example:
        >>> continue_text_positions(torch.tensor([[0, 1, 2, 0, 0]]), torch.tensor([3])).tolist()
        [[0, 1, 2, 3, 4]]
    """
    out = position_ids.clone()
    text = out[0] if out.dim() == 3 and out.shape[0] == 4 else out  # [B, L] or [R, B, L], a view of `out`
    lengths = lengths.to(out.device)
    steps = torch.arange(out.shape[-1], device=out.device)
    pad = steps[None] >= lengths[:, None]  # [B, L]
    last = text.gather(-1, (lengths - 1).clamp_min(0)[:, None].expand(*text.shape[:-1], 1))  # [..., B, 1]
    text[...] = torch.where(pad, last + 1 + (steps[None] - lengths[:, None]), text)
    return out


def without_padding_mask(model_inputs: dict, lengths: torch.Tensor) -> dict:
    """``model_inputs`` of a right-padded batch with ``attention_mask`` None and the text positions continued through
    the padding (:func:`continue_text_positions`): the causal kernel then gives every real token what the padded
    mask gave it."""
    out = dict(model_inputs)
    out["attention_mask"] = None
    out["position_ids"] = continue_text_positions(model_inputs["position_ids"], lengths)
    return out
