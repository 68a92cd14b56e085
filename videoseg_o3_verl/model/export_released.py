# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Export our checkpoint layout back to the released (Sa2VA-style) VideoSEG-O3 layout; the inverse of
:mod:`videoseg_o3_verl.model.convert_released`.

Input: an HF Qwen-VL directory (a training checkpoint's ``actor/huggingface``, a converted release, or the tiny
model) and its seg head (``seg_head.safetensors`` + ``seg_head_config.json`` in the directory, in ``seg_head/``
inside it, or in ``seg_head/`` beside it), whose config names the SAM2 checkpoint of the frozen parts.

Output (one directory), keyed as the released checkpoint::

    model.<HF Qwen-VL key>                    the policy, tensors bit-identical
    text_hidden_fcs.{0,2}.{weight,bias}       the seg head's projection (an ``input_norm`` standardizer folded into
                                              its first layer: the same map in the released architecture)
    grounding_encoder.sam2_model.<SAM2 key>   SAM2 with the seg head's trained prompt encoder / mask decoder;
                                              memory-encoder ``gamma`` written as ``g_weight`` (as released)

plus ``config.json`` and the tokenizer / processor files. With ``released_reference`` (a released checkpoint
directory) the config takes that release's ``model_type``, ``architectures``, ``auto_map`` and ``template`` and its
custom modelling ``*.py`` files are copied, so the released code loads the export; without it the config stays the
HF Qwen-VL config (what :func:`~videoseg_o3_verl.model.convert_released.convert_released_checkpoint` reads back).

