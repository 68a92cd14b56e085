# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Convert the authors' released (Sa2VA-style) checkpoint into our layout (docs/method.md §1).

The released VideoSEG-O3 / Sa2VA-Qwen3-VL checkpoints are one ``PreTrainedModel`` wrapping three parts, so their
state dict keys are (checked against github.com/Dmmm1997/VideoSEG-O3 ``projects/sa2va/hf/models_qwen3vl`` and
``tools/convert_to_hf.py``, which renames ``mllm.`` -> ``""``):

    model.<Qwen3VLForConditionalGeneration key>     e.g. model.model.language_model.layers.0..., model.lm_head.weight
    text_hidden_fcs.{0,2}.{weight,bias}             the [SEG] projection MLP
    grounding_encoder.sam2_model.<SAM2 key>         SAM2 (Hiera-L, sam2 v1 config) incl. the trained mask decoder;
                                                    the memory-encoder ``gamma`` params appear as ``g_weight``

and ``config.json`` is a ``Qwen3VLConfig`` with ``model_type: sa2va_chat``, an ``auto_map`` to the custom code and
a ``template`` entry. The un-merged xtuner ``.pth`` uses ``mllm.model.`` for the LLM instead; pass that prefix.

Output (one directory):

    config.json, model*.safetensors    plain HF Qwen-VL (prefix stripped, tensors bit-identical)
    tokenizer / processor files        copied; ``[SEG]`` guaranteed present
    seg_head.safetensors + seg_head_config.json    our SegHead (proj = text_hidden_fcs)
    sam2_grounding_encoder.pt          SAM2 checkpoint of the grounding encoder (for the reward service)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from videoseg_reward.sam2_model import Sam2Meta, sam2_from_state_dict, save_sam2_checkpoint

from videoseg_o3_verl.model.seg_head import build_seg_head
from videoseg_o3_verl.model.seg_head_io import ensure_seg_token, save_seg_head

ReportT = TypeVar("ReportT")

logger = logging.getLogger(__name__)

__all__ = ["ARCHITECTURES", "RELEASED_SAM2_META", "ConversionReport", "ReleasedLayout", "convert_released_checkpoint"]

ARCHITECTURES = {
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
}
"""HF ``model_type`` of the output -> its ``architectures`` entry."""

RELEASED_SAM2_META = Sam2Meta(config="sam2_hiera_l")
"""SAM2 architecture of the released grounding encoder (SAM2 v1 Hiera-L, 1024 px; README: sam2_hiera_large.pt)."""

SAM2_FILENAME = "sam2_grounding_encoder.pt"
"""Name of the SAM2 checkpoint written into the output directory."""

COPIED_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "tokenizer.model", "chat_template.json", "chat_template.jinja", "preprocessor_config.json",
    "video_preprocessor_config.json", "processor_config.json", "generation_config.json",
)
"""Non-weight files copied verbatim when present (tokenizer, processor, generation settings)."""

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class ReleasedLayout:
    """Key prefixes of the three parts in the released state dict."""

    llm_prefix: str = "model."
    """Prefix of the Qwen-VL weights (stripped); ``mllm.model.`` for the un-merged xtuner checkpoint."""
    proj_prefix: str = "text_hidden_fcs."
    """Prefix of the [SEG] projection MLP (``Linear, ReLU, Linear, Dropout``)."""
    sam2_prefix: str = "grounding_encoder.sam2_model."
    """Prefix of the SAM2 model weights."""
    sam2_suffix_renames: tuple[tuple[str, str], ...] = ((".g_weight", ".gamma"),)
    """``(released, sam2)`` key-suffix renames for the SAM2 part: transformers renames parameters called ``gamma``
    to ``g_weight``, so the released ``memory_encoder.fuser.layers.*.g_weight`` are SAM2's ``...gamma``."""

    def sam2_key(self, name: str) -> str:
        """Map a released SAM2 key (prefix already stripped) to the ``sam2`` package's key."""
        for old, new in self.sam2_suffix_renames:
            if name.endswith(old):
                return name[: -len(old)] + new
        return name

    def route(self, key: str) -> tuple[str, str] | None:
        """``(part, key without prefix)`` with part in {"llm", "proj", "sam2"}, or None for an unknown key."""
        # the most specific prefixes first, in case one is a prefix of another
        for part, prefix in sorted((("llm", self.llm_prefix), ("proj", self.proj_prefix),
                                    ("sam2", self.sam2_prefix)), key=lambda p: -len(p[1])):
            if key.startswith(prefix):
                return part, key[len(prefix):]
        return None


