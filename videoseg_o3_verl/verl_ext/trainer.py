# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The VideoSEG-O3 trainer: verl's synchronous V1 trainer with rewards computed after the actor forward.

Registered as ``trainer.v1.trainer_mode=videoseg_o3_sync``. The step keeps verl's order except that the rewards
need the actor's masks, so they are computed right after ``compute_log_prob`` (which, with the seg-head engine,
also decodes every turn's keyframe and spatial-frame masks and scores them against the ground truth):
rollout → actor forward (calibrated old log-probs, per-turn IoUs) → **rewards** (the paper's terms, written to
``rm_scores``) → reference log-probs → GRPO advantages → calibrated update with the auxiliary loss.

The trainer only orders the step; the reward of a trajectory is computed in ``rewarding.py``, the J&F term's
service calls in ``jf_scoring.py``, the logged reward metrics in ``reward_metrics.py`` and the report's samples
dump in ``debug_dump.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from ..backends.cpu.scripted import SCRIPTED_FRACTION_METRIC, scripted_fraction
from ..config import TRAINER_MODE, load_videoseg_config
from ..env import EnvConfig
from .debug_dump import append_samples
from .jf_scoring import connect_reward_service, jf_scores
from .reward_metrics import reward_metrics, sample_summary, warn_unscored
from .rewarding import SampleRewards, frame_slot_problems, reward_spec_from, score_batch

REWARD_FIELDS = ["extra_fields", "extra_info", "response_mask", "data_source", "videoseg_frame_ious",
                 "videoseg_keyframe_ious", "videoseg_nseg", "videoseg_mask_logp", "videoseg_key_mask",
                 "videoseg_turn_key_masks", "videoseg_turn_has_mask", "videoseg_embedding"]
"""TransferQueue fields the reward step reads (the ``videoseg_*`` ones come from the seg-head engine)."""


def _as_list(value) -> list:
    items = value.tolist() if hasattr(value, "tolist") and not isinstance(value, torch.Tensor) else list(value)
    return [getattr(item, "data", item) for item in items]


def _rows(value: torch.Tensor) -> list[torch.Tensor]:
    return list(value.unbind()) if value.is_nested else list(value)


def replay_poll_interval(config, default: float) -> float:
    """Seconds between the replay buffer's checks for finished trajectories: ``trainer.v1.sampler.sampler_kwargs.
    poll_interval`` when set, else ``default``.

    verl's built-in ``ReplayBuffer`` takes ``poll_interval`` (2 s) as a constructor argument but its trainer never
    passes one, so a step whose rollout takes 0.3 s still waits 2 s in ``timing_s/gen``; a short CPU step wants less.

    Example:
        >>> replay_poll_interval({"trainer": {"v1": {"sampler": {"sampler_kwargs": {"poll_interval": 0.05}}}}}, 2.0)
        0.05
    """
    from omegaconf import OmegaConf

    value = OmegaConf.select(OmegaConf.create(config) if isinstance(config, dict) else config,
                             "trainer.v1.sampler.sampler_kwargs.poll_interval", default=None)
    if value is None:
        return float(default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"[trainer.v1.sampler.sampler_kwargs.poll_interval] must be a number of seconds > 0, "
                         f"got {value!r}")
    return float(value)


