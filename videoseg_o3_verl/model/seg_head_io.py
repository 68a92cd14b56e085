# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Save/load the seg head beside a Hugging Face checkpoint, and make sure the tokenizer knows ``[SEG]``.

Layout inside an HF model directory (next to ``config.json`` and the LLM weights)::

    seg_head.safetensors     # SegHead.state_dict(): proj.*, prompt_encoder.*, mask_decoder.* (input_norm.* if any)
    seg_head_config.json     # hidden size, SAM2 config/image size, SAM2 checkpoint path, format version

The SAM2 checkpoint named in the config supplies the frozen image encoder (for the :class:`FrameEncoder`) and the
architecture of the prompt encoder / mask decoder; the trained weights of those two come from
``seg_head.safetensors``. A checkpoint path inside the directory is stored relative to it (the directory stays
relocatable); any other path is stored absolute.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from videoseg_reward.sam2_model import Sam2Meta, load_sam2_model, read_sam2_checkpoint

from videoseg_o3_verl.model.frame_encoder import FrameEncoder
from videoseg_o3_verl.model.seg_head import SegHead, build_seg_head

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "SEG_HEAD_CONFIG",
    "SEG_HEAD_WEIGHTS",
    "ensure_seg_token",
    "has_seg_head",
    "load_seg_head",
    "read_seg_head_config",
    "save_seg_head",
]

SEG_HEAD_WEIGHTS = "seg_head.safetensors"
"""File name of the seg head weights inside a model directory."""
SEG_HEAD_CONFIG = "seg_head_config.json"
"""File name of the seg head config inside a model directory."""
FORMAT_VERSION = 1
"""Version of the two files above; bumped on any incompatible change."""


def has_seg_head(directory: str | os.PathLike) -> bool:
    """True when ``directory`` holds both seg head files."""
    directory = Path(directory)
    return (directory / SEG_HEAD_WEIGHTS).is_file() and (directory / SEG_HEAD_CONFIG).is_file()


def _resolve_meta(head: SegHead, sam2_checkpoint: Path, sam2_meta: Sam2Meta | None) -> Sam2Meta:
    if sam2_meta is not None:
        return sam2_meta
    if head.sam2_meta is not None:
        return head.sam2_meta
    _, stored = read_sam2_checkpoint(sam2_checkpoint)
    if stored is None:
        raise ValueError(f"save_seg_head: cannot tell which SAM2 config {sam2_checkpoint} belongs to (a released "
                         "checkpoint without metadata); pass sam2_meta=Sam2Meta(config=..., image_size=...)")
    return stored


def save_seg_head(head: SegHead, directory: str | os.PathLike, *, sam2_checkpoint: str | os.PathLike,
                  hidden_size: int, sam2_meta: Sam2Meta | None = None) -> Path:
    """Write ``seg_head.safetensors`` and ``seg_head_config.json`` into ``directory`` (created if needed).

    Args:
        head: the seg head (tensors are saved in their current dtype, moved to CPU).
        directory: usually the HF checkpoint directory of the policy.
        sam2_checkpoint: the SAM2 ``.pt`` the head was built from (must exist; it provides the frozen image
            encoder at load time).
        hidden_size: LLM hidden size H; must equal the head's ``proj`` input width.
        sam2_meta: SAM2 config/image size; defaults to ``head.sam2_meta``, then to the metadata stored in the
            checkpoint.

    Returns:
        the directory.
    """
    directory = Path(directory)
    ckpt = Path(sam2_checkpoint)
    if not ckpt.is_absolute() and not ckpt.is_file() and (directory / ckpt).is_file():
        ckpt = directory / ckpt
    if not ckpt.is_file():
        raise FileNotFoundError(f"save_seg_head: SAM2 checkpoint not found: {sam2_checkpoint}")
    if hidden_size != head.hidden_size:
        raise ValueError(f"save_seg_head: hidden_size={hidden_size} but the head's proj expects {head.hidden_size}")
    meta = _resolve_meta(head, ckpt, sam2_meta)
    directory.mkdir(parents=True, exist_ok=True)
    ckpt_abs = ckpt.resolve()
    try:
        stored_path = str(ckpt_abs.relative_to(directory.resolve()))
    except ValueError:
        stored_path = str(ckpt_abs)
    state = {k: v.detach().to("cpu").contiguous() for k, v in head.state_dict().items()}
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "hidden_size": int(hidden_size),
        "embed_dim": head.embed_dim,
        "num_padding_tokens": head.num_padding_tokens,
        "multimask_output": head.multimask_output,
        "input_norm": head.input_norm is not None,
        "sam2_config": meta.config,
        "sam2_image_size": meta.image_size,
        "sam2_checkpoint": stored_path,
        "dtype": str(head.dtype).removeprefix("torch."),
    }
    tmp = directory / (SEG_HEAD_WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, directory / SEG_HEAD_WEIGHTS)
    tmp = directory / (SEG_HEAD_CONFIG + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, directory / SEG_HEAD_CONFIG)
    return directory


