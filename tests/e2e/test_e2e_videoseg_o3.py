# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""VideoSEG-O3 end to end through verl's trainer on CPU (the `videoseg-o3 demo` main job): multi-turn agent loop
with scripted selects, seg-head engine (SEG-aware calibration + aux loss), post-forward rewards, GRPO update,
checkpoint save and resume, HTML report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from .runner import run_cli, tail

pytestmark = [pytest.mark.e2e, pytest.mark.ray]


def _g(u: float) -> float:
    # lr_maskiou_dense per-frame score (spec §4.5), written out for this test
    return min(3 * (u - 0.4), 1.5) if u > 0.4 else (0.0 if u > 0.2 else -1.0)


def _expected_total(sample: dict) -> float:
    """The seven paper terms recomputed by hand for a scripted <select> → <answer> trajectory (spec §4)."""
    record = json.loads(sample["record"])
    existence = record["mask_existence"]
    answer = sample["trajectory"]["turns"][-1]["vtg"]  # {"start": 0, "end": L-1, "keyframe": L//2}
    s, e, k = answer["start"], answer["end"], answer["keyframe"]
    # strict + step format: both turns have <think> with Step 1/2/3 + Action and a JSON <VTG> and [SEG]
    total = 1.0 + 1.0
    # temporal "IoU" of the released code: precision over the end-exclusive interval [s, e)
    precision = sum(existence[s:e]) / (e - s) if sum(existence) else 1.0
    total += -0.5 if precision < 0.5 else 0.5 * precision
    total += 1.0 if existence[k] > 0.5 else -1.0
    last = sample["per_round_maskious"][-1]
    total += float(np.mean([_g(u) for u in last]))
    keys = sample["per_round_keyframe_ious"]
    delta = keys[-1] - float(np.mean(last))  # if/if quirk: δ>0.1 → 0.5; δ>-0.05 → 0; else -1
    total += 0.5 if delta > 0.1 else (0.0 if delta > -0.05 else -1.0)
    delta = keys[-1] - max(keys[:-1])
    total += 0.5 if delta > 0.05 else (0.0 if delta > -0.05 else -1.0)
    return total


def _metrics(out) -> dict[int, dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["data"] for r in rows if "actor/pg_loss" in r["data"]}


def test_e2e_videoseg_o3_demo_trains_saves_and_resumes(tmp_path):
    out = tmp_path / "demo"
    proc, _ = run_cli(["demo", "--output-dir", str(out), "--steps", "2", "trainer.save_freq=2",
                       "trainer.test_freq=2"], tmp_path)
    assert proc.returncode == 0, tail(proc)
    assert "report:" in proc.stdout and "videoseg/reward/total" in proc.stdout  # the printed metrics table
    # quiet console: progress bar, step rows and paths only; verl's config and Ray's log stream are in the log file
    console_lines = proc.stdout.count("\n") + proc.stderr.count("\n")
    assert console_lines <= 40, f"{console_lines} console lines:\n{tail(proc)}"
    assert "actor_rollout_ref" in (out / "logs" / "trainer.log").read_text()
    steps = _metrics(out)
    assert sorted(steps) == [1, 2]
    for step, data in steps.items():
        for key in ("videoseg/reward/total", "videoseg/calibration/mask_logp_mean", "actor/videoseg/aux_loss",
                    "actor/pg_loss", "actor/kl_loss", "actor/grad_norm"):
            assert math.isfinite(float(data[key])), f"step {step}: {key}={data.get(key)}"
        assert float(data["videoseg/calibration/mask_logp_mean"]) < 0  # a log-likelihood of the rollout mask
        assert float(data["actor/videoseg/aux_loss"]) > 0
        # the mask term is in the old log-probs too: one update on the same weights has ratio exactly 1
        assert abs(float(data["actor/ppo_kl"])) < 1e-6
        # the trainer's rewards are what verl's advantage step read (rm_scores)
        assert float(data["critic/score/mean"]) == pytest.approx(float(data["videoseg/reward/total"]), abs=1e-5)
    assert max(float(d["videoseg/avg_turns"]) for d in steps.values()) > 1.0, "no multi-turn trajectory"
    # validation ran the same path (actor forward, mask rewards) and reports per dataset
    assert 0.0 <= float(steps[2]["val-videoseg/synthetic/final_mask_iou"]) <= 1.0
    assert math.isfinite(float(steps[2]["val-videoseg/synthetic/reward"]))

    dumped = [json.loads(line) for line in (out / "dump" / "samples.jsonl").read_text().splitlines()]
    scripted = [d for d in dumped if [t["kind"] for t in d["trajectory"]["turns"]] == ["select", "answer"]]
    assert scripted, "expected scripted select → answer trajectories"
    for sample in scripted:
        assert sample["total"] == pytest.approx(_expected_total(sample), abs=1e-5)
        # turn 1's [SEG] is decoded on the keyframe the select asked for; turn 0's on L // 2
        turns = sample["trajectory"]["turns"]
        assert turns[1]["seg_keyframe"] == turns[0]["vtg"]["keyframe"]
        assert turns[0]["seg_keyframe"] == sample["trajectory"]["num_frames"] // 2
    for step in (1, 2):  # GRPO signal: mean of the dumped totals equals verl's score metric
        totals = [d["total"] for d in dumped if d["step"] == step]
        assert np.mean(totals) == pytest.approx(float(steps[step]["critic/score/mean"]), abs=1e-5)

    report = (out / "report.html").read_text()
    for term in ("strict_format_cot", "lr_keyframe_vs_mask_dense", "&lt;think&gt;"):
        assert term in report
    assert '<section class="sample scripted">' in report  # the scripted select → answer trajectories are marked
    head_dir = out / "checkpoints" / "global_step_2" / "actor" / "seg_head"
    assert (head_dir / "seg_head.safetensors").is_file() and (head_dir / "seg_head_config.json").is_file()
    from videoseg_o3_verl.model.seg_head_io import load_seg_head

    head, _ = load_seg_head(head_dir)  # the trained head reloads on its own (strict keys)
    assert head.hidden_size == 64

    # resume: same command with one more step continues from the step-2 checkpoint; this step also adds the J&F
    # term scored by the SAM2 reward service (Ray actor), which receives the trained decoder weights after the update
    proc, _ = run_cli(["demo", "--output-dir", str(out), "--steps", "3", "trainer.save_freq=3",
                       "videoseg_o3.rewards.jf.enabled=true"], tmp_path)
    assert proc.returncode == 0, tail(proc)
    resumed = _metrics(out)
    assert sorted(resumed) == [3], f"resume should train only step 3, trained {sorted(resumed)}"
    assert (out / "checkpoints" / "global_step_3").is_dir()
    assert 0.0 <= float(resumed[3]["videoseg/reward/jf"]) <= 1.0
