# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Keyframe-bidirectional SAM2 propagation of a language embedding (the VideoSEG-O3 inference protocol).

:func:`propagate_language` turns one projected ``[SEG]`` embedding ``e`` (256-d) and a keyframe into masks on
every frame of the video, as the released inference does:

1. every frame is resized to ``image_size x image_size`` (PIL bicubic, no aspect preservation) and
   normalised with the ImageNet mean/std;
2. the keyframe is decoded as SAM2's initial conditioning frame with the sparse prompt
   ``[not-a-point, not-a-point, e]`` (no memory, multimask output, best predicted IoU);
3. SAM2 tracks forward from the keyframe to the last frame, then in reverse from the keyframe to frame 0 on the
   same state (the reverse pass sees the forward memories), with ``e`` appended to the sparse prompt of every
   frame;
4. the output is the reverse part without its copy of the keyframe followed by the forward part (``L`` frames),
   low-res logits upsampled bilinearly to ``image_size`` and then to the frame size, ``sigmoid > 0.5``.

SAM2 settings inside the protocol (:func:`language_protocol`, restored on exit): masks are not gated by the
object score (the object pointer still is, as in SAM2), memories are encoded from ``sigmoid(logits)`` rather
than binarised masks (``binarize_mask_from_pts_for_mem_enc=False``), and no hole filling (``fill_hole_area=0``).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

PROTOCOL_SETTINGS = {"binarize_mask_from_pts_for_mem_enc": False, "fill_hole_area": 0}
"""SAM2 predictor attributes set while :func:`language_protocol` is active (the released inference values)."""

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_OBJ_ID = 0


def build_propagation_model(checkpoint: str | os.PathLike, *, config: str | None = None,
                            image_size: int | None = None, device: str | torch.device = "auto") -> torch.nn.Module:
    """The SAM2 video predictor that :func:`propagate_language` takes (strict checkpoint load, eval mode).

    Args:
        checkpoint: a released ``sam2*_hiera_*.pt`` or a file written by ``save_sam2_checkpoint``.
        config: SAM2 config (alias or package path); default: the one stored in the checkpoint.
        image_size: input-resolution override; default: the stored one.
        device: ``"auto"`` (cuda if available, else cpu), ``"cpu"``, ``"cuda:1"``, ...
    """
    from videoseg_reward.sam2_model import load_sam2_model
    from videoseg_reward.scorer import resolve_device

    return load_sam2_model(checkpoint, config=config, image_size=image_size, video=True,
                           device=resolve_device(device))