@dataclass
class ConversionReport:
    """What :func:`convert_released_checkpoint` wrote."""

    output_dir: Path
    """The converted directory."""
    llm_tensors: int = 0
    """Number of LLM tensors written."""
    seg_token_id: int = -1
    """Id of ``[SEG]`` in the output tokenizer."""
    seg_token_added: bool = False
    """True when ``[SEG]`` was missing from the released tokenizer and had to be added."""
    hidden_size: int = 0
    """LLM hidden size H (input width of the projection)."""
    sam2_checkpoint: Path | None = None
    """The SAM2 ``.pt`` written for the reward service."""
    copied_files: list[str] = field(default_factory=list)
    """Tokenizer/processor files copied."""
    skipped_files: list[str] = field(default_factory=list)
    """Source files not copied (custom modelling code, other artefacts)."""


# ------------------------------------------------------------------------------------------------ reading


def _weight_files(src: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = src / index_name
        if index.is_file():
            weight_map = json.loads(index.read_text()).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ValueError(f"{index} has no 'weight_map'")
            return [src / name for name in sorted(set(weight_map.values()))]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (src / name).is_file():
            return [src / name]
    raise FileNotFoundError(f"No weights in {src}: expected model.safetensors(.index.json) or "
                            "pytorch_model.bin(.index.json)")


def _iter_tensors(files: list[Path]) -> Iterator[tuple[str, torch.Tensor]]:
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"Weight shard listed in the index is missing: {path}")
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    yield key, f.get_tensor(key)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            yield from state.items()


class _ShardWriter:
    """Writes tensors into HF-style safetensors shards (``model.safetensors`` or ``model-0000i-of-0000n``)."""

    def __init__(self, directory: Path, max_shard_bytes: int) -> None:
        self.directory = directory
        self.max_shard_bytes = max_shard_bytes
        self.current: dict[str, torch.Tensor] = {}
        self.current_bytes = 0
        self.tmp_files: list[tuple[Path, list[str]]] = []
        self.total_bytes = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        nbytes = tensor.numel() * tensor.element_size()
        if self.current and self.current_bytes + nbytes > self.max_shard_bytes:
            self._flush()
        self.current[name] = tensor.contiguous()
        self.current_bytes += nbytes
        self.total_bytes += nbytes

    def _flush(self) -> None:
        path = self.directory / f".shard-{len(self.tmp_files):05d}.safetensors.tmp"
        save_file(self.current, str(path), metadata={"format": "pt"})
        self.tmp_files.append((path, list(self.current)))
        self.current, self.current_bytes = {}, 0

    def finish(self) -> list[str]:
        if self.current or not self.tmp_files:
            self._flush()
        n = len(self.tmp_files)
        if n == 1:
            os.replace(self.tmp_files[0][0], self.directory / "model.safetensors")
            return ["model.safetensors"]
        names, weight_map = [], {}
        for i, (path, keys) in enumerate(self.tmp_files):
            name = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            os.replace(path, self.directory / name)
            names.append(name)
            weight_map.update(dict.fromkeys(keys, name))
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": dict(sorted(weight_map.items()))}
        (self.directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        return names


# ------------------------------------------------------------------------------------------------ convert


def _convert_config(src: Path, model_type: str) -> dict:
    path = src / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"No config.json in {src}")
    config = json.loads(path.read_text())
    config.pop("auto_map", None)  # points at the released custom modelling code
    config.pop("template", None)  # the xtuner chat template string (the tokenizer keeps its own)
    config["model_type"] = model_type
    config["architectures"] = [ARCHITECTURES[model_type]]
    return config


