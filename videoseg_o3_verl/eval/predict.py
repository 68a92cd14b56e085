# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Per-expression evaluation: a pure function of (models, record) -> one result row.

`evaluate_record` runs the inference episode, takes the last [SEG] of the final context through the seg head,
propagates it with SAM2 from the final keyframe over all frames, and scores the masks against the ground truth.
With ground truth it also computes the per-episode metrics (`episode_metrics`): each turn's own [SEG]s are decoded
on the spatial frames and the turn's keyframe exactly as in the RL training forward, and the paper's reward is
computed from those IoUs. A fixed-guess variant (`FixedGuessModels`) runs the same episode loop and scoring with
its constant answer and mask.
Bad input (a missing video or frame, malformed ground truth) gives an error row naming the file and the
expression instead of an exception, so a run goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from videoseg_reward.masks import encode_masks

from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.env import EnvConfig
from videoseg_o3_verl.env.prompts import SEG_TOKEN
from videoseg_o3_verl.eval.episode import Episode, run_episode, run_episodes
from videoseg_o3_verl.eval.episode_metrics import episode_metrics, jf_percent
from videoseg_o3_verl.eval.fixed_guess import FixedGuessModels, FixedGuessPolicy
from videoseg_o3_verl.eval.keyframe import final_keyframe
from videoseg_o3_verl.eval.policy import HFPolicy, Policy
from videoseg_o3_verl.eval.scoring import expression_row
from videoseg_o3_verl.model.frame_encoder import FrameEncoder
from videoseg_o3_verl.model.seg_head import SegHead, build_seg_head
from videoseg_o3_verl.model.seg_head_io import has_seg_head, load_seg_head
from videoseg_o3_verl.trajectory import Trajectory, TurnRecord
from videoseg_o3_verl.verl_ext.rewarding import reward_inputs
from videoseg_o3_verl.verl_ext.seg_batch import FrameStore, SampleSegs, build_head_inputs, split_head_outputs, turn_ious
from videoseg_o3_verl.video import VideoSource

logger = logging.getLogger(__name__)

SEG_HEAD_SEED = 0
"""Seed of the projection built from the SAM2 checkpoint when the model directory carries no seg head."""

TRACKING_CACHE_VIDEOS = 2
"""Videos whose SAM2 backbone outputs `EvalModels.tracking` keeps (records of one video are consecutive)."""


@dataclass
class EvalModels:
    """Everything one evaluation worker holds."""

    policy: Policy
    """Generates turns and gives the final [SEG] hidden state."""
    seg_head: SegHead
    """Projects the hidden state to the SAM2 prompt embedding."""
    sam2: torch.nn.Module
    """SAM2 video predictor for the propagation, with the seg head's prompt-encoder/mask-decoder weights."""
    env: EnvConfig
    """Inference protocol constants."""
    encoder: FrameEncoder | None = None
    """Frozen SAM2 frame encoder of the per-turn reward decodes (as in training); default: built from `sam2`."""
    reward_parity: bool = True
    """Parity of the format and reward terms (`videoseg_o3.rewards.parity` of the training recipe)."""
    store: FrameStore = field(default_factory=FrameStore)
    """Decoded frames of the per-turn reward decodes."""
    tracking: OrderedDict | None = field(default_factory=OrderedDict)
    """SAM2 backbone outputs of the last videos propagated (`tracking_features`), by video: the expressions of a
    video share them; None encodes every frame while it is tracked."""

    def __post_init__(self) -> None:
        if self.encoder is None:
            self.encoder = FrameEncoder.from_sam2(self.sam2)


def find_seg_head(model_dir: str | os.PathLike, seg_head_dir: str | os.PathLike | None = None) -> Path | None:
    """The seg head directory for `model_dir`: `seg_head_dir` if given, else the model directory itself (a
    converted released checkpoint), `<model_dir>/seg_head`, or `<model_dir>/../seg_head` (a training checkpoint's
    `global_step_N/actor/huggingface` next to `actor/seg_head`); None when there is none."""
    if seg_head_dir is not None:
        if not has_seg_head(seg_head_dir):
            raise FileNotFoundError(f"--seg-head {seg_head_dir}: no seg_head.safetensors + seg_head_config.json")
        return Path(seg_head_dir)
    model_dir = Path(model_dir)
    for candidate in (model_dir, model_dir / "seg_head", model_dir.parent / "seg_head"):
        if has_seg_head(candidate):
            return candidate
    return None