def _amp(model: torch.nn.Module, autocast: bool | None) -> Any:
    use_amp = model.device.type == "cuda" if autocast is None else bool(autocast)
    return torch.autocast(model.device.type, dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()


@torch.inference_mode()
def tracking_features(model: torch.nn.Module, frames: Any, *, batch_size: int = 8,
                      autocast: bool | None = None) -> dict[int, tuple[torch.Tensor, dict[str, Any]]]:
    """Every frame's input and backbone output as SAM2's predictor caches them (``forward_image``, run on
    ``batch_size`` frames at a time), for :func:`propagate_language` ``features=``: several embeddings tracked on one
    video then encode its frames once. The backbone output includes the mask decoder's ``conv_s0``/``conv_s1``, so
    a cache belongs to one model state.

    Args:
        model: a SAM2 video predictor (:func:`build_propagation_model`).
        frames: as in :func:`propagate_language`.
        batch_size: frames per image-encoder call.
        autocast: as in :func:`propagate_language`.
    """
    images = _SamFrames(frames, int(model.image_size), model.device)
    features = {}
    with _amp(model, autocast):
        for start in range(0, len(images), batch_size):
            indices = range(start, min(start + batch_size, len(images)))
            batch = torch.stack([images[i] for i in indices]).float()
            out = model.forward_image(batch)
            for j, i in enumerate(indices):
                features[i] = (batch[j:j + 1], {"vision_features": out["vision_features"][j:j + 1],
                                                "vision_pos_enc": [x[j:j + 1] for x in out["vision_pos_enc"]],
                                                "backbone_fpn": [x[j:j + 1] for x in out["backbone_fpn"]]})
    return features


@torch.inference_mode()
def propagate_language(model: torch.nn.Module, frames: Any, keyframe: int, embedding: Any, *,
                       inject_per_frame: bool = True, memory: bool = True, autocast: bool | None = None,
                       features: dict[int, tuple[torch.Tensor, dict[str, Any]]] | None = None) -> np.ndarray:
    """Masks of the object that ``embedding`` refers to on every frame (module docstring).

    Args:
        model: a SAM2 video predictor (:func:`build_propagation_model`).
        frames: ``[L, H, W, 3]`` uint8 RGB frames, or a video object with ``__len__`` and ``get_frame(i)``
            (e.g. ``VideoSource``) or ``__getitem__(i)`` returning a PIL image or an ``[H, W, 3]`` uint8 array.
            Frames are read one at a time, so long videos need no more memory than one frame.
        keyframe: the conditioning frame, in ``[0, L)``.
        embedding: the projected ``[SEG]`` embedding, ``[256]`` (or ``[1, 256]``) tensor or array.
        inject_per_frame: append the embedding to the prompt of every tracked frame (the protocol); ``False``
            prompts the keyframe only (an ablation).
        memory: track with SAM2's memory (the protocol); ``False`` decodes every frame as the keyframe is decoded,
            as its own conditioning frame without memory (an ablation: what the masks are without tracking).
        autocast: run under ``torch.autocast(bfloat16)`` as the released inference does; ``None`` = on CUDA only.
        features: every frame's backbone output from :func:`tracking_features` of the same model and video (the
            frames are then not encoded again); ``None`` encodes each frame when it is tracked.

    Returns:
        ``[L, H, W]`` bool masks at the original frame size.
    """
    images = _SamFrames(frames, int(model.image_size), model.device)
    num_frames = len(images)
    if isinstance(keyframe, bool) or not isinstance(keyframe, (int, np.integer)) or not 0 <= keyframe < num_frames:
        raise ValueError(f"keyframe: expected an integer in [0, {num_frames}), got {keyframe!r}")
    emb = _as_embedding(embedding, model)
    state = new_inference_state(model, images)
    if features is not None:
        if sorted(features) != list(range(num_frames)):
            raise ValueError(f"features: expected the backbone outputs of frames 0..{num_frames - 1}, got frames "
                             f"{sorted(features)[:10]}")
        state["cached_features"] = dict(features)  # SAM2 reads frames from here and encodes only on a miss
    with _amp(model, autocast):
        if memory:
            logits = track_language(model, state, int(keyframe), emb, inject_per_frame=inject_per_frame)
        else:
            logits = [decode_conditioning_frame(model, state, f, emb)["pred_masks"] for f in range(num_frames)]
    height, width = images.frame_size
    return np.stack([logits_to_mask(low, height, width, int(model.image_size)) for low in logits])


def new_inference_state(model: torch.nn.Module, images: Any) -> dict[str, Any]:
    """A SAM2 ``inference_state`` whose ``images[i]`` are read lazily (``[3, S, S]`` tensors on demand).

    ``video_height = video_width = image_size``: masks come out at the model resolution, as in the released
    inference (the frame-size upsampling is :func:`logits_to_mask`).
    """
    device = model.device
    return {
        "images": images, "num_frames": len(images), "offload_video_to_cpu": False, "offload_state_to_cpu": False,
        "video_height": int(model.image_size), "video_width": int(model.image_size), "device": device,
        "storage_device": device, "point_inputs_per_obj": {}, "mask_inputs_per_obj": {}, "cached_features": {},
        "constants": {}, "obj_id_to_idx": OrderedDict(), "obj_idx_to_id": OrderedDict(), "obj_ids": [],
        "output_dict_per_obj": {}, "temp_output_dict_per_obj": {}, "frames_tracked_per_obj": {},
    }


@torch.inference_mode()
def track_language(model: torch.nn.Module, state: dict[str, Any], keyframe: int, embedding: torch.Tensor, *,
                   inject_per_frame: bool = True) -> list[torch.Tensor]:
    """Steps 2-4 of the protocol on a fresh single-object ``state``: low-res logits ``[1, 1, S/4, S/4]`` per frame.

    ``embedding`` ``[1, 1, 256]`` is the keyframe prompt and, with ``inject_per_frame``, the extra prompt token
    of every tracked frame.
    """
    obj_idx = model._obj_id_to_idx(state, _OBJ_ID)
    out = decode_conditioning_frame(model, state, keyframe, embedding)
    state["temp_output_dict_per_obj"][obj_idx]["cond_frame_outputs"][keyframe] = out
    with language_protocol(model, embedding if inject_per_frame else None):
        model.propagate_in_video_preflight(state)  # encodes the keyframe memory from sigmoid(logits)
        forward = _track(model, state, obj_idx, range(keyframe, state["num_frames"]), reverse=False)
        backward = _track(model, state, obj_idx, range(keyframe, -1, -1), reverse=True)
    return [backward[f] for f in range(keyframe)] + [forward[f] for f in range(keyframe, state["num_frames"])]


@torch.inference_mode()
def decode_conditioning_frame(model: torch.nn.Module, state: dict[str, Any], frame: int,
                              embedding: torch.Tensor) -> dict[str, Any]:
    """Step 2 of the protocol on ``frame``: SAM2's output for it as the initial conditioning frame, prompted with
    ``[not-a-point, not-a-point, embedding]`` (no memory, nothing stored in ``state``)."""
    obj_idx = model._obj_id_to_idx(state, _OBJ_ID)
    with language_protocol(model, embedding):
        out, _ = model._run_single_frame_inference(
            inference_state=state, output_dict=state["output_dict_per_obj"][obj_idx], frame_idx=frame,
            batch_size=1, is_init_cond_frame=True, point_inputs=None, mask_inputs=None, reverse=False,
            run_mem_encoder=False)
    return out


def _track(model: torch.nn.Module, state: dict, obj_idx: int, order: range, *, reverse: bool) -> dict[int, Any]:
    """SAM2's ``propagate_in_video`` loop for one object, without its progress bar."""
    out_dict = state["output_dict_per_obj"][obj_idx]
    logits = {}
    for f in order:
        if f in out_dict["cond_frame_outputs"]:
            logits[f] = out_dict["cond_frame_outputs"][f]["pred_masks"]
        else:
            current, logits[f] = model._run_single_frame_inference(
                inference_state=state, output_dict=out_dict, frame_idx=f, batch_size=1, is_init_cond_frame=False,
                point_inputs=None, mask_inputs=None, reverse=reverse, run_mem_encoder=True)
            out_dict["non_cond_frame_outputs"][f] = current
        state["frames_tracked_per_obj"][obj_idx][f] = {"reverse": reverse}
    return logits


@contextlib.contextmanager
def language_protocol(model: torch.nn.Module, embedding: torch.Tensor | None) -> Iterator[None]:
    """Inside: the protocol's SAM2 settings, no mask gating, and ``embedding`` ``[1, 1, 256]`` (if given)
    appended to every sparse prompt the prompt encoder produces. Everything is restored on exit."""
    saved = {name: getattr(model, name) for name in PROTOCOL_SETTINGS}
    for name, value in PROTOCOL_SETTINGS.items():
        setattr(model, name, value)
    model._forward_sam_heads = functools.partial(_sam_heads_without_mask_gating, model)
    hook = None
    if embedding is not None:
        def _append(_module, _args, output):
            sparse, dense = output
            token = embedding.to(sparse.dtype).reshape(1, 1, -1).expand(sparse.shape[0], 1, -1)
            return torch.cat([sparse, token], dim=1), dense
        hook = model.sam_prompt_encoder.register_forward_hook(_append)
    try:
        yield
    finally:
        if hook is not None:
            hook.remove()
        del model._forward_sam_heads
        for name, value in saved.items():
            setattr(model, name, value)


def _sam_heads_without_mask_gating(model: torch.nn.Module, *args: Any, **kwargs: Any) -> tuple:
    """SAM2's ``_forward_sam_heads`` with raw mask logits: SAM2 replaces the masks of a frame whose object score is
    ``<= 0`` by ``-1024`` and gates the object pointer under one switch; the protocol keeps the pointer gating only."""
    heads = type(model)._forward_sam_heads
    if not model.pred_obj_scores:
        return heads(model, *args, **kwargs)
    model.pred_obj_scores = False
    try:
        low_multi, high_multi, ious, low, high, obj_ptr, score = heads(model, *args, **kwargs)
    finally:
        model.pred_obj_scores = True
    appearing = score.sigmoid() if model.soft_no_obj_ptr else (score > 0).float()
    if model.fixed_no_obj_ptr:
        obj_ptr = appearing * obj_ptr
    obj_ptr = obj_ptr + (1 - appearing) * model.no_obj_ptr
    return low_multi, high_multi, ious, low, high, obj_ptr, score


def logits_to_mask(low_res: torch.Tensor, height: int, width: int, image_size: int) -> np.ndarray:
    """``[1, 1, h, w]`` logits -> ``[H, W]`` bool: bilinear to ``image_size``, bilinear to the frame size,
    ``sigmoid > 0.5`` (the released post-processing)."""
    x = low_res.float()
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return (x[0, 0].sigmoid() > 0.5).cpu().numpy()


def _as_embedding(embedding: Any, model: torch.nn.Module) -> torch.Tensor:
    emb = torch.as_tensor(embedding.detach() if isinstance(embedding, torch.Tensor) else np.asarray(embedding))
    dim = int(model.sam_prompt_embed_dim)
    if emb.numel() != dim or emb.ndim > 2 or not emb.is_floating_point():
        raise ValueError(f"embedding: expected a float [{dim}] vector, got shape {list(emb.shape)} dtype {emb.dtype}")
    if not torch.isfinite(emb).all():
        raise ValueError("embedding: contains NaN or infinite values")
    return emb.to(model.device, torch.float32).reshape(1, 1, dim)


class _SamFrames:
    """Frames of a video as SAM2 input tensors ``[3, S, S]``, read and resized on demand (PIL bicubic)."""

    def __init__(self, frames: Any, image_size: int, device: torch.device):
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise ValueError(f"frames: expected [L, H, W, 3] uint8, got shape {list(frames.shape)} "
                                 f"dtype {frames.dtype}")
            self._read = frames.__getitem__
        elif hasattr(frames, "get_frame"):
            self._read = frames.get_frame
        elif hasattr(frames, "__getitem__") and hasattr(frames, "__len__"):
            self._read = frames.__getitem__
        else:
            raise TypeError(f"frames: expected a [L, H, W, 3] uint8 array or a video with __len__ and get_frame, "
                            f"got {type(frames).__name__}")
        self._len = len(frames)
        if self._len == 0:
            raise ValueError("frames: the video has no frames")
        self.image_size = image_size
        self.device = device
        self.frame_size = self._image(0).size[::-1]  # (H, W)
        mean = torch.tensor(_MEAN).view(3, 1, 1)
        std = torch.tensor(_STD).view(3, 1, 1)
        self._norm = (mean.to(device), std.to(device))

    def __len__(self) -> int:
        return self._len

    def _image(self, index: int) -> Image.Image:
        frame = self._read(index)
        if isinstance(frame, Image.Image):
            return frame.convert("RGB")
        arr = np.asarray(frame)
        if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"frames[{index}]: expected [H, W, 3] uint8, got shape {list(arr.shape)} "
                             f"dtype {arr.dtype}")
        return Image.fromarray(arr)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self._image(index)
        if image.size[::-1] != self.frame_size:
            raise ValueError(f"frames[{index}]: size {list(image.size[::-1])} differs from frame 0's "
                             f"{list(self.frame_size)}")
        resized = np.asarray(image.resize((self.image_size, self.image_size), Image.BICUBIC))
        x = torch.from_numpy(resized.copy()).to(self.device).permute(2, 0, 1).float() / 255.0
        return (x - self._norm[0]) / self._norm[1]