_REQUIRED_KEYS = ("format_version", "hidden_size", "sam2_config", "sam2_image_size", "sam2_checkpoint")


def read_seg_head_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Parse and check ``seg_head_config.json``."""
    path = Path(directory) / SEG_HEAD_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"No seg head config in {directory}: {path} is missing")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    missing = [k for k in _REQUIRED_KEYS if k not in config]
    if missing:
        raise ValueError(f"{path} lacks keys {missing}")
    if config["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {config['format_version']!r} is not supported "
                         f"(this code reads {FORMAT_VERSION})")
    return config


def load_seg_head(directory: str | os.PathLike, *, sam2_checkpoint: str | os.PathLike | None = None,
                  device: str | torch.device = "cpu") -> tuple[SegHead, FrameEncoder]:
    """Rebuild the seg head and its frame encoder from ``directory``; strict.

    Args:
        directory: holds ``seg_head.safetensors`` and ``seg_head_config.json``.
        sam2_checkpoint: overrides the SAM2 checkpoint recorded in the config (e.g. after moving files).
        device: where to put the head and the encoder.

    Returns:
        ``(head, encoder)``; the head is float32 and trainable, the encoder frozen.

    Raises:
        FileNotFoundError: a file is missing. ValueError: the weights do not match the config (missing/unexpected
            keys or shapes, listed), or the config is malformed.
    """
    directory = Path(directory)
    config = read_seg_head_config(directory)
    weights = directory / SEG_HEAD_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"No seg head weights in {directory}: {weights} is missing")
    ckpt = Path(sam2_checkpoint if sam2_checkpoint is not None else config["sam2_checkpoint"])
    if not ckpt.is_absolute() and sam2_checkpoint is None:
        ckpt = directory / ckpt
    if not ckpt.is_file():
        raise FileNotFoundError(f"SAM2 checkpoint for the seg head in {directory} not found: {ckpt} (pass "
                                "sam2_checkpoint=... to override the recorded path)")
    sam2 = load_sam2_model(ckpt, config=config["sam2_config"], image_size=config["sam2_image_size"])
    head = build_seg_head(int(config["hidden_size"]), sam2,
                          num_padding_tokens=int(config.get("num_padding_tokens", 2)),
                          multimask_output=bool(config.get("multimask_output", True)),
                          input_norm=bool(config.get("input_norm", False)))
    state = load_file(str(weights))
    expected = head.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"Seg head weights {weights} do not match the head built from {SEG_HEAD_CONFIG}: "
                         f"missing keys {missing}, unexpected keys {unexpected}")
    bad_shapes = [f"{k}: file {tuple(state[k].shape)} vs head {tuple(v.shape)}" for k, v in expected.items()
                  if tuple(state[k].shape) != tuple(v.shape)]
    if bad_shapes:
        raise ValueError(f"Seg head weights {weights} have wrong shapes: {bad_shapes}")
    head.load_state_dict(state, strict=True)
    encoder = FrameEncoder.from_sam2(sam2).to(device)
    return head.to(device), encoder


def ensure_seg_token(tokenizer: Any, model: torch.nn.Module | None = None, token: str = "[SEG]") -> int:
    """Make sure ``token`` exists (added as a special token if missing) and fits the model's embeddings.

    The model's input/output embeddings are resized only when the token id is >= the current number of embedding
    rows: Qwen-VL tables carry padded rows beyond ``len(tokenizer)``, and resizing would throw them away.

    Args:
        tokenizer: a Hugging Face tokenizer (modified in place when the token is missing).
        model: optional model whose ``get_input_embeddings()`` must cover the id.
        token: the token text.

    Returns:
        the token id.
    """
    if token not in tokenizer.get_vocab():
        added = tokenizer.add_tokens([token], special_tokens=True)
        if added != 1 or token not in tokenizer.get_vocab():
            raise ValueError(f"ensure_seg_token: tokenizer {type(tokenizer).__name__} refused to add {token!r}")
        logger.info("added %s to the tokenizer as id %d", token, tokenizer.convert_tokens_to_ids(token))
    token_id = int(tokenizer.convert_tokens_to_ids(token))
    if model is not None:
        rows = model.get_input_embeddings().weight.shape[0]
        if token_id >= rows:
            new_rows = max(len(tokenizer), token_id + 1)
            logger.info("resizing token embeddings from %d to %d rows for %s", rows, new_rows, token)
            model.resize_token_embeddings(new_rows)
    return token_id