def load_models(model_dir: str, sam2_checkpoint: str, *, seg_head_dir: str | None = None,
                env: EnvConfig | None = None, device: str | None = None, dtype: str = "float32",
                backend: str = "hf", reward_parity: bool = True) -> EvalModels:
    """Load the policy (HF, or vLLM generation over the HF model), the seg head and SAM2 on one device.

    Args:
        model_dir: HF Qwen-VL directory with `[SEG]` in its tokenizer.
        sam2_checkpoint: SAM2 `.pt` (image encoder and memory modules; the decoder if no seg head is found).
        seg_head_dir: explicit seg head directory (see :func:`find_seg_head`).
        env: protocol constants; default `EnvConfig.eval()`.
        device: "cpu", "cuda", ...; default cuda when available.
        dtype: policy weights dtype ("float32", "bfloat16").
        backend: "hf" (turns from HF `generate`) or "vllm" (turns from a vLLM engine; the [SEG] hidden state still
            from the HF model).
        reward_parity: parity of the format and reward terms of the per-episode metrics.
    """
    from videoseg_reward.propagation import build_propagation_model

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    env = env or EnvConfig.eval()
    hf = HFPolicy(model_dir, device=device, dtype=dtype)
    policy: Policy = hf
    if backend == "vllm":
        from videoseg_o3_verl.eval.vllm_policy import VLLMPolicy

        policy = VLLMPolicy(hf, model_dir, env, dtype=dtype)
    elif backend != "hf":
        raise ValueError(f"backend must be 'hf' or 'vllm', got {backend!r}")
    sam2 = build_propagation_model(sam2_checkpoint, device=device)
    head_dir = find_seg_head(model_dir, seg_head_dir)
    encoder = None
    if head_dir is not None:
        head, encoder = load_seg_head(head_dir, sam2_checkpoint=sam2_checkpoint, device=device)
    else:
        logger.warning("no seg head next to %s: building one from %s with a random projection (seed %d)",
                       model_dir, sam2_checkpoint, SEG_HEAD_SEED)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEG_HEAD_SEED)
            head = build_seg_head(hf.hidden_size, sam2).to(device)
    if head.hidden_size != hf.hidden_size:
        raise ValueError(f"seg head expects hidden size {head.hidden_size}, the policy in {model_dir} has "
                         f"{hf.hidden_size}")
    use_head_decoder(sam2, head)
    return EvalModels(policy=policy, seg_head=head.eval().requires_grad_(False), sam2=sam2, env=env, encoder=encoder,
                      reward_parity=reward_parity)


def use_head_decoder(sam2: torch.nn.Module, head: SegHead) -> None:
    """Copy the seg head's (trained) prompt encoder and mask decoder into the SAM2 propagation model."""
    sam2.sam_prompt_encoder.load_state_dict(head.prompt_encoder.state_dict(), strict=True)
    sam2.sam_mask_decoder.load_state_dict(head.mask_decoder.state_dict(), strict=True)


def final_embedding(models: EvalModels, episode: Episode) -> torch.Tensor | None:
    """[C] SAM2 prompt embedding of the last [SEG] in the final context, or None when there is no [SEG]."""
    hidden = models.policy.seg_hidden(episode.final)
    if hidden is None:
        return None
    with torch.inference_mode():
        return models.seg_head.embed(hidden[None])[0].float()


def predict_masks(models: EvalModels, video: Any, keyframe: int, embedding: torch.Tensor | None,
                  size: tuple[int, int], cache_key: Any = None) -> np.ndarray:
    """[L, H, W] bool masks: SAM2 propagation from `keyframe`, all-zero without an embedding (nothing to track).

    With a `cache_key` naming the video, its frames' SAM2 backbone outputs are computed once (batched) and kept in
    `models.tracking` for the next expression of the same video.
    """
    from videoseg_reward.propagation import propagate_language, tracking_features

    if embedding is None:
        return np.zeros((len(video), *size), dtype=bool)
    features = None
    if cache_key is not None and models.tracking is not None:
        features = models.tracking.get(cache_key)
        if features is None:
            features = tracking_features(models.sam2, video)
            models.tracking[cache_key] = features
            while len(models.tracking) > TRACKING_CACHE_VIDEOS:
                models.tracking.popitem(last=False)
        models.tracking.move_to_end(cache_key)
    return propagate_language(models.sam2, video, keyframe, embedding, features=features)