Usage::

    videoseg-o3 export-checkpoint CKPT/global_step_100/actor/huggingface OUT [--released-reference RELEASED_DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from videoseg_reward.sam2_model import read_sam2_checkpoint

from videoseg_o3_verl.model.convert_released import (
    COPIED_FILES,
    ReleasedLayout,
    _iter_tensors,
    _ShardWriter,
    _weight_files,
    build_output_dir,
)
from videoseg_o3_verl.model.seg_head import fold_standardizer
from videoseg_o3_verl.model.seg_head_io import SEG_HEAD_WEIGHTS, has_seg_head, read_seg_head_config

logger = logging.getLogger(__name__)

__all__ = ["RELEASED_CONFIG_KEYS", "ExportReport", "export_released_checkpoint", "find_seg_head_dir", "main"]

RELEASED_CONFIG_KEYS = ("model_type", "architectures", "auto_map", "template")
"""``config.json`` entries taken from a released reference checkpoint (they point at the released code)."""

_HEAD_TO_SAM2 = (("prompt_encoder.", "sam_prompt_encoder."), ("mask_decoder.", "sam_mask_decoder."))
"""Seg head key prefixes -> SAM2 key prefixes of the trained parts."""


@dataclass
class ExportReport:
    """What :func:`export_released_checkpoint` wrote."""

    output_dir: Path
    """The exported directory."""
    llm_tensors: int = 0
    """Number of policy tensors (``model.*``)."""
    proj_tensors: int = 0
    """Number of projection tensors (``text_hidden_fcs.*``)."""
    sam2_tensors: int = 0
    """Number of SAM2 tensors (``grounding_encoder.sam2_model.*``)."""
    trained_sam2_tensors: int = 0
    """Of those, the prompt-encoder / mask-decoder tensors taken from the seg head."""
    seg_head_dir: Path | None = None
    """Where the seg head was read from."""


def find_seg_head_dir(model_dir: str | os.PathLike) -> Path:
    """The seg head of ``model_dir``: the directory itself, its ``seg_head/``, or ``seg_head/`` beside it (a training
    checkpoint's ``actor/huggingface`` next to ``actor/seg_head``)."""
    model_dir = Path(model_dir)
    for candidate in (model_dir, model_dir / "seg_head", model_dir.parent / "seg_head"):
        if has_seg_head(candidate):
            return candidate
    raise FileNotFoundError(f"No seg head for {model_dir}: looked for seg_head.safetensors + seg_head_config.json in "
                            f"it, in {model_dir / 'seg_head'} and in {model_dir.parent / 'seg_head'}")


def export_released_checkpoint(model_dir: str | os.PathLike, dst: str | os.PathLike, *,
                               seg_head_dir: str | os.PathLike | None = None,
                               sam2_checkpoint: str | os.PathLike | None = None,
                               released_reference: str | os.PathLike | None = None,
                               layout: ReleasedLayout | None = None, max_shard_bytes: int = 5 * 1024**3,
                               overwrite: bool = False) -> ExportReport:
    """Write ``model_dir`` + its seg head + SAM2 as one released-layout checkpoint directory.

    Args:
        model_dir: HF Qwen-VL directory (``config.json``, safetensors or ``.bin`` weights, tokenizer files).
        dst: output directory (must not exist or be empty unless ``overwrite``).
        seg_head_dir: the seg head; default :func:`find_seg_head_dir`.
        sam2_checkpoint: overrides the SAM2 checkpoint recorded in the seg head config.
        released_reference: a released checkpoint directory to take the config entries
            :data:`RELEASED_CONFIG_KEYS` and the custom modelling ``*.py`` files from.
        layout: key prefixes (default :class:`ReleasedLayout`, the released ones).
        max_shard_bytes: safetensors shard size.
        overwrite: replace a non-empty ``dst``.
    """
    model_dir, dst = Path(model_dir), Path(dst)
    layout = layout or ReleasedLayout()
    if not model_dir.is_dir():
        raise FileNotFoundError(f"Model directory not found: {model_dir}")
    head_dir = Path(seg_head_dir) if seg_head_dir is not None else find_seg_head_dir(model_dir)
    report = build_output_dir(
        dst, overwrite, ".exporting",
        lambda work: _export_into(model_dir, head_dir, work, sam2_checkpoint=sam2_checkpoint,
                                  released_reference=released_reference, layout=layout,
                                  max_shard_bytes=max_shard_bytes))
    report.output_dir = dst
    logger.info("exported %s -> %s: %d policy, %d projection, %d SAM2 tensors (%d trained)", model_dir, dst,
                report.llm_tensors, report.proj_tensors, report.sam2_tensors, report.trained_sam2_tensors)
    return report


def _released_sam2_key(layout: ReleasedLayout, sam2_key: str) -> str:
    """Inverse of :meth:`ReleasedLayout.sam2_key`."""
    for released, ours in layout.sam2_suffix_renames:
        if sam2_key.endswith(ours):
            return sam2_key[: -len(ours)] + released
    return sam2_key


def _sam2_with_trained_parts(head_dir: Path, sam2_checkpoint: str | os.PathLike | None,
                             report: ExportReport) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(projection state, SAM2 state)``: the SAM2 checkpoint with the seg head's prompt encoder / mask decoder."""
    config = read_seg_head_config(head_dir)
    ckpt = Path(sam2_checkpoint) if sam2_checkpoint is not None else Path(config["sam2_checkpoint"])
    if not ckpt.is_absolute() and sam2_checkpoint is None:
        ckpt = head_dir / ckpt
    sam2_state, _ = read_sam2_checkpoint(ckpt)
    head_state = load_file(str(head_dir / SEG_HEAD_WEIGHTS))
    proj = {k[len("proj."):]: v for k, v in head_state.items() if k.startswith("proj.")}
    if not proj:
        raise ValueError(f"{head_dir / SEG_HEAD_WEIGHTS} has no 'proj.' weights")
    if "input_norm.mean" in head_state:  # the released projection has no standardizer: fold it into its first layer
        mean, var = head_state["input_norm.mean"], head_state["input_norm.var"]
        proj["0.weight"], proj["0.bias"] = fold_standardizer(proj["0.weight"], proj["0.bias"], mean, var)
    sam2_state = dict(sam2_state)
    for key, tensor in head_state.items():
        for head_prefix, sam2_prefix in _HEAD_TO_SAM2:
            if key.startswith(head_prefix):
                target = sam2_prefix + key[len(head_prefix):]
                if target not in sam2_state or tuple(sam2_state[target].shape) != tuple(tensor.shape):
                    raise ValueError(f"seg head tensor {key} {list(tensor.shape)} has no counterpart {target} in the "
                                     f"SAM2 checkpoint {ckpt}")
                sam2_state[target] = tensor.to(sam2_state[target].dtype)
                report.trained_sam2_tensors += 1
    return proj, sam2_state


def _export_into(model_dir: Path, head_dir: Path, dst: Path, *, sam2_checkpoint: str | os.PathLike | None,
                 released_reference: str | os.PathLike | None, layout: ReleasedLayout,
                 max_shard_bytes: int) -> ExportReport:
    """The export proper, writing into the (empty) directory ``dst``."""
    report = ExportReport(output_dir=dst, seg_head_dir=head_dir)
    proj, sam2_state = _sam2_with_trained_parts(head_dir, sam2_checkpoint, report)

    writer = _ShardWriter(dst, max_shard_bytes)
    for key, tensor in _iter_tensors(_weight_files(model_dir)):
        writer.add(layout.llm_prefix + key, tensor)
        report.llm_tensors += 1
    for key, tensor in proj.items():
        writer.add(layout.proj_prefix + key, tensor)
        report.proj_tensors += 1
    for key, tensor in sam2_state.items():
        writer.add(layout.sam2_prefix + _released_sam2_key(layout, key), tensor)
        report.sam2_tensors += 1
    writer.finish()

    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"No config.json in {model_dir}")
    config = json.loads(config_path.read_text())
    if released_reference is not None:
        reference = Path(released_reference)
        ref_config = json.loads((reference / "config.json").read_text()) if (reference / "config.json").is_file() \
            else None
        if ref_config is None:
            raise FileNotFoundError(f"No config.json in the released reference {reference}")
        config.update({k: ref_config[k] for k in RELEASED_CONFIG_KEYS if k in ref_config})
        for code in sorted(reference.glob("*.py")):
            shutil.copy2(code, dst / code.name)
    (dst / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for item in sorted(model_dir.iterdir()):
        if item.name in COPIED_FILES:
            shutil.copy2(item, dst / item.name)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoseg-o3 export-checkpoint",
                                     description="Export an HF Qwen-VL + seg head + SAM2 checkpoint to the released "
                                                 "VideoSEG-O3 (Sa2VA-style) layout.")
    parser.add_argument("model_dir", help="HF Qwen-VL directory (training checkpoint actor/huggingface, converted "
                                          "release, tiny model)")
    parser.add_argument("dst", help="output directory")
    parser.add_argument("--seg-head", default=None, help="seg head directory (default: found next to the model)")
    parser.add_argument("--sam2", default=None, help="SAM2 checkpoint (default: the one the seg head config names)")
    parser.add_argument("--released-reference", default=None,
                        help="released checkpoint directory to take model_type/auto_map/template and *.py from")
    parser.add_argument("--max-shard-gb", type=float, default=5.0, help="safetensors shard size in GiB")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = export_released_checkpoint(args.model_dir, args.dst, seg_head_dir=args.seg_head,
                                        sam2_checkpoint=args.sam2, released_reference=args.released_reference,
                                        max_shard_bytes=int(args.max_shard_gb * 1024**3), overwrite=args.overwrite)
    print(f"wrote {report.output_dir}: {report.llm_tensors} policy, {report.proj_tensors} projection and "
          f"{report.sam2_tensors} SAM2 tensors ({report.trained_sam2_tensors} from the seg head {report.seg_head_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
