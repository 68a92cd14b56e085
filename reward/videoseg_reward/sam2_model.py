# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Build SAM2 models from the `sam2` package's own configs and load/save `sam2_hiera_*.pt`-style checkpoints.

One loader serves both the real released checkpoints (``{"model": state_dict}``) and the tiny random
checkpoints written by the test/demo factory (same layout plus a ``"videoseg_meta"`` entry that records the
config and the reduced image size, so a reload rebuilds the same architecture).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"

CONFIG_ALIASES = {
    "sam2_hiera_t": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_s": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_b+": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_l": "configs/sam2/sam2_hiera_l.yaml",
    "sam2.1_hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
"""Short names accepted wherever a SAM2 config is expected."""


@dataclass(frozen=True)
class Sam2Meta:
    """What is needed to rebuild the architecture a checkpoint was trained with."""

    config: str = DEFAULT_CONFIG
    """SAM2 config path inside the `sam2` package (or a short alias such as ``sam2.1_hiera_t``)."""
    image_size: int | None = None
    """Input resolution; ``None`` keeps the config's value (1024 for the released models)."""
    overrides: tuple[str, ...] = ()
    """Further Hydra overrides of the config (``"++model.<key>=<value>"``), e.g. a smaller image-encoder trunk for
    the tiny demo models; stored with the checkpoint so a reload rebuilds the same architecture."""

    def __post_init__(self) -> None:
        overrides = tuple(self.overrides)
        bad = [o for o in overrides if not isinstance(o, str) or not o.startswith("++model.") or "=" not in o]
        if bad:
            raise ValueError(f"Sam2Meta.overrides: expected '++model.<key>=<value>' strings, got {bad[:3]}")
        object.__setattr__(self, "overrides", overrides)


def resolve_config(config: str) -> str:
    """Map a short alias (``sam2.1_hiera_l``) to the package config path; pass full paths through."""
    config = CONFIG_ALIASES.get(config, config)
    if not config.endswith(".yaml"):
        raise ValueError(f"Unknown SAM2 config {config!r}; use a path like {DEFAULT_CONFIG!r} or one of "
                         f"{sorted(CONFIG_ALIASES)}")
    return config


def _overrides(meta: Sam2Meta) -> list[str]:
    size = [f"++model.image_size={int(meta.image_size)}"] if meta.image_size else []
    return size + list(meta.overrides)


def _ensure_sam2_hydra() -> None:
    """``sam2`` composes its configs through Hydra's global state, initialised when ``sam2`` is imported; anything that
    clears that state afterwards (another Hydra app, e.g. a trainer composing its own config) would make every later
    build fail with "GlobalHydra is not initialized". Re-initialise it for sam2's config module when needed."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        initialize_config_module("sam2", version_base="1.2")


def build_sam2_model(meta: Sam2Meta, *, video: bool = False, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Instantiate a SAM2 model with random weights (``video=True`` builds ``SAM2VideoPredictor``)."""
    from sam2.build_sam import build_sam2, build_sam2_video_predictor

    _ensure_sam2_hydra()

    builder = build_sam2_video_predictor if video else build_sam2
    return builder(resolve_config(meta.config), ckpt_path=None, device=str(device), mode="eval",
                   hydra_overrides_extra=_overrides(meta))


def read_sam2_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Sam2Meta | None]:
    """Read a SAM2 checkpoint file: returns ``(state_dict, meta)``; meta is ``None`` for released checkpoints."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SAM2 checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"SAM2 checkpoint {path} could not be read: {err}") from err
    if not isinstance(blob, dict) or "model" not in blob:
        raise ValueError(f"SAM2 checkpoint {path} has no 'model' entry (expected the sam2_hiera_*.pt layout)")
    meta = blob.get("videoseg_meta")
    return blob["model"], (Sam2Meta(**meta) if meta else None)


def load_sam2_model(checkpoint: str | os.PathLike, *, config: str | None = None, image_size: int | None = None,
                    video: bool = False, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build SAM2 and load a checkpoint strictly (missing or unexpected keys raise, naming them).

    Args:
        checkpoint: a released ``sam2*_hiera_*.pt`` or a file written by :func:`save_sam2_checkpoint`.
        config: overrides the config stored in the checkpoint (required for released checkpoints unless the
            default ``sam2.1_hiera_t`` is right).
        image_size: overrides the stored image size.
        video: build the video predictor (memory-based propagation) instead of the image model.
    """
    state_dict, stored = read_sam2_checkpoint(checkpoint)
    stored = stored or Sam2Meta()
    meta = Sam2Meta(config=config or stored.config, image_size=image_size or stored.image_size,
                    overrides=stored.overrides)
    return sam2_from_state_dict(state_dict, meta, f"SAM2 checkpoint {checkpoint}", video=video).to(device).eval()


def sam2_from_state_dict(state_dict: dict[str, torch.Tensor], meta: Sam2Meta, source: str, *,
                         video: bool = False) -> torch.nn.Module:
    """Build SAM2 for ``meta`` on CPU and load ``state_dict`` strictly; ``source`` names the weights in errors."""
    model = build_sam2_model(meta, video=video, device="cpu")
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as err:  # shape mismatches: the weights were built with other sizes
        shapes = [line.strip() for line in str(err).splitlines() if "size mismatch" in line]
        raise ValueError(f"{source} does not match SAM2 config {meta.config!r} with overrides "
                         f"{list(meta.overrides)}: {'; '.join(shapes[:3]) or err}") from err
    if missing or unexpected:
        raise ValueError(f"{source} does not match SAM2 config {meta.config!r}: "
                         f"missing keys {list(missing)[:8]}{'...' if len(missing) > 8 else ''}, "
                         f"unexpected keys {list(unexpected)[:8]}{'...' if len(unexpected) > 8 else ''}")
    model.videoseg_meta = meta
    return model


def save_sam2_checkpoint(model: torch.nn.Module, path: str | os.PathLike, meta: Sam2Meta) -> Path:
    """Write ``{"model": state_dict, "videoseg_meta": {...}}`` (the released layout plus rebuild metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    stored = {"config": meta.config, "image_size": meta.image_size}
    if meta.overrides:
        stored["overrides"] = list(meta.overrides)
    torch.save({"model": model.state_dict(), "videoseg_meta": stored}, tmp)
    os.replace(tmp, path)
    return path


def build_random_sam2_checkpoint(path: str | os.PathLike, meta: Sam2Meta, seed: int = 0) -> Path:
    """Seeded random-weight SAM2 written to ``path`` (used for tiny test/demo models)."""
    torch.manual_seed(seed)
    model = build_sam2_model(meta)
    return save_sam2_checkpoint(model, path, meta)