def turn_trajectory(episode: Episode, num_frames: int) -> Trajectory:
    """The episode as the training trajectory the seg-head engine reads: spatial frames, and per turn its text and
    the keyframe its [SEG]s are decoded on (`L // 2` in turn 0, then the keyframe selected in the previous turn)."""
    turns, pending = [], EnvConfig.turn0_keyframe(num_frames)
    for index, turn in enumerate(episode.turns):
        turns.append(TurnRecord(index=index, span=(0, 0), text=turn.text, kind=turn.kind, reason=turn.reason,
                                vtg=turn.vtg, seg_keyframe=pending))
        if turn.kind == "select":
            pending = int(turn.vtg["keyframe"])
    return Trajectory(num_frames=num_frames, initial_low_res=list(episode.initial_low_res),
                      spatial_frames=list(episode.spatial_indices), turns=turns)


def turn_seg_logits(models: EvalModels | FixedGuessModels, sample: SampleSegs, hidden: torch.Tensor | None
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Keyframe logits [S, h, w] and per [SEG] video logits [T, h, w] of the sample's S [SEG]s: the seg head on their
    hidden states `hidden` [S, H] (decoded as in the training forward), or the fixed guess's constant logits."""
    count, num_spatial = len(sample.positions), len(sample.trajectory.spatial_frames)
    if isinstance(models, FixedGuessModels):
        return (torch.full((count, 1, 1), models.logit),
                [torch.full((num_spatial, 1, 1), models.logit) for _ in range(count)])
    if count == 0:
        return torch.zeros(0, 1, 1), []
    inputs = build_head_inputs([sample], hidden.to(models.seg_head.device), models.encoder, models.store,
                               with_video=True)
    with torch.inference_mode():
        out = models.seg_head(inputs.hidden, inputs.features)
    return split_head_outputs(out.mask_logits.float().cpu(), inputs)


def turn_reward_ious(models: EvalModels | FixedGuessModels, record: RVOSRecord, episode: Episode
                     ) -> tuple[list[list[float]], list[float]]:
    """The reward's `per_round_maskious` and `per_round_keyframe_ious` of the episode, computed by the training
    code (`seg_batch.turn_ious`): each turn's own [SEG] masks on the spatial frames and on the turn's keyframe."""
    trajectory = turn_trajectory(episode, record.num_frames)
    hidden = None
    if isinstance(models, FixedGuessModels):
        counts = [turn.text.count(SEG_TOKEN) for turn in episode.turns]
    else:
        per_turn = [models.policy.turn_seg_hiddens(g) for g in episode.generations]
        counts = [int(h.shape[0]) for h in per_turn]
        hidden = torch.cat(per_turn)
    turns_of = [t for t, n in enumerate(counts) for _ in range(n)]
    sample = SampleSegs(index=0, record=record, trajectory=trajectory, positions=list(range(len(turns_of))),
                        turns=turns_of, keyframes=[trajectory.turns[t].seg_keyframe for t in turns_of])
    key_logits, video_logits = turn_seg_logits(models, sample, hidden)
    return turn_ious(sample, key_logits, video_logits, max_turns=len(trajectory.turns))


def _error_row(record: RVOSRecord, stage: str, err: Exception) -> dict[str, Any]:
    message = f"{record.name} ({stage}): {type(err).__name__}: {err}"
    logger.warning("evaluation error: %s", message)
    return {"error": message, "frames": list(record.frame_ids)}


def evaluate_record(models: EvalModels | FixedGuessModels, record: RVOSRecord, dataset: str | None = None
                    ) -> dict[str, Any]:
    """Evaluate one expression.

    Args:
        models: the worker's models, or a fixed-guess variant (`eval.fixed_guess`).
        record: the expression.
        dataset: benchmark whose per-expression metrics are computed; default `record.dataset`.

    Returns:
        `{"result": results.json entry, "score": score row or None (no ground truth), "metrics": the per-episode
        metrics (`episode_metrics`; None without ground truth), "turns": per-turn log, "initial": first-turn
        frames}`; on bad input `{"result": {"error": ..., "frames": [...]}, "score": None,
        "turns": []}`.
    """
    return evaluate_records(models, [record], dataset)[0]


def evaluate_records(models: EvalModels | FixedGuessModels, records: list[RVOSRecord], dataset: str | None = None
                     ) -> list[dict[str, Any]]:
    """:func:`evaluate_record` of several expressions whose turns are generated together (`run_episodes`); the
    same entries as one at a time. A frame that cannot be read during the batch's episodes sends the batch back to
    one expression at a time, so only that expression gets an error row."""
    start = time.perf_counter()
    entries: list[dict[str, Any] | None] = [None] * len(records)
    videos: dict[int, Any] = {}
    for i, record in enumerate(records):
        video = None
        try:
            video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids) or None)
            if len(video) != record.num_frames:
                raise ValueError(f"{record.video_path} has {len(video)} frames, the record says {record.num_frames}")
            if record.has_ground_truth:
                record.check_masks()
            videos[i] = video
        except Exception as err:  # noqa: BLE001 - bad input becomes an error row
            if video is not None:
                video.close()
            entries[i] = {"result": _error_row(record, "input", err), "score": None, "turns": []}
    try:
        items = [(videos[i], records[i].expression) for i in videos]
        if isinstance(models, FixedGuessModels):
            episodes = [run_episode(FixedGuessPolicy(len(video)), video, text, models.env) for video, text in items]
        else:
            episodes = run_episodes(models.policy, items, models.env)
    except (FileNotFoundError, OSError) as err:  # a frame file that cannot be read
        for video in videos.values():
            video.close()
        if len(videos) > 1:
            return [entry or evaluate_record(models, record, dataset) for entry, record in zip(entries, records)]
        i = next(iter(videos))
        entries[i] = {"result": _error_row(records[i], "frames", err), "score": None, "turns": []}
        return entries
    share = (time.perf_counter() - start) / max(len(records), 1)
    for n, (i, video) in enumerate(videos.items()):
        try:
            entries[i] = _finish(models, records[i], video, episodes[n], dataset, time.perf_counter() - share)
        except (FileNotFoundError, OSError) as err:
            entries[i] = {"result": _error_row(records[i], "frames", err), "score": None, "turns": []}
        finally:
            video.close()
    return entries


