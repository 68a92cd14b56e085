# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""What the trainer logs about a step's rewards: per-step means, validation rows per dataset, unscored warnings."""

from __future__ import annotations

import logging

import numpy as np
import torch

from .rewarding import SampleRewards, unscored_reason

logger = logging.getLogger(__name__)


def sample_summary(sample: SampleRewards, jf: float | None) -> dict[str, float]:
    """Per-trajectory numbers averaged per dataset in validation."""
    row = {"reward": sample.total, "turns": float(sample.num_turns),
           "final_mask_iou": float(np.mean(sample.inputs.per_round_maskious[-1])) if
           sample.inputs.per_round_maskious else 0.0,
           "final_keyframe_iou": float(sample.inputs.per_round_keyframe_ious[-1]) if
           sample.inputs.per_round_keyframe_ious else 0.0}
    if jf is not None:
        row["jf"] = float(jf)
    return row


def warn_unscored(scored: list[SampleRewards | None], extra_fields: list, extra_infos: list, sources: list) -> None:
    """Warn when rows get reward 0 because they could not be scored (with up to three examples and why)."""
    rows = [i for i, sample in enumerate(scored) if sample is None]
    if not rows:
        return
    examples = "; ".join(f"row {i} ({sources[i]}): {unscored_reason(extra_fields[i], extra_infos[i])}"
                         for i in rows[:3])
    logger.warning("%d of %d samples could not be scored and get reward 0, e.g. %s", len(rows), len(scored), examples)


def reward_metrics(scored: list[SampleRewards | None], mask_logps: list[torch.Tensor], nsegs: list[torch.Tensor]
                   ) -> dict[str, float]:
    """Per-step means over the scored samples (the rows whose reward is the terms' sum) of every reward term, turns,
    selects, the J&F term's input and the calibration magnitude; ``videoseg/unscored`` counts the rows that got
    reward 0 because they could not be scored."""
    valid = [s for s in scored if s is not None]
    unscored = float(len(scored) - len(valid))
    if not valid:
        return {"videoseg/scored_fraction": 0.0, "videoseg/unscored": unscored}
    out = {"videoseg/scored_fraction": len(valid) / len(scored), "videoseg/unscored": unscored,
           "videoseg/reward/total": float(np.mean([s.total for s in valid])),
           "videoseg/avg_turns": float(np.mean([s.num_turns for s in valid])),
           "videoseg/select_rate": float(np.mean([s.num_selects > 0 for s in valid])),
           "videoseg/final_keyframe_iou": float(np.mean([s.inputs.per_round_keyframe_ious[-1] if
                                                         s.inputs.per_round_keyframe_ious else 0.0 for s in valid])),
           "videoseg/final_mask_iou": float(np.mean([np.mean(s.inputs.per_round_maskious[-1]) if
                                                     s.inputs.per_round_maskious else 0.0 for s in valid]))}
    for name in valid[0].per_term:
        out[f"videoseg/reward/{name}"] = float(np.mean([s.per_term[name] for s in valid]))
    jfs = [s.inputs.jf for s in valid if s.inputs.jf is not None]
    if jfs:  # the J&F the reward used: 0 for a scored row that sent no request (no [SEG])
        out["videoseg/jf"] = float(np.mean(jfs))
    counts = [int(n.flatten()[0]) for n in nsegs]
    values = [float(v.flatten()[j]) for v, n in zip(mask_logps, counts) for j in range(n)]
    if values:
        out["videoseg/calibration/mask_logp_mean"] = float(np.mean(values))
        out["videoseg/calibration/mask_logp_abs_max"] = float(np.max(np.abs(values)))
    out["videoseg/segs_per_sample"] = float(np.mean(counts)) if counts else 0.0
    return out