@register_trainer(TRAINER_MODE)
class VideoSegO3Trainer(PPOTrainerSync):
    """``PPOTrainerSync`` + the post-forward VideoSEG-O3 rewards (see the module docstring)."""

    def _build_replay_buffer(self):
        # verl tests `trainer_mode == "sync"` literally in several places (trainer_base.py:153,731,902,1004,1499);
        # a trainer registered under its own name must present itself as "sync" to keep synchronous semantics.
        self.trainer_mode = "sync"
        self.videoseg = load_videoseg_config(self.config)
        problems = frame_slot_problems(EnvConfig.train(**dict(self.videoseg.env or {})))
        if problems:
            raise ValueError("Invalid VideoSEG-O3 configuration:\n  - " + "\n  - ".join(problems))
        self.reward_spec = reward_spec_from(self.videoseg)
        self.sam2_service = connect_reward_service(self.videoseg)
        buffer = super()._build_replay_buffer()
        buffer.poll_interval = replay_poll_interval(self.config, buffer.poll_interval)
        return buffer

    def _compute_old_log_prob(self, batch, metrics: dict):
        batch = super()._compute_old_log_prob(batch, metrics)
        return self._compute_videoseg_rewards(batch, metrics)

    def _validate(self) -> dict[str, float]:
        """verl's validation, with the mask-based rewards: each validation batch also gets the actor forward (seg
        head masks, IoUs, J&F) before verl reads its ``rm_scores``; adds ``val-videoseg/<data_source>/<metric>``."""
        per_source: dict[str, list[dict[str, float]]] = {}
        sample = self.replay_buffer.sample

        def sample_and_score(*args, **kwargs):
            batch, extra = sample(*args, **kwargs)
            if kwargs.get("partition_id") == "val" and len(batch):
                self.checkpoint_manager.sleep_replicas()
                scratch: dict = {}
                batch = super(VideoSegO3Trainer, self)._compute_old_log_prob(batch, scratch)
                self._compute_videoseg_rewards(batch, scratch, per_source=per_source)
                self.checkpoint_manager.update_weights()
            return batch, extra

        self.replay_buffer.sample = sample_and_score
        try:
            metrics = super()._validate()
        finally:
            self.replay_buffer.sample = sample
        for source, rows in per_source.items():
            for key in rows[0]:
                metrics[f"val-videoseg/{source}/{key}"] = float(np.mean([row[key] for row in rows]))
        return metrics

    def _compute_videoseg_rewards(self, batch, metrics: dict, per_source: dict | None = None):
        import transfer_queue as tq

        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=REWARD_FIELDS)
        extra_fields, extra_infos = _as_list(data["extra_fields"]), _as_list(data["extra_info"])
        frame_ious = _rows(data["videoseg_frame_ious"])
        key_ious = _rows(data["videoseg_keyframe_ious"])
        jfs = jf_scores(self.sam2_service, extra_fields, extra_infos, _rows(data["videoseg_embedding"]),
                        _rows(data["videoseg_nseg"]), self.videoseg.rewards.jf.num_frames)
        scored: list[SampleRewards | None] = score_batch(self.reward_spec, extra_fields, extra_infos, frame_ious,
                                                         key_ious, parity=self.videoseg.rewards.parity, jfs=jfs)
        response_lengths = [int(m.shape[0]) for m in _rows(data["response_mask"])]
        scores = []
        for sample, length in zip(scored, response_lengths):
            row = torch.zeros(length, dtype=torch.float32)
            if sample is not None and length:
                row[-1] = sample.total
            scores.append(row)
        rm_scores = torch.nested.as_nested_tensor(scores, layout=torch.jagged)
        tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id,
                        fields=TensorDict({"rm_scores": rm_scores}, batch_size=len(scores)))
        metrics.update(reward_metrics(scored, _rows(data["videoseg_mask_logp"]), _rows(data["videoseg_nseg"])))
        metrics[SCRIPTED_FRACTION_METRIC] = scripted_fraction(extra_fields)
        sources = _as_list(data["data_source"])
        warn_unscored(scored, extra_fields, extra_infos, sources)
        if per_source is not None:  # validation: per-dataset rows, no dumps
            for sample, source, jf in zip(scored, sources, jfs):
                if sample is not None:
                    per_source.setdefault(str(source), []).append(sample_summary(sample, jf))
            return batch
        if self.videoseg.report.samples_dir:  # a few scored trajectories for the report
            append_samples(self.videoseg.report.samples_dir, self.global_steps, scored, extra_infos, extra_fields,
                           _rows(data["videoseg_key_mask"]), _rows(data["videoseg_turn_key_masks"]),
                           _rows(data["videoseg_turn_has_mask"]), sources)
        return batch