def _llm_hidden_size(config: dict) -> int | None:
    text = config.get("text_config") or {}
    return text.get("hidden_size", config.get("hidden_size"))


def convert_released_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, *,
                                layout: ReleasedLayout | None = None, sam2_meta: Sam2Meta | None = None,
                                model_type: str = "qwen3_vl", seg_token: str = "[SEG]",
                                max_shard_bytes: int = 5 * 1024**3, overwrite: bool = False) -> ConversionReport:
    """Split a released Sa2VA-style checkpoint directory into HF Qwen-VL + seg head + SAM2 checkpoint.

    Args:
        src: released checkpoint directory (``config.json``, safetensors or ``.bin`` weights, tokenizer files).
        dst: output directory (must not exist or be empty unless ``overwrite``).
        layout: key prefixes of the LLM, projection and SAM2 parts (default :class:`ReleasedLayout`); every key
            must match one.
        sam2_meta: SAM2 architecture of the grounding encoder (default :data:`RELEASED_SAM2_META`: SAM2 v1 Hiera-L
            at 1024 px, as released). Loading is strict, so a wrong config fails naming the keys.
        model_type: ``qwen3_vl`` (VideoSEG-O3) or ``qwen2_5_vl``.
        seg_token: the segmentation token; added to the tokenizer if missing (its id must then still fall inside
            the released embedding table).
        max_shard_bytes: LLM safetensors shard size.
        overwrite: replace a non-empty ``dst``.

    Returns:
        a :class:`ConversionReport`.
    """
    src, dst = Path(src), Path(dst)
    layout = layout or ReleasedLayout()
    sam2_meta = sam2_meta or RELEASED_SAM2_META
    if model_type not in ARCHITECTURES:
        raise ValueError(f"model_type {model_type!r} is not supported; use one of {sorted(ARCHITECTURES)}")
    if not src.is_dir():
        raise FileNotFoundError(f"Released checkpoint directory not found: {src}")
    report = build_output_dir(
        dst, overwrite, ".converting",
        lambda work: _convert_into(src, work, layout=layout, sam2_meta=sam2_meta, model_type=model_type,
                                   seg_token=seg_token, max_shard_bytes=max_shard_bytes))
    report.output_dir = dst
    report.sam2_checkpoint = dst / SAM2_FILENAME
    logger.info("converted %s -> %s: %d LLM tensors, [SEG] id %d, hidden %d", src, dst, report.llm_tensors,
                report.seg_token_id, report.hidden_size)
    return report


