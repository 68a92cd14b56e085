# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Frozen SAM2 image encoder that turns frames into the features the seg head's mask decoder needs (docs/method.md §1).

Dimension letters: K frames; S the SAM2 input side (``image_size``: 1024 for the released models); C = 256 (SAM2
``hidden_dim``); h = S / 16 the image-embedding side.

What is computed matches ``SAM2ImagePredictor.set_image`` (image mode, no memory): Hiera + FPN, then
``no_mem_embed`` added to the lowest-resolution level. One deliberate difference: by default the two high-resolution
levels are returned BEFORE the mask decoder's ``conv_s0``/``conv_s1`` projections (``SAM2Base.forward_image`` applies
them inside the encoder). Those convolutions belong to the mask decoder, which is trainable in RL (docs/method.md
§1), so
:class:`~videoseg_o3_verl.model.seg_head.SegHead` applies its own (trainable) copy; projecting here with frozen
weights would silently use stale convolutions once the head has been updated. ``project_high_res=True`` projects
here instead (8x less memory for level 0, frozen projections); the head sees the flag and skips its own.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean on the 0-1 scale (= [123.675, 116.28, 103.53] on 0-255, docs/method.md §3.1)."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel std on the 0-1 scale (= [58.395, 57.12, 57.375] on 0-255, docs/method.md §3.1)."""


