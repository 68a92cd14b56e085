# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The token part of the cold-start loss: per-token log-probs and the token weights of the cross-entropy.

verl's SFT loss is ``-Σ m_i·log p_i / Σ m_i`` over the global batch, with ``m`` the ``loss_mask`` (1 on assistant
tokens) and ``Σ m_i`` computed by verl before micro-batching. Replacing ``m`` by weights ``w_i = m_i·W[token i]``
turns the same code into the weighted mean ``Σ w_i·ce_i / Σ w_i``, which is how ``videoseg_o3_sft.digit_weight``
(digit tokens: the frame indices) and ``videoseg_o3_sft.action_weight`` (tokens naming the action: ``answer`` /
``select`` in the reasoning's ``Action:``, the opening and the closing tag) are applied: ``W`` is
:func:`token_weight_table`, the weights :func:`token_loss_weights`; with all weights 1 the mask is left untouched.

:func:`token_log_probs` is verl's fp32 ``logprobs_from_logits`` (label logit minus log-sum-exp) on all tokens at
once: verl's CPU fallback loops over the tokens one by one (a Python loop of ~10k iterations per micro-batch).
"""

from __future__ import annotations

import torch

DIGITS = frozenset("0123456789")
ACTION_WORDS = frozenset({"answer", "select"})
"""The action names of the trajectory format: ``Action: answer.``, ``<answer>…</answer>``, likewise ``select``."""


def is_digit_text(text: str) -> bool:
    """True where ``text`` is ASCII digits only (surrounding spaces ignored)."""
    return bool(text.strip()) and set(text.strip()) <= DIGITS


def is_action_text(text: str) -> bool:
    """True where ``text`` is an action name, alone or with the tag characters and spaces around it (``answer``,
    `` select``, ``<answer``, ``</select>``)."""
    return text.strip().strip("</>").strip() in ACTION_WORDS


def token_weight_table(tokenizer, digit_weight: float = 1.0, action_weight: float = 1.0) -> torch.Tensor:
    """``[len(tokenizer)]`` float32 CE weight of each token: ``digit_weight`` on digit tokens
    (:func:`is_digit_text`), ``action_weight`` on action names (:func:`is_action_text`), 1 elsewhere."""

    def weight(text: str) -> float:
        if is_digit_text(text):
            return float(digit_weight)
        return float(action_weight) if is_action_text(text) else 1.0

    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return torch.tensor([weight(t) for t in texts], dtype=torch.float32)


def token_loss_weights(input_ids: torch.Tensor, loss_mask: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``loss_mask`` as float weights: ``table[token]`` on the trained tokens, 0 elsewhere.

    Args:
        input_ids: token ids (any shape, or a jagged nested tensor).
        loss_mask: 0/1 mask of the same layout (1 = token is trained).
        table: ``[V]`` float weights, :func:`token_weight_table`.

    Returns:
        float32 weights in the layout of ``loss_mask``.
    """
    nested = loss_mask.is_nested
    ids = input_ids.values() if nested else input_ids
    mask = loss_mask.values() if nested else loss_mask
    weights = mask.float() * table.to(ids.device)[ids]
    if nested:
        return torch.nested.nested_tensor_from_jagged(weights, loss_mask.offsets())
    return weights


def token_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[N]`` log-probabilities of ``labels [N]`` under ``logits [N, V]`` (computed in float32)."""
    logits = logits.float()
    return logits.gather(-1, labels[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)


def padded_sequence_log_probs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Next-token log-probs of jagged sequences from their padded logits, as verl's padded (no remove-padding) path.

    Args:
        logits: ``[B, L, V]`` logits of the right-padded batch.
        input_ids: jagged nested ``[B, j]`` token ids.

    Returns:
        jagged nested ``[B, j]``: position t holds log p(token t+1); the last position of a sequence holds the
        log-prob of the next sequence's first token (verl rolls the flattened ids and masks that position out).
    """
    offsets = input_ids.offsets()
    lengths = offsets.diff().to(logits.device)
    valid = torch.arange(logits.shape[1], device=logits.device)[None] < lengths[:, None]
    labels = torch.roll(input_ids.values(), shifts=-1, dims=0)
    return torch.nested.nested_tensor_from_jagged(token_log_probs(logits[valid], labels), offsets)