def _finish(models: EvalModels | FixedGuessModels, record: RVOSRecord, video: VideoSource, episode: Episode,
            dataset: str | None, start: float) -> dict[str, Any]:
    """The entry of one expression after its episode: final masks, score row and per-episode metrics."""
    size = (record.height, record.width)
    keyframe = final_keyframe(episode.turn_texts, len(video), episode.spatial_indices)
    ious = turn_reward_ious(models, record, episode) if record.has_ground_truth else None
    if isinstance(models, FixedGuessModels):
        masks, has_seg = models.masks(len(video), size), True
    else:
        embedding = final_embedding(models, episode)
        key = (record.video_path, tuple(record.frame_ids))
        masks, has_seg = predict_masks(models, video, keyframe, embedding, size, key), embedding is not None
    score, metrics = None, None
    if record.has_ground_truth:
        try:
            score = expression_row(dataset or record.dataset, record, masks, shown_frames=episode.shown_frames,
                                   keyframe=keyframe, num_rounds=len(episode.turns))
        except (ValueError, OSError) as err:  # e.g. a missing or malformed foreground file
            return {"result": _error_row(record, "ground truth", err), "score": None, "turns": []}
        inputs = reward_inputs(episode.turn_texts, record, *ious, parity=models.reward_parity)
        metrics = episode_metrics(inputs, jf_percent(score))
    result = {
        "prediction_masks": encode_masks(masks),
        "text_prediction": episode.turns[-1].text,
        "num_rounds": len(episode.turns),
        "keyframe_index": int(keyframe),
        "frames": list(record.frame_ids) or [str(i) for i in range(record.num_frames)],
        "has_seg": has_seg,
        "seconds": round(time.perf_counter() - start, 3),
    }
    turns = [{"text": t.text, "kind": t.kind, "vtg": t.vtg, "reason": t.reason, "shown_low_res": t.shown_low_res,
              "shown_keyframe": t.shown_keyframe} for t in episode.turns]
    first = {"low_res": episode.initial_low_res, "high_res": episode.spatial_indices}
    return {"result": result, "score": score, "metrics": metrics, "turns": turns, "initial": first}