@dataclass(frozen=True)
class FrameFeatures:
    """SAM2 features of K frames, ready for the mask decoder."""

    image_embed: torch.Tensor
    """[K, C, h, h] lowest-resolution FPN level with ``no_mem_embed`` added."""
    high_res_feats: tuple[torch.Tensor, ...]
    """``([K, C0, 4h, 4h], [K, C1, 2h, 2h])`` high-resolution levels (empty when SAM2 does not use them)."""
    high_res_projected: bool = False
    """True when ``high_res_feats`` already went through ``conv_s0``/``conv_s1`` (C0 = C/8, C1 = C/4); False: raw C."""

    def __post_init__(self) -> None:
        k = self.image_embed.shape[0]
        for i, f in enumerate(self.high_res_feats):
            if f.shape[0] != k:
                raise ValueError(f"FrameFeatures: high_res_feats[{i}] has {f.shape[0]} frames, image_embed has {k}")

    def __len__(self) -> int:
        return self.image_embed.shape[0]

    @property
    def device(self) -> torch.device:
        return self.image_embed.device

    @property
    def dtype(self) -> torch.dtype:
        return self.image_embed.dtype

    def select(self, indices: Sequence[int] | torch.Tensor | slice | int) -> FrameFeatures:
        """Frames ``indices`` (repeats allowed); an int keeps the frame dimension (length 1)."""
        if isinstance(indices, int):
            indices = [indices]
        if isinstance(indices, slice):
            return FrameFeatures(self.image_embed[indices], tuple(f[indices] for f in self.high_res_feats),
                                 self.high_res_projected)
        idx = torch.as_tensor(indices, dtype=torch.long)
        if idx.dim() != 1:
            raise ValueError(f"FrameFeatures.select expects 1-D indices, got shape {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < -len(self) or int(idx.max()) >= len(self)):
            raise IndexError(f"FrameFeatures.select: indices {idx.tolist()} out of range for {len(self)} frames")
        idx = (idx % max(len(self), 1)).to(self.device)  # negative indices count from the end
        return FrameFeatures(self.image_embed.index_select(0, idx),
                             tuple(f.index_select(0, idx) for f in self.high_res_feats), self.high_res_projected)

    __getitem__ = select

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> FrameFeatures:
        """Move/cast every tensor (floating tensors only are cast)."""
        return FrameFeatures(self.image_embed.to(device=device, dtype=dtype),
                             tuple(f.to(device=device, dtype=dtype) for f in self.high_res_feats),
                             self.high_res_projected)

    def clone(self) -> FrameFeatures:
        """Deep copy of every tensor."""
        return FrameFeatures(self.image_embed.clone(), tuple(f.clone() for f in self.high_res_feats),
                             self.high_res_projected)

    @staticmethod
    def cat(parts: Sequence[FrameFeatures]) -> FrameFeatures:
        """Concatenate along the frame dimension (all parts must agree on ``high_res_projected``)."""
        if not parts:
            raise ValueError("FrameFeatures.cat needs at least one part")
        flags = {p.high_res_projected for p in parts}
        if len(flags) != 1:
            raise ValueError("FrameFeatures.cat: parts mix projected and raw high-res features")
        n_levels = len(parts[0].high_res_feats)
        return FrameFeatures(torch.cat([p.image_embed for p in parts]),
                             tuple(torch.cat([p.high_res_feats[i] for p in parts]) for i in range(n_levels)),
                             parts[0].high_res_projected)


class FrameEncoder:
    """Frozen SAM2 image encoder + ``no_mem_embed`` with a small LRU feature cache (not a trained module).

    Build it with :meth:`from_sam2`. The SAM2 image encoder is shared with the given model (not copied) and set to
    ``requires_grad=False`` / eval mode; :meth:`encode` always runs under ``torch.no_grad()``.

    Memory note: raw high-res features are C = 256 channels at S/4 (64 MiB per frame in fp32 at S = 1024), so keep
    ``cache_size`` small at full resolution, or pass ``project_high_res=True`` (16 MiB per frame, frozen
    projections).
    """

    def __init__(self, *, image_encoder: torch.nn.Module, no_mem_embed: torch.Tensor | None, image_size: int,
                 num_feature_levels: int = 3, use_high_res_features: bool = True,
                 high_res_proj: tuple[torch.nn.Module, torch.nn.Module] | None = None, cache_size: int = 32,
                 encode_batch_size: int = 8) -> None:
        if cache_size < 0:
            raise ValueError(f"FrameEncoder: cache_size must be >= 0, got {cache_size}")
        if encode_batch_size < 1:
            raise ValueError(f"FrameEncoder: encode_batch_size must be >= 1, got {encode_batch_size}")
        self.image_encoder = image_encoder.eval().requires_grad_(False)
        self.no_mem_embed = None if no_mem_embed is None else no_mem_embed.detach().clone()
        self.image_size = int(image_size)
        self.num_feature_levels = int(num_feature_levels)
        self.use_high_res_features = bool(use_high_res_features)
        self.high_res_proj = None
        if high_res_proj is not None:
            self.high_res_proj = tuple(m.eval().requires_grad_(False) for m in high_res_proj)
        self.cache_size = int(cache_size)
        self.encode_batch_size = int(encode_batch_size)
        self._cache: OrderedDict[Hashable, FrameFeatures] = OrderedDict()
        self.cache_hits = 0
        """Number of frames served from the cache since the last :meth:`clear_cache`."""
        self.cache_misses = 0
        """Number of frames run through the image encoder since the last :meth:`clear_cache`."""
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
        self._mean, self._std = mean, std

    @classmethod
    def from_sam2(cls, sam2_model: torch.nn.Module, *, project_high_res: bool = False, cache_size: int = 32,
                  encode_batch_size: int = 8) -> FrameEncoder:
        """Take the image encoder, ``no_mem_embed`` and settings from a SAM2 model (``SAM2Base`` or a predictor).

        ``project_high_res=True`` copies the model's (current, frozen) ``conv_s0``/``conv_s1`` and applies them here.
        """
        model = getattr(sam2_model, "model", sam2_model)  # SAM2ImagePredictor wraps the model
        for attr in ("image_encoder", "image_size", "sam_mask_decoder"):
            if not hasattr(model, attr):
                raise TypeError(f"FrameEncoder.from_sam2 needs a SAM2 model (SAM2Base), got {type(model).__name__} "
                                f"without {attr!r}")
        use_hr = bool(getattr(model, "use_high_res_features_in_sam", False))
        proj = None
        if project_high_res and use_hr:
            dec = model.sam_mask_decoder
            proj = (copy.deepcopy(dec.conv_s0), copy.deepcopy(dec.conv_s1))
        no_mem = model.no_mem_embed if getattr(model, "directly_add_no_mem_embed", False) else None
        return cls(image_encoder=model.image_encoder, no_mem_embed=no_mem, image_size=model.image_size,
                   num_feature_levels=getattr(model, "num_feature_levels", 3), use_high_res_features=use_hr,
                   high_res_proj=proj, cache_size=cache_size, encode_batch_size=encode_batch_size)

    # ------------------------------------------------------------------------------------------------ device

    @property
    def device(self) -> torch.device:
        return next(self.image_encoder.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.image_encoder.parameters()).dtype

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> FrameEncoder:
        """Move the encoder (and the cached features) in place; returns self."""
        self.image_encoder.to(device=device, dtype=dtype)
        if self.no_mem_embed is not None:
            self.no_mem_embed = self.no_mem_embed.to(device=device, dtype=dtype)
        if self.high_res_proj is not None:
            for m in self.high_res_proj:
                m.to(device=device, dtype=dtype)
        for key, feats in self._cache.items():
            self._cache[key] = feats.to(device=device, dtype=dtype)
        return self

    # ----------------------------------------------------------------------------------------- preprocessing

    def preprocess(self, images: Sequence[Image.Image] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Resize to S x S (no aspect keeping) and normalise with the ImageNet mean/std (docs/method.md §3.1).

        Resizing uses PIL bicubic (PIL's default for ``Image.resize``, as the released ``DirectResize``).

        Args:
            images: a list of K RGB ``PIL.Image``, or a uint8 array/tensor [K, H, W, 3].

        Returns:
            [K, 3, S, S] float32 on the encoder's device.
        """
        if isinstance(images, torch.Tensor):
            images = images.detach().cpu().numpy()
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
                raise ValueError(f"FrameEncoder.preprocess: arrays must be uint8 [K, H, W, 3], got {images.dtype} "
                                 f"{images.shape}")
            pils = [Image.fromarray(frame) for frame in images]
        elif isinstance(images, Sequence) and not isinstance(images, str):
            pils = []
            for i, img in enumerate(images):
                if not isinstance(img, Image.Image):
                    raise TypeError(f"FrameEncoder.preprocess: images[{i}] is {type(img).__name__}, expected "
                                    "PIL.Image (or pass one uint8 array [K, H, W, 3])")
                pils.append(img.convert("RGB") if img.mode != "RGB" else img)
        else:
            raise TypeError(f"FrameEncoder.preprocess: expected a list of PIL images or a uint8 array [K, H, W, 3], "
                            f"got {type(images).__name__}")
        s = self.image_size
        if not pils:
            return torch.zeros(0, 3, s, s, device=self.device)
        arr = np.stack([np.asarray(p.resize((s, s), Image.Resampling.BICUBIC)) for p in pils])  # [K, S, S, 3]
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)  # [K, 3, S, S]
        x = (x - self._mean) / self._std
        return x.to(self.device)

    # ------------------------------------------------------------------------------------------------ encode

    @torch.no_grad()
    def _encode_tensor(self, x: torch.Tensor) -> FrameFeatures:
        """Features of preprocessed frames [K, 3, S, S] (no cache)."""
        x = x.to(device=self.device, dtype=self.dtype)
        backbone_out = self.image_encoder(x)
        fpn = list(backbone_out["backbone_fpn"][-self.num_feature_levels:])  # high-res first, [K, C, *, *] each
        embed = fpn[-1]
        if self.no_mem_embed is not None:
            # SAM2ImagePredictor.set_image adds no_mem_embed ([1, 1, C]) to the flattened [HW, K, C] lowest level;
            # adding it as [1, C, 1, 1] to the [K, C, h, w] map is the same elementwise sum.
            embed = embed + self.no_mem_embed.reshape(1, -1, 1, 1).to(embed.dtype)
        high_res: tuple[torch.Tensor, ...] = ()
        if self.use_high_res_features:
            high_res = tuple(fpn[:-1])
            if self.high_res_proj is not None:
                high_res = (self.high_res_proj[0](high_res[0]), self.high_res_proj[1](high_res[1]))
        return FrameFeatures(embed, high_res, high_res_projected=self.high_res_proj is not None)

    def encode(self, images: Sequence[Image.Image] | np.ndarray | torch.Tensor,
               cache_keys: Sequence[Hashable] | None = None) -> FrameFeatures:
        """Encode K frames under ``torch.no_grad()``.

        Args:
            images: K PIL images or a uint8 array [K, H, W, 3] (preprocessed here), or an already preprocessed float
                tensor [K, 3, S, S].
            cache_keys: optional K hashable keys (e.g. ``(video_id, frame_index)``); frames whose key is cached are
                not re-encoded, and new ones are stored (LRU, at most ``cache_size`` frames). A key must always name
                the same pixels: the cache does not look at the images of a hit.

        Returns:
            :class:`FrameFeatures` with K entries in input order.
        """
        is_pre = isinstance(images, torch.Tensor) and images.is_floating_point()
        if is_pre:
            if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (self.image_size,) * 2:
                raise ValueError(f"FrameEncoder.encode: preprocessed frames must be [K, 3, {self.image_size}, "
                                 f"{self.image_size}], got {tuple(images.shape)}")
        num = len(images)
        if cache_keys is not None and len(cache_keys) != num:
            raise ValueError(f"FrameEncoder.encode: {len(cache_keys)} cache keys for {num} frames")
        if cache_keys is None or self.cache_size == 0:
            x = images if is_pre else self.preprocess(images)
            self.cache_misses += num
            return self._encode_chunks(x)

        first_of: dict[Hashable, int] = {}
        for i, key in enumerate(cache_keys):
            first_of.setdefault(key, i)

        def load(keys: list[Hashable]):
            rows = [first_of[key] for key in keys]
            return images[rows] if isinstance(images, np.ndarray | torch.Tensor) else [images[i] for i in rows]

        return self.encode_keys(cache_keys, load)

    def encode_keys(self, keys: Sequence[Hashable], load: Callable[[list[Hashable]], Any]) -> FrameFeatures:
        """Features of the frames named by ``keys`` (LRU-cached), loading only the frames that are not cached.

        Args:
            keys: K hashable keys, e.g. ``(video_path, frame_index)``; repeats are encoded once. A key must always
                name the same pixels: the cache does not look at the images of a hit.
            load: ``load(missing_keys)`` returns their frames (PIL images, a uint8 array [M, H, W, 3] or a
                preprocessed float tensor [M, 3, S, S]), in the order of ``missing_keys``.

        Returns:
            :class:`FrameFeatures` with K entries in the order of ``keys``.
        """
        todo = list(dict.fromkeys(key for key in keys if key not in self._cache))
        self.cache_hits += len(keys) - len(todo)
        self.cache_misses += len(todo)
        fresh: dict[Hashable, FrameFeatures] = {}
        if todo:
            frames = load(todo)
            if len(frames) != len(todo):
                raise ValueError(f"FrameEncoder.encode_keys: load returned {len(frames)} frames for {len(todo)} keys")
            is_pre = isinstance(frames, torch.Tensor) and frames.is_floating_point()
            feats = self._encode_chunks(frames if is_pre else self.preprocess(frames))
            for j, key in enumerate(todo):
                # clone: a view would keep the whole encoded batch alive in the cache
                fresh[key] = feats.select(slice(j, j + 1)).clone()
        parts = []
        for key in keys:
            part = fresh.get(key)
            if part is None:
                part = self._cache[key]
                self._cache.move_to_end(key)
            parts.append(part)
        if self.cache_size:
            for key, part in fresh.items():
                self._cache[key] = part
                self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return FrameFeatures.cat(parts)

    def _encode_chunks(self, x: torch.Tensor) -> FrameFeatures:
        if x.shape[0] == 0:
            raise ValueError("FrameEncoder.encode: no frames given")
        chunks = [self._encode_tensor(x[i:i + self.encode_batch_size])
                  for i in range(0, x.shape[0], self.encode_batch_size)]
        return chunks[0] if len(chunks) == 1 else FrameFeatures.cat(chunks)

    def clear_cache(self) -> None:
        """Drop every cached frame and reset the hit/miss counters."""
        self._cache.clear()
        self.cache_hits = 0
        self.cache_misses = 0

    def cached_keys(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        return list(self._cache)
