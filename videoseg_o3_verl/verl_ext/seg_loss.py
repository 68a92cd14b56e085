# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The actor loss of the seg-head engine: verl's PPO loss on the calibrated log-probs, the KL on the plain ones, plus
the auxiliary mask loss (``docs/method.md``, "Policy loss" and "Auxiliary segmentation loss")."""

from __future__ import annotations

from typing import Any

import torch


def nested_like(reference: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A jagged tensor with ``reference``'s rows and new ``values`` (min/max lengths set: TensorDict pads with them)."""
    offsets = reference.offsets()
    lengths = offsets.diff()
    return torch.nested.nested_tensor_from_jagged(values, offsets, min_seqlen=int(lengths.min()),
                                                  max_seqlen=int(lengths.max()))


def add_response_aligned(ref: torch.Tensor, padded: torch.Tensor) -> torch.Tensor:
    """``ref`` (nested ``[B, R_j]`` or dense ``[B, R]``) plus a ``[B, R_max]`` response-aligned tensor."""
    if not ref.is_nested:
        return ref + padded[:, : ref.shape[1]].to(ref.dtype)
    lengths = ref.offsets().diff().tolist()
    extra = torch.cat([padded[i, :n] for i, n in enumerate(lengths)]).to(ref.dtype)
    return nested_like(ref, ref.values() + extra)


def videoseg_loss(inner, model_output: dict, data, dp_group=None, aux_ratio: float = 0.2) -> tuple[Any, dict]:
    """verl's PPO loss on the calibrated log-probs, KL on the plain ones, plus ``aux_ratio ×`` the mask loss.

    The injected mask terms are added to ``ref_log_prob`` as well, so the k3 KL (a function of the difference)
    equals the KL of the token log-probs before injection and sends no gradient through the mask term.
    The auxiliary loss arrives as its micro-batch row sum (:func:`~.seg_batch.micro_batch_aux_loss`) and is
    normalised like verl's sequence-mean losses: divided by the global batch size and multiplied by the
    data-parallel size.
    """
    from verl.workers.utils.padding import no_padding_2_padding

    injection = model_output.pop("_videoseg_injection", None)
    aux = model_output.pop("_videoseg_aux", None)
    aux_value = model_output.pop("_videoseg_aux_value", None)
    mask_logp = model_output.pop("_videoseg_mask_logp", None)
    dropped = model_output.pop("_videoseg_seg_dropped", None)
    if injection is not None and "ref_log_prob" in data.keys():
        data = data.clone(recurse=False)
        data["ref_log_prob"] = add_response_aligned(data["ref_log_prob"], no_padding_2_padding(injection, data))
    loss, metrics = inner(model_output=model_output, data=data, dp_group=dp_group)
    if aux is not None and aux_ratio > 0:
        global_bsz, dp_size = data["global_batch_size"], data["dp_size"]
        loss = loss + aux_ratio * aux / global_bsz * dp_size
        metrics["videoseg/aux_loss"] = float(aux_value if aux_value is not None else aux.detach())
    if mask_logp is not None and mask_logp.numel():
        metrics["videoseg/mask_logp"] = float(mask_logp.mean())
    if dropped is not None:
        metrics["videoseg/seg_dropped"] = float(dropped)
    return loss, metrics