def build_output_dir(dst: Path, overwrite: bool, suffix: str, build: Callable[[Path], ReportT]) -> ReportT:
    """Run ``build(work)`` in a sibling work folder ``<dst><suffix>`` and move it to ``dst`` only when it succeeds,
    so a failed conversion or export leaves no half-written output behind.

    Raises:
        FileExistsError: ``dst`` exists and is not an empty directory, and ``overwrite`` is false.
    """
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())) and not overwrite:
        raise FileExistsError(f"Output directory {dst} is not empty; pass overwrite=True (--overwrite)")
    work = dst.with_name(dst.name + suffix)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        report = build(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if dst.is_dir():
        shutil.rmtree(dst)
    elif dst.exists():
        dst.unlink()
    os.replace(work, dst)
    return report


def _convert_into(src: Path, dst: Path, *, layout: ReleasedLayout, sam2_meta: Sam2Meta, model_type: str,
                  seg_token: str, max_shard_bytes: int) -> ConversionReport:
    """The conversion proper, writing into the (empty) directory ``dst``."""
    report = ConversionReport(output_dir=dst)

    # 1. config
    config = _convert_config(src, model_type)

    # 2. weights: stream the LLM part into shards, keep the (small) projection and SAM2 parts
    writer = _ShardWriter(dst, max_shard_bytes)
    proj_state: dict[str, torch.Tensor] = {}
    sam2_state: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    embed_rows: int | None = None
    for key, tensor in _iter_tensors(_weight_files(src)):
        routed = layout.route(key)
        if routed is None:
            unknown.append(key)
            continue
        part, name = routed
        if part == "llm":
            writer.add(name, tensor)
            report.llm_tensors += 1
            if name.endswith("embed_tokens.weight"):
                embed_rows = tensor.shape[0]
        elif part == "proj":
            proj_state[name] = tensor
        else:
            sam2_state[layout.sam2_key(name)] = tensor
    if unknown:
        raise ValueError(f"{len(unknown)} keys in {src} match none of the prefixes {layout}: {unknown[:8]}"
                         f"{'...' if len(unknown) > 8 else ''}")
    for part, state, prefix in (("LLM", report.llm_tensors, layout.llm_prefix),
                                ("projection", proj_state, layout.proj_prefix),
                                ("SAM2", sam2_state, layout.sam2_prefix)):
        if not state:
            raise ValueError(f"No {part} weights under prefix {prefix!r} in {src}; check the layout prefixes")
    writer.finish()
    (dst / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    # 3. tokenizer / processor files, and [SEG]
    for item in sorted(src.iterdir()):
        if item.name in COPIED_FILES:
            shutil.copy2(item, dst / item.name)
            report.copied_files.append(item.name)
        elif item.name != "config.json" and not item.name.endswith(_WEIGHT_SUFFIXES) \
                and not item.name.endswith(".index.json"):
            report.skipped_files.append(item.name)
    report.seg_token_id, report.seg_token_added = _ensure_seg_in_output(dst, seg_token, embed_rows)

    # 4. SAM2 grounding encoder -> SAM2 checkpoint (strict)
    sam2 = sam2_from_state_dict(sam2_state, sam2_meta, f"Grounding-encoder weights under {layout.sam2_prefix!r}")
    report.sam2_checkpoint = save_sam2_checkpoint(sam2, dst / SAM2_FILENAME, sam2_meta)

    # 5. seg head = text_hidden_fcs + the grounding encoder's prompt encoder / mask decoder
    weight0 = proj_state.get("0.weight")
    if weight0 is None or weight0.dim() != 2:
        raise ValueError(f"Projection weights lack '{layout.proj_prefix}0.weight' [H, H]; found {sorted(proj_state)}")
    hidden = int(weight0.shape[1])
    cfg_hidden = _llm_hidden_size(config)
    if cfg_hidden is not None and int(cfg_hidden) != hidden:
        raise ValueError(f"{layout.proj_prefix}0.weight expects hidden size {hidden} but config.json says "
                         f"{cfg_hidden}")
    head = build_seg_head(hidden, sam2)
    missing, unexpected = head.proj.load_state_dict(proj_state, strict=False)
    if missing or unexpected:
        raise ValueError(f"Projection weights under {layout.proj_prefix!r} do not match Linear-ReLU-Linear-Dropout: "
                         f"missing {list(missing)}, unexpected {list(unexpected)}")
    save_seg_head(head, dst, sam2_checkpoint=report.sam2_checkpoint, hidden_size=hidden, sam2_meta=sam2_meta)
    report.hidden_size = hidden
    return report


def _ensure_seg_in_output(dst: Path, seg_token: str, embed_rows: int | None) -> tuple[int, bool]:
    """Load the copied tokenizer, add ``seg_token`` if missing (saving it back), check the id fits the table."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(dst))
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"No usable tokenizer files were copied into {dst}: {err}") from err
    added = seg_token not in tokenizer.get_vocab()
    token_id = ensure_seg_token(tokenizer, None, seg_token)
    if added:
        tokenizer.save_pretrained(str(dst))
        logger.warning("%s was not in the released tokenizer; added as id %d (its embedding row is untrained)",
                       seg_token, token_id)
    if embed_rows is not None and token_id >= embed_rows:
        raise ValueError(f"{seg_token} has id {token_id} but the released embedding table has only {embed_rows} rows; "
                         "the checkpoint was not trained with this token")
    return token_id, added
