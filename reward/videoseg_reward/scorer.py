# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`Sam2Scorer`: one SAM2 model that segments videos from keyframe prompts and scores the masks (no Ray).

Decoding modes (see :data:`videoseg_reward.schemas.MODES`):

* ``image`` (docs/method.md §1, training-time): every requested frame is decoded independently with the same
  prompt, no memory: ``image features + no_mem_embed`` -> SAM heads. An embedding prompt ``e`` becomes the
  sparse prompt ``[not-a-point embedding, e]`` (``[n, 2, 256]``) with the learned no-mask dense prompt; the
  decoder runs with ``multimask_output=True`` and the mask with the highest predicted IoU is kept. No object
  score gating (raw decoder logits, as in the released code). Box/point prompts go through SAM2's prompt encoder
  (boxes as two corner points with labels 2/3); a mask prompt is the dense prompt, and on the keyframe it is
  the answer itself (SAM2's ``use_mask_input_as_output_without_sam`` convention, logits ``±10``).
* ``propagate`` (docs/method.md §3.4, inference-time): SAM2 memory propagation over the requested frames (taken in
  index order, treated as consecutive) forward from the keyframe and then backward from it. The keyframe is
  the conditioning frame: masks via ``add_new_mask``, boxes/points via ``add_new_points_or_box``, and an
  embedding by first decoding the keyframe mask in image mode (at the original frame size) and feeding it
  with ``add_new_mask``. With
  ``inject_per_frame=True`` (embeddings only) the embedding is also appended to the sparse prompt of every
  propagated frame (a forward hook on the prompt encoder), which is Sa2VA's
  ``lang_embed_injecting_per_frame``. Difference to the authors' code: their keyframe is decoded with the
  embedding inside the tracker (``add_language_embd``) rather than fed back as a mask.
* ``propagate_language`` (embedding prompts only): the released inference protocol,
  :func:`videoseg_reward.propagation.propagate_language`, per object over every frame of the video (its own
  frame preprocessing, no feature cache); ``frame_indices`` only selects the returned frames.

All masks are returned at the original frame size: low-res (``image_size / 4``) logits are upsampled
bilinearly (``align_corners=False``) and thresholded ``> 0``.

Frames are resized to ``image_size x image_size`` (bilinear, antialiased, no aspect preservation) and
normalised with the ImageNet mean/std, as SAM2 does. Image-encoder outputs are cached per
``(video key, frame index, model version)`` in an LRU of ``feature_cache_frames`` frames; the version is in
the key because SAM2 applies the (trainable) mask decoder's ``conv_s0``/``conv_s1`` inside ``forward_image``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from videoseg_reward.batching import RequestCancelled
from videoseg_reward.frames import (
    MAX_VIDEO_FRAMES,
    array_cache_key,
    probe_video,
    read_frames,
    resolve_under_roots,
    video_cache_key,
)
from videoseg_reward.masks import score_masks
from videoseg_reward.propagation import propagate_language
from videoseg_reward.sam2_model import load_sam2_model
from videoseg_reward.schemas import (
    MODES,
    Prompts,
    SegmentResult,
    VideoRef,
    as_prompts,
    check_frame_indices,
)

logger = logging.getLogger(__name__)

DECODER_PREFIXES = ("sam_prompt_encoder.", "sam_mask_decoder.")
"""State-dict prefixes that :meth:`Sam2Scorer.update_decoder_weights` accepts (docs/method.md §1 trainable parts)."""

MAX_VERSION_AHEAD = 10**6
"""How far a decoder-weights version may lie beyond the larger of the current version and the current Unix time in
milliseconds (so step counters and millisecond timestamps both work): a push far in the future (say 10**30) would
otherwise block every later push."""


_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_MASK_LOGIT = 10.0  # SAM2 turns an input mask into logits +-10 when it uses it as the output


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; anything else is passed to ``torch.device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class _Video:
    """A video resolved for one call: cache key, length, frame size (when known) and a frame loader."""

    def __init__(self, key: str, num_frames: int, loader: Any, size: tuple[int, int] | None = None):
        self.key, self.num_frames, self.load, self.size = key, num_frames, loader, size


class _FrameReader:
    """A :class:`_Video` as the frame sequence :func:`propagate_language` reads one frame at a time."""

    def __init__(self, vid: _Video):
        self.vid = vid

    def __len__(self) -> int:
        return self.vid.num_frames

    def get_frame(self, index: int) -> np.ndarray:
        return self.vid.load([index])[0]


class _NoFrames:
    """``inference_state["images"]`` stand-in: every feature is pre-filled, so SAM2 must never read a frame."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx: int) -> torch.Tensor:
        raise RuntimeError(f"SAM2 asked for frame {idx} although all frame features were pre-filled (bug)")


class Sam2Scorer:
    """One SAM2 model (video predictor) with a frame-feature cache and versioned decoder weights.

    Thread-safe: calls are serialised by an internal lock.

    Args:
        checkpoint: SAM2 checkpoint (released ``sam2*_hiera_*.pt`` or :func:`save_sam2_checkpoint` output).
        config: SAM2 config override (alias or package path); default: the one stored in the checkpoint.
        image_size: input-resolution override; default: the stored one.
        device: ``"auto"`` (cuda if available, else cpu), ``"cpu"``, ``"cuda:1"``, ...
        video_roots: directories video paths must resolve under; ``None`` disables the check (library use).
        feature_cache_frames: LRU capacity of the frame-feature cache (frames).
        encoder_batch_size: frames per image-encoder forward.
        max_video_frames: most frames a video on disk may have (longer ones are refused before decoding).
    """

    def __init__(self, checkpoint: str | os.PathLike, *, config: str | None = None, image_size: int | None = None,
                 device: str | torch.device = "auto", video_roots: Sequence[str | os.PathLike] | None = None,
                 feature_cache_frames: int = 64, encoder_batch_size: int = 4,
                 max_video_frames: int = MAX_VIDEO_FRAMES):
        if feature_cache_frames < 0 or encoder_batch_size < 1:
            raise ValueError(f"feature_cache_frames must be >= 0 and encoder_batch_size >= 1, got "
                             f"{feature_cache_frames} and {encoder_batch_size}")
        self.device = resolve_device(device)
        self.model = load_sam2_model(checkpoint, config=config, image_size=image_size, video=True, device=self.device)
        self.image_size = int(self.model.image_size)
        if getattr(self.model, "fill_hole_area", 0) > 0 and not _has_sam2_extension():
            # SAM2 would warn and skip hole filling on every frame without its compiled extension
            self.model.fill_hole_area = 0
        self.checkpoint = str(checkpoint)
        self.video_roots = None if video_roots is None else tuple(os.fspath(r) for r in video_roots)
        self.feature_cache_frames = int(feature_cache_frames)
        self.encoder_batch_size = int(encoder_batch_size)
        self.max_video_frames = int(max_video_frames)
        self._features: OrderedDict[tuple[str, int, int], dict[str, list[torch.Tensor]]] = OrderedDict()
        self._video_meta: OrderedDict[str, tuple[int, tuple[int, int] | None]] = OrderedDict()
        self._pos_enc: dict[tuple, list[torch.Tensor]] = {}
        self._version = 0
        self._lock = threading.RLock()
        self._meta_lock = threading.Lock()  # the video-metadata LRU, also used by probe() without the model lock
        # counters: frames run through the image encoder, feature-cache hits, segment calls
        self.stats = {"encoded_frames": 0, "cache_hits": 0, "segment_calls": 0}
        mean = torch.tensor(_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(_STD, device=self.device).view(1, 3, 1, 1)
        self._norm = (mean, std)

    # ----------------------------------------------------------------------------------------------------------
    # Public API
    # ----------------------------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Version of the prompt-encoder/mask-decoder weights (0 = as loaded from the checkpoint)."""
        return self._version

    def segment(self, video: Any, prompts: Prompts | Mapping, mode: str, keyframe: int,
                frame_indices: Sequence[int] | None = None, *, inject_per_frame: bool = False,
                should_stop: Callable[[], bool] | None = None) -> SegmentResult:
        """Segment ``n`` objects prompted on ``keyframe`` over ``frame_indices``.

        Args:
            video: a path (frames folder or video file, checked against ``video_roots``), a
                :class:`VideoRef`, or ``[T, H, W, 3]`` uint8 RGB frames.
            prompts: :class:`Prompts` (or a dict accepted by :func:`as_prompts`) with ``n`` objects.
            mode: ``"image"``, ``"propagate"`` or ``"propagate_language"`` (module docstring).
            keyframe: absolute index of the frame the prompts refer to (the conditioning frame).
            frame_indices: absolute frames to return (unique; any order); ``None`` = all frames.
            inject_per_frame: propagate mode with embedding prompts only: inject the embedding on every frame.
            should_stop: polled between frames; when it returns True the call raises :class:`RequestCancelled`
                (a caller that timed out or went away releases the model within one frame's work).

        Returns:
            :class:`SegmentResult` with ``masks [n, T, H, W]`` and ``keyframe_masks [n, H, W]`` bool.
        """
        prompts = as_prompts(prompts)
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {list(MODES)}, got {mode!r}")
        if inject_per_frame and (mode != "propagate" or prompts.kind != "embedding"):
            raise ValueError("inject_per_frame=True needs mode='propagate' and embedding prompts "
                             f"(got mode={mode!r}, prompts of type {prompts.kind!r}; 'propagate_language' always "
                             "injects)")
        if mode == "propagate_language" and prompts.kind != "embedding":
            raise ValueError(f"mode 'propagate_language' needs embedding prompts, got prompts of type {prompts.kind!r}")
        stop = _stopper(should_stop)
        with self._lock, torch.inference_mode():
            stop()
            self.stats["segment_calls"] += 1
            vid = self._open_video(video)
            frames = check_frame_indices(frame_indices, vid.num_frames)
            if isinstance(keyframe, bool) or not isinstance(keyframe, (int, np.integer)) \
                    or not 0 <= int(keyframe) < vid.num_frames:
                raise ValueError(f"keyframe: expected an integer in [0, {vid.num_frames}), got {keyframe!r}")
            keyframe = int(keyframe)
            if mode == "propagate_language":
                video_masks = np.stack([propagate_language(self.model, _FrameReader(vid), keyframe, e)
                                        for e in prompts.embeddings])
                return SegmentResult(masks=video_masks[:, list(frames)], keyframe_masks=video_masks[:, keyframe],
                                     frame_indices=tuple(frames), keyframe=keyframe, mode=mode,
                                     model_version=self._version)
            needed = sorted(set(frames) | {keyframe})
            if vid.size is not None:
                _check_prompt_size(prompts, *vid.size)  # before any frame is decoded
            feats, (height, width) = self._get_features(vid, needed, stop)
            _check_prompt_size(prompts, height, width)
            if mode == "image":
                logits = {}
                for f in needed:
                    stop()
                    logits[f] = self._decode_image(feats[f], prompts, height, width, is_keyframe=f == keyframe)
            else:
                logits = self._propagate(feats, needed, keyframe, prompts, height, width, inject_per_frame, stop)
            masks = {f: self._to_masks(v, height, width) for f, v in logits.items()}
            return SegmentResult(masks=np.stack([masks[f] for f in frames], axis=1), keyframe_masks=masks[keyframe],
                                 frame_indices=tuple(frames), keyframe=keyframe, mode=mode,
                                 model_version=self._version)

    def score(self, video: Any, prompts: Prompts | Mapping, mode: str, keyframe: int, gt_masks: Any,
              frame_indices: Sequence[int] | None = None, *, gt_keyframe: Any = None,
              inject_per_frame: bool = False, should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Segment (as :meth:`segment`) and score against GT with :func:`videoseg_reward.masks.score_masks`.

        ``gt_masks``: ``[T, H, W]`` shared by all objects or ``[n, T, H, W]``, arrays or per-frame RLE lists
        aligned with ``frame_indices``; ``gt_keyframe`` is needed for ``keyframe_iou`` only when the keyframe
        is not among ``frame_indices``.
        """
        result = self.segment(video, prompts, mode, keyframe, frame_indices, inject_per_frame=inject_per_frame,
                              should_stop=should_stop)
        return score_masks(result, gt_masks, gt_keyframe)

    def probe(self, video: Any) -> tuple[int, int, int]:
        """``(num_frames, height, width)`` of ``video`` from file headers (no pixel decoding; cached).

        Does not wait for a running ``segment`` (only the video-metadata cache is locked), so a server can
        validate new requests while the model is busy.
        """
        vid = self._open_video(video)
        return vid.num_frames, *vid.size

    def decoder_state_dict(self) -> dict[str, torch.Tensor]:
        """CPU copies of the prompt-encoder and mask-decoder weights (the keys :meth:`update_decoder_weights`
        takes)."""
        with self._lock:
            return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()
                    if k.startswith(DECODER_PREFIXES)}

    def update_decoder_weights(self, state_dict: Mapping[str, Any], version: int) -> int:
        """Replace (some of) the prompt-encoder/mask-decoder weights and bump the version.

        Args:
            state_dict: keys under ``sam_prompt_encoder.`` / ``sam_mask_decoder.`` only (a subset is allowed),
                finite tensors or arrays of the existing shapes.
            version: new version; greater than :attr:`version` and at most :data:`MAX_VERSION_AHEAD` beyond
                ``max(version, Unix time in ms)``.

        Returns:
            The new version.

        Raises:
            ValueError: stale or far-future version, empty dict, foreign/unknown keys, shape mismatches, or NaN/Inf
                values (nothing changes).
        """
        if isinstance(version, bool) or not isinstance(version, (int, np.integer)):
            raise ValueError(f"version: expected an integer, got {version!r}")
        if not isinstance(state_dict, Mapping) or not state_dict:
            raise ValueError("state_dict: expected a non-empty mapping of decoder weights")
        with self._lock:
            if int(version) <= self._version:
                raise ValueError(f"version {version} is not newer than the current version {self._version}")
            limit = max(self._version, time.time_ns() // 1_000_000) + MAX_VERSION_AHEAD
            if int(version) > limit:
                raise ValueError(f"version {version} is too far ahead (the limit now is {limit}: the current version "
                                 f"or the Unix time in ms, plus {MAX_VERSION_AHEAD})")
            current = self.model.state_dict()
            foreign = [k for k in state_dict if not (isinstance(k, str) and k.startswith(DECODER_PREFIXES))]
            if foreign:
                raise ValueError(f"state_dict: only keys under {list(DECODER_PREFIXES)} may be updated, got "
                                 f"{foreign[:5]}{'...' if len(foreign) > 5 else ''}")
            unknown = [k for k in state_dict if k not in current]
            if unknown:
                raise ValueError(f"state_dict: unknown keys {unknown[:5]}{'...' if len(unknown) > 5 else ''}")
            new = {}
            for key, value in state_dict.items():
                tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
                if tuple(tensor.shape) != tuple(current[key].shape):
                    raise ValueError(f"state_dict[{key!r}]: shape {list(tensor.shape)} != expected "
                                     f"{list(current[key].shape)}")
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise ValueError(f"state_dict[{key!r}]: contains NaN or infinite values")
                new[key] = tensor
            with torch.no_grad():
                for key, tensor in new.items():
                    current[key].copy_(tensor.to(current[key].device, current[key].dtype))
            self._version = int(version)
            self._features.clear()  # conv_s0/conv_s1 of the decoder are baked into the cached features
            logger.info("SAM2 decoder weights updated to version %d (%d tensors)", self._version, len(new))
            return self._version

    def clear_cache(self) -> None:
        """Drop every cached frame feature."""
        with self._lock, self._meta_lock:
            self._features.clear()
            self._video_meta.clear()

    def prefetch(self, video: Any, frame_indices: Sequence[int] | None = None, *,
                 should_stop: Callable[[], bool] | None = None) -> int:
        """Compute (batched) and cache the features of ``frame_indices``; returns how many were encoded."""
        with self._lock, torch.inference_mode():
            vid = self._open_video(video)
            frames = check_frame_indices(frame_indices, vid.num_frames)
            before = self.stats["encoded_frames"]
            self._get_features(vid, sorted(frames), _stopper(should_stop))
            return self.stats["encoded_frames"] - before

    def video_key(self, video: Any) -> str:
        """Cache key of ``video`` (raises like :meth:`segment` for a bad or forbidden path)."""
        with self._lock:
            return self._open_video(video).key

    # ----------------------------------------------------------------------------------------------------------
    # Videos and features
    # ----------------------------------------------------------------------------------------------------------

    def _open_video(self, video: Any) -> _Video:
        if isinstance(video, np.ndarray):
            if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or video.shape[0] == 0:
                raise ValueError(f"video array: expected [T, H, W, 3] uint8 with T >= 1, got shape "
                                 f"{list(video.shape)} dtype {video.dtype}")
            return _Video(array_cache_key(video), int(video.shape[0]), lambda idx: video[list(idx)],
                          (int(video.shape[1]), int(video.shape[2])))
        if isinstance(video, Mapping):
            video = VideoRef(path=video["path"], frame_ids=video.get("frame_ids"))
        if isinstance(video, (str, os.PathLike)):
            video = VideoRef(path=os.fspath(video))
        if not isinstance(video, VideoRef):
            raise TypeError(f"video: expected a path, VideoRef or [T, H, W, 3] uint8 array, got {type(video).__name__}")
        path = resolve_under_roots(video.path, self.video_roots)
        frame_ids = list(video.frame_ids) if video.frame_ids is not None else None
        if frame_ids is not None and len(frame_ids) > self.max_video_frames:  # before touching any file
            raise ValueError(f"video.frame_ids: {len(frame_ids)} frames; the limit is {self.max_video_frames}")
        key = video_cache_key(path, frame_ids)
        with self._meta_lock:
            meta = self._video_meta.get(key)
        if meta is None or meta[1] is None:
            num_frames, height, width = probe_video(path, frame_ids, self.video_roots, self.max_video_frames)
            meta = (num_frames, (height, width))
        self._remember_video(key, *meta)
        roots, limit = self.video_roots, self.max_video_frames
        return _Video(key, meta[0], lambda idx: read_frames(path, idx, frame_ids, roots, limit), meta[1])

    def _remember_video(self, key: str, num_frames: int, size: tuple[int, int] | None = None) -> None:
        with self._meta_lock:
            old = self._video_meta.pop(key, None)
            self._video_meta[key] = (num_frames, size or (old[1] if old else None))
            while len(self._video_meta) > 1024:
                self._video_meta.popitem(last=False)

    def _get_features(self, vid: _Video, frames: list[int],
                      stop: Callable[[], None] = lambda: None) -> tuple[dict[int, dict], tuple[int, int]]:
        """Features of ``frames`` (cache first, the rest encoded in batches) and the frame size ``(H, W)``."""
        out, missing = {}, []
        for f in frames:
            entry = self._features.get((vid.key, f, self._version))
            if entry is None:
                missing.append(f)
            else:
                self._features.move_to_end((vid.key, f, self._version))
                self.stats["cache_hits"] += 1
                out[f] = entry
        with self._meta_lock:
            size = self._video_meta.get(vid.key, (None, None))[1]
        if missing or size is None:
            pixels = vid.load(missing or frames[:1])
            frame_size = (int(pixels.shape[1]), int(pixels.shape[2]))
            if size is not None and frame_size != size:
                raise ValueError(f"video {vid.key}: frame size {frame_size} differs from the cached size {size}")
            size = frame_size
            self._remember_video(vid.key, vid.num_frames, size)
            for start in range(0, len(missing), self.encoder_batch_size):
                stop()
                chunk = missing[start:start + self.encoder_batch_size]
                entries = self._encode(pixels[start:start + len(chunk)])
                for f, entry in zip(chunk, entries, strict=True):
                    out[f] = entry
                    self._cache_put((vid.key, f, self._version), entry)
        return out, size

    def _cache_put(self, key: tuple[str, int, int], entry: dict) -> None:
        if self.feature_cache_frames == 0:
            return
        self._features[key] = entry
        self._features.move_to_end(key)
        while len(self._features) > self.feature_cache_frames:
            self._features.popitem(last=False)

    def _encode(self, pixels: np.ndarray) -> list[dict[str, list[torch.Tensor]]]:
        """``[B, H, W, 3]`` uint8 -> one SAM2 ``backbone_out``-style dict per frame (batch 1 each)."""
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                          antialias=True)
        x = (x - self._norm[0]) / self._norm[1]
        backbone_out = self.model.forward_image(x)
        self.stats["encoded_frames"] += int(x.shape[0])
        pos_key = tuple(tuple(p.shape[1:]) for p in backbone_out["vision_pos_enc"])
        if pos_key not in self._pos_enc:  # the sine position encoding depends on the shape only
            self._pos_enc[pos_key] = [p[:1].clone() for p in backbone_out["vision_pos_enc"]]
        pos = self._pos_enc[pos_key]
        entries = []
        for i in range(x.shape[0]):
            fpn = [level[i:i + 1].clone() for level in backbone_out["backbone_fpn"]]
            entries.append({"backbone_fpn": fpn, "vision_pos_enc": list(pos), "vision_features": fpn[-1]})
        return entries

    # ----------------------------------------------------------------------------------------------------------
    # Decoding
    # ----------------------------------------------------------------------------------------------------------

    def _prompt_tensors(self, prompts: Prompts, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Sparse ``[n, k, 256]`` and dense ``[n, 256, h, w]`` prompt embeddings and the multimask flag."""
        enc, dev = self.model.sam_prompt_encoder, self.device
        n = prompts.num_objects
        if prompts.kind == "embedding":
            pad = enc.not_a_point_embed.weight.reshape(1, 1, -1).expand(n, 1, -1)
            emb = torch.from_numpy(prompts.embeddings).to(dev, pad.dtype)[:, None, :]
            h, w = enc.image_embedding_size
            dense = enc.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(n, -1, h, w)
            return torch.cat([pad, emb], dim=1), dense, True
        if prompts.kind == "mask":
            mask_input = F.interpolate(self._mask_at_model_res(prompts.masks).float(), size=enc.mask_input_size,
                                       mode="bilinear", align_corners=False, antialias=True)
            points = (torch.zeros(n, 1, 2, device=dev), -torch.ones(n, 1, dtype=torch.int32, device=dev))
            sparse, dense = enc(points=points, boxes=None, masks=mask_input)
            return sparse, dense, self._multimask(0)
        coords, labels = self._point_inputs(prompts, height, width)
        sparse, dense = enc(points=(coords, labels), boxes=None, masks=None)
        return sparse, dense, self._multimask(int(labels.shape[1]))

    def _multimask(self, num_points: int) -> bool:
        m = self.model
        return bool(m.multimask_output_in_sam and m.multimask_min_pt_num <= num_points <= m.multimask_max_pt_num)

    def _point_inputs(self, prompts: Prompts, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Box/point prompts in model coordinates: ``coords [n, P, 2]`` float, ``labels [n, P]`` int32."""
        scale = torch.tensor([self.image_size / width, self.image_size / height], device=self.device)
        if prompts.kind == "box":
            coords = torch.from_numpy(prompts.boxes).to(self.device).reshape(-1, 2, 2)
            labels = torch.tensor([[2, 3]], dtype=torch.int32, device=self.device).expand(coords.shape[0], 2)
        else:
            coords = torch.from_numpy(prompts.points).to(self.device)
            labels = torch.from_numpy(prompts.labels).to(self.device)
        return coords * scale, labels.contiguous()

    def _mask_at_model_res(self, masks: np.ndarray) -> torch.Tensor:
        """``[n, H, W]`` bool -> ``[n, 1, S, S]`` bool, resized like SAM2's ``add_new_mask``."""
        m = torch.from_numpy(np.ascontiguousarray(masks)).to(self.device)[:, None].float()
        if m.shape[-2:] != (self.image_size, self.image_size):
            m = F.interpolate(m, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return m >= 0.5

    def _decode_image(self, feat: dict, prompts: Prompts, height: int, width: int, *,
                      is_keyframe: bool) -> torch.Tensor:
        """Image-mode decoding of one frame for all objects -> low-res logits ``[n, 1, S/4, S/4]``."""
        model = self.model
        if prompts.kind == "mask" and is_keyframe and model.use_mask_input_as_output_without_sam:
            high = self._mask_at_model_res(prompts.masks).float() * (2 * _MASK_LOGIT) - _MASK_LOGIT
            low = self.image_size // 4
            return F.interpolate(high, size=(low, low), mode="bilinear", align_corners=False, antialias=True)
        sparse, dense, multimask = self._prompt_tensors(prompts, height, width)
        n = sparse.shape[0]
        fpn = feat["backbone_fpn"]
        top = fpn[-1]
        if model.directly_add_no_mem_embed:
            top = top + model.no_mem_embed.reshape(1, -1, 1, 1)
        high_res = [lvl.expand(n, -1, -1, -1) for lvl in fpn[:-1]] if model.use_high_res_features_in_sam else None
        low_res, ious, _, _ = model.sam_mask_decoder(
            image_embeddings=top.expand(n, -1, -1, -1), image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask,
            repeat_image=False, high_res_features=high_res)
        if multimask:
            best = torch.argmax(ious, dim=-1)
            low_res = low_res[torch.arange(n, device=low_res.device), best][:, None]
        return low_res.float()

    def _new_state(self, feats: list[dict], height: int, width: int) -> dict[str, Any]:
        """A SAM2 video ``inference_state`` over in-memory frames whose features are all pre-filled."""
        placeholder = torch.empty(1, 3, 0, 0, device=self.device)
        return {
            "images": _NoFrames(len(feats)), "num_frames": len(feats), "offload_video_to_cpu": False,
            "offload_state_to_cpu": False, "video_height": height, "video_width": width, "device": self.device,
            "storage_device": self.device, "point_inputs_per_obj": {}, "mask_inputs_per_obj": {},
            "cached_features": {i: (placeholder, f) for i, f in enumerate(feats)}, "constants": {},
            "obj_id_to_idx": OrderedDict(), "obj_idx_to_id": OrderedDict(), "obj_ids": [],
            "output_dict_per_obj": {}, "temp_output_dict_per_obj": {}, "frames_tracked_per_obj": {},
        }

    def _propagate(self, feats: dict[int, dict], frames: list[int], keyframe: int, prompts: Prompts, height: int,
                   width: int, inject_per_frame: bool,
                   stop: Callable[[], None] = lambda: None) -> dict[int, torch.Tensor]:
        """Propagate mode: per object, condition on the keyframe and track forward then backward."""
        model = self.model
        local_kf = frames.index(keyframe)
        per_obj: list[dict[int, torch.Tensor]] = []
        for o in range(prompts.num_objects):
            one = prompts.select(o)
            state = self._new_state([feats[f] for f in frames], height, width)
            if one.kind == "embedding":
                # the image-mode keyframe mask (original size), re-encoded by SAM2 like any mask prompt
                low = self._decode_image(feats[keyframe], one, height, width, is_keyframe=True)
                model.add_new_mask(state, local_kf, 0, torch.from_numpy(self._to_masks(low, height, width)[0]))
            elif one.kind == "mask":
                model.add_new_mask(state, local_kf, 0, torch.from_numpy(one.masks[0]))
            elif one.kind == "box":  # SAM2 scales pixel coordinates by image_size / (W, H) itself
                model.add_new_points_or_box(state, local_kf, 0, box=torch.from_numpy(one.boxes[0]))
            else:
                model.add_new_points_or_box(state, local_kf, 0, points=torch.from_numpy(one.points[0]),
                                            labels=torch.from_numpy(one.labels[0]))
            inject = torch.from_numpy(one.embeddings).to(self.device) if inject_per_frame else None
            per_obj.append(self._track(state, local_kf, inject, stop))
        return {f: torch.cat([obj[i] for obj in per_obj], dim=0) for i, f in enumerate(frames)}

    def _track(self, state: dict, local_kf: int, inject: torch.Tensor | None,
               stop: Callable[[], None] = lambda: None) -> dict[int, torch.Tensor]:
        """Forward then backward tracking of object 0 from ``local_kf`` (``propagate_in_video`` without its
        progress bar); returns low-res logits ``[1, 1, S/4, S/4]`` per local frame."""
        model = self.model
        model.propagate_in_video_preflight(state)
        out_dict = state["output_dict_per_obj"][0]
        hook = None
        if inject is not None:
            def _append(_module, _args, output):
                sparse, dense = output
                return torch.cat([sparse, inject.to(sparse.dtype).reshape(1, 1, -1).expand(sparse.shape[0], 1, -1)],
                                 dim=1), dense
            hook = model.sam_prompt_encoder.register_forward_hook(_append)
        try:
            logits: dict[int, torch.Tensor] = {}
            n = state["num_frames"]
            for reverse, order in ((False, range(local_kf, n)), (True, range(local_kf, -1, -1))):
                for f in order:
                    stop()
                    if f in out_dict["cond_frame_outputs"]:
                        pred = out_dict["cond_frame_outputs"][f]["pred_masks"]
                    else:
                        current, pred = model._run_single_frame_inference(
                            inference_state=state, output_dict=out_dict, frame_idx=f, batch_size=1,
                            is_init_cond_frame=False, point_inputs=None, mask_inputs=None, reverse=reverse,
                            run_mem_encoder=True)
                        out_dict["non_cond_frame_outputs"][f] = current
                    state["frames_tracked_per_obj"][0][f] = {"reverse": reverse}
                    logits.setdefault(f, pred.float())
            return logits
        finally:
            if hook is not None:
                hook.remove()

    @staticmethod
    def _to_masks(low_res: torch.Tensor, height: int, width: int) -> np.ndarray:
        """``[n, 1, h, w]`` logits -> ``[n, H, W]`` bool (bilinear upsampling, ``> 0``)."""
        up = F.interpolate(low_res, size=(height, width), mode="bilinear", align_corners=False)
        return (up[:, 0] > 0).cpu().numpy()


def _has_sam2_extension() -> bool:
    try:
        from sam2 import _C  # noqa: F401
    except ImportError:
        return False
    return True


def _stopper(should_stop: Callable[[], bool] | None) -> Callable[[], None]:
    """A ``stop()`` that raises :class:`RequestCancelled` once ``should_stop()`` is true."""
    if should_stop is None:
        return lambda: None

    def stop() -> None:
        if should_stop():
            raise RequestCancelled("request cancelled by its caller (timeout or disconnect)")
    return stop


def _check_prompt_size(prompts: Prompts, height: int, width: int) -> None:
    if prompts.kind == "mask" and prompts.masks.shape[1:] != (height, width):
        raise ValueError(f"prompts.masks: mask size {list(prompts.masks.shape[1:])} does not match the frame size "
                         f"{[height, width]}")
