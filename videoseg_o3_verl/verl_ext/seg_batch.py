# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""What the seg-head engine computes for one micro-batch, without verl: [SEG] bookkeeping, frames, masks,
calibration terms, rewards' IoUs and the auxiliary loss (docs/method.md §1, §4, §5.2, §5.5).

Dimension letters: B samples in the micro-batch; S decoded [SEG] tokens (all of a trajectory's in the old-log-prob
pass, where the rewards' IoUs are computed; the first ``max_segs`` per sample where a gradient is needed);
T spatial frames; h × w the seg head's low-res mask logits; G the calibration grid.
Positions: ``seg_positions`` in the trajectory are response-relative; the absolute position in the sample's
prompt+response sequence is ``prompt_len + r``, and the log-prob whose *target* is that [SEG] is element
``prompt_len + r - 1`` of verl's per-sample log-prob sequence.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..data.parquet import record_from_extra_info
from ..data.records import RVOSRecord
from ..losses import aux_seg_loss, mask_log_prob, released_aux_loss
from ..model.frame_encoder import FrameEncoder, FrameFeatures
from ..trajectory import EXTRA_FIELDS_KEY, Trajectory
from ..video import VideoSource

logger = logging.getLogger(__name__)


@dataclass
class SampleSegs:
    """The decoded [SEG] tokens of one sample."""

    index: int
    """Row in the micro-batch."""
    record: RVOSRecord
    """The sample's RVOS record (video, GT)."""
    trajectory: Trajectory
    """The agent loop's per-turn metadata."""
    positions: list[int] = field(default_factory=list)
    """Absolute positions (in prompt+response) of the decoded [SEG] tokens."""
    turns: list[int] = field(default_factory=list)
    """Turn of each decoded [SEG]."""
    keyframes: list[int] = field(default_factory=list)
    """Frame on which each [SEG]'s keyframe mask is decoded."""


def collect_samples(input_ids: list[torch.Tensor], prompt_lens: list[int], extra_infos: list, extra_fields: list,
                    seg_token_id: int) -> list[SampleSegs]:
    """Samples of the micro-batch that carry a VideoSEG-O3 trajectory, with every [SEG] of the trajectory.

    Rows without a trajectory (verl's padding samples, other agents' data) are skipped. A recorded position whose
    token is not [SEG] (truncated response) is dropped with a warning.
    """
    samples = []
    for i, (ids, prompt_len, info, fields) in enumerate(zip(input_ids, prompt_lens, extra_infos, extra_fields)):
        if not isinstance(fields, dict) or EXTRA_FIELDS_KEY not in fields or not isinstance(info, dict):
            continue
        trajectory = Trajectory.from_extra_fields(fields)
        sample = SampleSegs(index=i, record=record_from_extra_info(info), trajectory=trajectory)
        for turn in trajectory.turns:
            for rel in turn.seg_positions:
                pos = prompt_len + rel
                if pos >= len(ids) or int(ids[pos]) != seg_token_id:
                    logger.warning("sample %d: recorded [SEG] position %d is not a [SEG] token (truncated?)", i, pos)
                    continue
                sample.positions.append(pos)
                sample.turns.append(turn.index)
                sample.keyframes.append(turn.seg_keyframe)
        samples.append(sample)
    return samples


def cap_segs(samples: list[SampleSegs], max_segs: int) -> tuple[list[SampleSegs], list[int]]:
    """The samples with their first ``max_segs`` [SEG]s only (the ones the training forward decodes with a gradient,
    released ``MAX_OBJS``), and the rows of those [SEG]s in the flat [SEG] order of ``samples``."""
    capped, rows, start = [], [], 0
    for s in samples:
        n = min(len(s.positions), max_segs)
        capped.append(SampleSegs(index=s.index, record=s.record, trajectory=s.trajectory,
                                 positions=s.positions[:n], turns=s.turns[:n], keyframes=s.keyframes[:n]))
        rows.extend(range(start, start + n))
        start += len(s.positions)
    return capped, rows


def seg_slices(samples: list[SampleSegs]) -> list[slice]:
    """Each sample's rows in the flat [SEG] order (the head's outputs are stacked sample after sample)."""
    out, start = [], 0
    for s in samples:
        out.append(slice(start, start + len(s.positions)))
        start += len(s.positions)
    return out


def turn_ious(sample: SampleSegs, key_logits: torch.Tensor, video_logits: list[torch.Tensor], max_turns: int
              ) -> tuple[list[list[float]], list[float]]:
    """Per turn (at most ``max_turns``) the rewards' IoUs, each from that turn's OWN [SEG]s: the video masks'
    per-frame IoUs on the spatial frames (mean over the turn's [SEG]s) and the keyframe IoU (the turn's last [SEG]).

    Args:
        sample: the sample with every [SEG] of its trajectory (not capped).
        key_logits: [S, h, w] keyframe logits of the sample's [SEG]s, in order.
        video_logits: S tensors [T, h, w] on the spatial frames.
    """
    from ..rewards import keyframe_iou, video_mask_ious

    record = sample.record
    gt_spatial = torch.stack([torch.from_numpy(record.decode_mask(i)) for i in sample.trajectory.spatial_frames])
    frame_ious, key_ious = [], []
    for turn in sample.trajectory.turns[:max_turns]:
        mine = [j for j, t in enumerate(sample.turns) if t == turn.index]
        frame_ious.append(video_mask_ious([video_logits[j].cpu() for j in mine], gt_spatial))
        gt_key = torch.from_numpy(record.decode_mask(turn.seg_keyframe))
        key_ious.append(keyframe_iou([key_logits[j].cpu() for j in mine], gt_key))
    return frame_ious, key_ious


def key_mask_preview(logits: torch.Tensor, size: int) -> torch.Tensor:
    """[h, w] keyframe mask logits bilinearly resized to a flat ``size·size`` preview (the report's mask images)."""
    return F.interpolate(logits[None, None].float(), size=(size, size), mode="bilinear",
                         align_corners=False).flatten().cpu()


def turn_key_previews(sample: SampleSegs, key_logits: torch.Tensor, max_turns: int, size: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each turn's own keyframe mask preview, from the turn's LAST [SEG] (decoded on that turn's keyframe).

    Args:
        sample: the sample with every [SEG] of its trajectory (not capped).
        key_logits: [S, h, w] keyframe logits of the sample's [SEG]s, in order.

    Returns:
        ``[max_turns, size·size]`` preview logits (zeros for a turn without [SEG]) and ``[max_turns]`` 1/0 flags
        saying which turns have one.
    """
    previews, has_mask = torch.zeros(max_turns, size * size), torch.zeros(max_turns)
    for j, turn in enumerate(sample.turns):  # [SEG]s are in order: a turn's last one is written last
        if turn < max_turns:
            previews[turn] = key_mask_preview(key_logits[j], size)
            has_mask[turn] = 1.0
    return previews, has_mask


class FrameStore:
    """Decoded frames of the videos in the batch (small LRU of PIL images, keyed by video path and index)."""

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self._frames: OrderedDict[tuple[str, int], object] = OrderedDict()
        self._videos: OrderedDict[str, VideoSource] = OrderedDict()

    def frames(self, record: RVOSRecord, indices: list[int]) -> list:
        missing = [i for i in dict.fromkeys(indices) if (record.video_path, i) not in self._frames]
        if missing:
            video = self._videos.get(record.video_path)
            if video is None:
                video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids) or None)
                self._videos[record.video_path] = video
                while len(self._videos) > 8:
                    self._videos.popitem(last=False)
            for i, image in zip(missing, video.get_frames(missing)):
                self._frames[(record.video_path, i)] = image
        out = []
        for i in indices:
            self._frames.move_to_end((record.video_path, i))
            out.append(self._frames[(record.video_path, i)])
        while len(self._frames) > self.capacity:
            self._frames.popitem(last=False)
        return out


def encode_frames(encoder: FrameEncoder, store: FrameStore, frames: list[tuple[RVOSRecord, int]]) -> FrameFeatures:
    """SAM2 features of ``(record, frame index)`` pairs in one batched call of the frozen encoder, cached by
    (video, frame): only frames missing from the encoder's cache are decoded and encoded."""
    records = {record.video_path: record for record, _ in frames}

    def load(missing: list[tuple[str, int]]) -> list:
        wanted: dict[str, list[int]] = {}
        for path, index in missing:
            wanted.setdefault(path, []).append(index)
        images = {}
        for path, indices in wanted.items():
            images.update(zip(((path, i) for i in indices), store.frames(records[path], indices), strict=True))
        return [images[key] for key in missing]

    return encoder.encode_keys([(record.video_path, index) for record, index in frames], load)


@dataclass
class HeadInputs:
    """The seg head's batched inputs: S keyframe decodes followed by S × T video decodes."""

    hidden: torch.Tensor
    """[S + S*T, H] [SEG] hidden states (each video decode repeats its [SEG])."""
    features: FrameFeatures
    """Frames of every decode, aligned with ``hidden``."""
    num_segs: int
    """S."""
    frames_per_seg: list[int]
    """T of each [SEG] (its sample's spatial frames)."""


def build_head_inputs(samples: list[SampleSegs], seg_hidden: torch.Tensor, encoder: FrameEncoder, store: FrameStore,
                      with_video: bool) -> HeadInputs:
    """Stack the decodes of every [SEG]: its keyframe, then (``with_video``) its sample's spatial frames.

    The distinct frames of the whole micro-batch go through the encoder once (:func:`encode_frames`)."""
    live = [s for s in samples if s.positions]
    frames_per_seg = [len(s.trajectory.spatial_frames) for s in live for _ in s.positions]
    decoded = [(s.record, k) for s in live for k in s.keyframes]
    if with_video:
        decoded += [(s.record, t) for s in live for _ in s.positions for t in s.trajectory.spatial_frames]
    features = encode_frames(encoder, store, decoded)  # each distinct frame is encoded once
    hidden = seg_hidden
    if with_video and sum(frames_per_seg):
        repeats = torch.tensor(frames_per_seg, device=seg_hidden.device)
        hidden = torch.cat([seg_hidden, seg_hidden.repeat_interleave(repeats, dim=0)], dim=0)
    return HeadInputs(hidden=hidden, features=features, num_segs=seg_hidden.shape[0], frames_per_seg=frames_per_seg)


def split_head_outputs(mask_logits: torch.Tensor, inputs: HeadInputs) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``[S, h, w]`` keyframe logits and, per [SEG], ``[T, h, w]`` video logits."""
    s = inputs.num_segs
    key = mask_logits[:s]
    video = list(mask_logits[s:].split(inputs.frames_per_seg)) if mask_logits.shape[0] > s else []
    return key, video


def calibration_targets(key_logits: torch.Tensor, grid: int, threshold: float) -> torch.Tensor:
    """``[S, G*G]`` binarised rollout masks ``1[bilinear(r, G×G) > threshold]`` (docs/method.md §6.2), stored for the
    update."""
    if key_logits.shape[0] == 0:
        return key_logits.new_zeros(0, grid * grid)
    r = F.interpolate(key_logits.detach().float()[:, None], size=(grid, grid), mode="bilinear", align_corners=False)
    return (r[:, 0] > threshold).float().flatten(1)


def calibration_log_probs(key_logits: torch.Tensor, targets: torch.Tensor, grid: int) -> torch.Tensor:
    """``[S]`` mask log-likelihoods of stored binary targets ``[S, G*G]`` under the current logits (docs/method.md
    §6.2)."""
    binary = targets.reshape(-1, grid, grid)
    # the targets are already binary on the G×G grid: resizing G×G to G×G is the identity, threshold 0.5 keeps them
    return mask_log_prob(key_logits, binary, grid=grid, threshold=0.5)


def sample_aux_loss(sample: SampleSegs, key_logits: torch.Tensor, video_logits: list[torch.Tensor]) -> torch.Tensor:
    """BCE + Dice of one sample's masks against its GT: video masks on the spatial frames + keyframe masks
    (docs/method.md §6.4)."""
    record = sample.record
    spatial = sample.trajectory.spatial_frames
    gt_spatial = torch.stack([torch.from_numpy(record.decode_mask(i)) for i in spatial])
    gt_keys = torch.stack([torch.from_numpy(record.decode_mask(i)) for i in sample.keyframes])
    video = torch.stack([aux_seg_loss(v, gt_spatial) for v in video_logits]).mean() if video_logits \
        else key_logits.sum() * 0
    return video + aux_seg_loss(key_logits, gt_keys)


def micro_batch_aux_loss(samples: list[SampleSegs], key_logits: torch.Tensor, video_logits: list[torch.Tensor],
                         pooling: str, num_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The auxiliary mask loss of a micro-batch as ``(row_sum, value)``.

    ``row_sum`` is what the loss wrapper divides by the global batch size (like verl's sequence-mean losses);
    ``value`` is the micro-batch's loss for logging. Only samples with ground truth and decoded [SEG]s count.

    - ``per_sample``: ``row_sum = Σ_samples sample_aux_loss``; ``value`` = its mean over those samples.
    - ``released``: ``value = released_aux_loss`` pooled over every (trajectory, turn) mask of the micro-batch
      (keyframe term: each turn's last [SEG]); ``row_sum = value × num_rows``, so each micro-batch weighs by its
      number of rows as the released gradient-accumulation mean does.

    Args:
        samples: the [SEG]s that get a gradient (capped), in the head's flat order.
        key_logits: [S, h, w]; video_logits: S tensors [T, h, w].
        num_rows: rows of the micro-batch (verl's samples, padding rows included).
    """
    if pooling not in ("per_sample", "released"):
        raise ValueError(f"[videoseg_o3.aux_loss.pooling] must be 'per_sample' or 'released', got {pooling!r}")
    scored = [(s, sl) for s, sl in zip(samples, seg_slices(samples)) if s.positions and s.record.masks_rle]
    zero = key_logits.sum() * 0
    if not scored:
        return zero, zero.detach()
    if pooling == "per_sample":
        per_sample = torch.stack([sample_aux_loss(s, key_logits[sl], video_logits[sl]) for s, sl in scored])
        return per_sample.sum(), per_sample.detach().mean()
    video, video_gt, key, key_gt = [], [], [], []
    for s, sl in scored:
        gt_spatial = torch.stack([torch.from_numpy(s.record.decode_mask(i)) for i in s.trajectory.spatial_frames])
        for j in range(sl.start, sl.stop):
            video.append(video_logits[j])
            video_gt.append(gt_spatial)
        last_of_turn = {turn: j for j, turn in zip(range(sl.start, sl.stop), s.turns)}  # later [SEG]s overwrite
        for j in last_of_turn.values():
            key.append(key_logits[j])
            key_gt.append(torch.from_numpy(s.record.decode_mask(s.keyframes[j - sl.start])))
    value = released_aux_loss(video, video_gt, key, key_gt)
    return value * num_rows, value.detach()
