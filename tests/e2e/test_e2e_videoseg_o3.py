# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""VideoSEG-O3 end to end through verl's trainer on CPU (the `videoseg-o3 demo --quick` plumbing run): multi-turn
agent loop with scripted selects, seg-head engine (SEG-aware calibration + aux loss), post-forward rewards, GRPO update
over two PPO mini-batches, checkpoint save and resume, HTML report.

The main run uses the paper recipes' parity switches (log-prob temperature 1 with a different rollout temperature,
released aux-loss pooling) and the engine's test-only dump (``videoseg_o3.debug.dump_dir``) to check the calibrated
old log-probs and the per-mini-batch PPO/KL metrics; the resume run switches calibration off."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from .runner import run_cli, tail

pytestmark = [pytest.mark.e2e, pytest.mark.ray]


def _g(u: float) -> float:
    # lr_maskiou_dense per-frame score (docs/method.md §5), written out for this test
    return min(3 * (u - 0.4), 1.5) if u > 0.4 else (0.0 if u > 0.2 else -1.0)


def _expected_total(sample: dict) -> float:
    """The seven paper terms recomputed by hand for a scripted <select> → <answer> trajectory (docs/method.md §5)."""
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


def _engine_dump(folder: Path) -> tuple[list[dict], list[dict]]:
    """(old-log-prob pass records, update micro-batch records) written by the actor engine."""
    rows = [json.loads(line) for path in sorted(folder.glob("engine_actor_*.jsonl"))
            for line in path.read_text().splitlines()]
    return [r for r in rows if r["pass"] == "old"], [r for r in rows if r["pass"] == "update"]


def _seg_log_probs(old_passes: list[dict]) -> list[tuple[float, float, float]]:
    """(plain token log-prob, old log-prob stored for the update, logged mask log-prob) of every [SEG] target."""
    return [seg for r in old_passes for seg in zip(r["plain"], r["final"], r["mask_logp"], strict=True)]


def _changed(before: dict, after: dict, rename=lambda k: k) -> list[str]:
    return [k for k in after if rename(k) in before
            and not (before[rename(k)].float() - after[k].float()).abs().max() < 1e-7]


def _metrics(out) -> dict[int, dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["data"] for r in rows if "actor/pg_loss" in r["data"]}


def test_e2e_videoseg_o3_demo_trains_saves_and_resumes(tmp_path):
    out = tmp_path / "demo"
    dump = tmp_path / "engine_dump"
    proc, _ = run_cli(["demo", "--quick", "--output-dir", str(out), "--steps", "2", "trainer.save_freq=2",
                       "trainer.test_freq=2",
                       # 2 prompts per step, 1 per PPO mini-batch: two optimizer steps per training step
                       "actor_rollout_ref.actor.ppo_mini_batch_size=1",
                       "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
                       # log-probs at temperature 1 while the rollout samples at 0.7 (the paper: 1 vs 0.9)
                       "actor_rollout_ref.rollout.temperature=0.7", "videoseg_o3.logprob_temperature=1.0",
                       "videoseg_o3.aux_loss.pooling=released", f"videoseg_o3.debug.dump_dir={dump}",
                       "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]"],
                      tmp_path)
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
        assert float(data["actor/videoseg/seg_dropped"]) == 0  # scripted trajectories have <= 3 [SEG]s
        # the demo scripts replies with probability 0.5: some trajectories of the step are scripted, not all
        assert 0.0 < float(data["rollout/scripted_fraction"]) < 1.0, data.get("rollout/scripted_fraction")
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
        assert sample["scripted"] is True
        # each turn's own [SEG] mask preview (64 × 64), not only the final one
        assert [len(m) for m in sample["turn_key_masks"]] == [64 * 64, 64 * 64]
        assert sample["turn_key_masks"][1] == sample["final_key_mask"]
    for step in (1, 2):  # GRPO signal: mean of the dumped totals equals verl's score metric
        totals = [d["total"] for d in dumped if d["step"] == step]
        assert np.mean(totals) == pytest.approx(float(steps[step]["critic/score/mean"]), abs=1e-5)

    # SEG-aware calibration: the old log-prob stored for the update at every [SEG] target is the plain token
    # log-prob plus the logged mask log-likelihood (< 0), computed at log-prob temperature 1, not the rollout's 0.7
    old_passes, updates = _engine_dump(dump)
    segs = _seg_log_probs(old_passes)
    assert segs, "no [SEG] target in the old-log-prob passes"
    for plain, final, mask_logp in segs:
        assert mask_logp < -1e-3
        assert final == pytest.approx(plain + mask_logp, abs=1e-5)
    assert {r["temperature"] for r in old_passes} == {1.0}
    # two PPO mini-batches per step: optimizer steps 0, 1 (step 1) and 2, 3 (step 2). The first mini-batch of a
    # step runs on the weights that computed the old log-probs (mask term included): ratio 1, ppo_kl ~ 0; the
    # second one runs after an update. At the very first mini-batch the policy still equals the reference, so the
    # k3 KL is ~0 only if the reference forward used the same log-prob temperature as the actor.
    by_step = {r["optimizer_steps"]: r["metrics"] for r in updates}
    assert sorted(by_step) == [0, 1, 2, 3]
    for first in (0, 2):
        assert abs(by_step[first]["actor/ppo_kl"]) < 1e-5, by_step[first]
    assert max(abs(by_step[second]["actor/ppo_kl"]) for second in (1, 3)) > 1e-7
    assert abs(by_step[0]["kl_loss"]) < 1e-6, by_step[0]

    # the update changed the policy and the seg head (the head's SAM2 decoder starts from the SAM2 checkpoint)
    from videoseg_o3_verl.model.tiny import tiny_qwen_vl, tiny_sam2

    step_dir = out / "checkpoints" / "global_step_2" / "actor"
    policy_before = load_file(str(tiny_qwen_vl("qwen2_5_vl") / "model.safetensors"))
    policy_after = {}
    for shard in (step_dir / "huggingface").glob("*.safetensors"):
        policy_after.update(load_file(str(shard)))
    changed = _changed(policy_before, policy_after)
    assert any("lm_head" in k for k in changed) and len(changed) > len(policy_before) // 2, changed
    sam2 = torch.load(tiny_sam2(), map_location="cpu", weights_only=False)["model"]
    head = load_file(str(step_dir / "seg_head" / "seg_head.safetensors"))
    head_changed = _changed(sam2, head, rename=lambda k: "sam_" + k)
    assert any(k.startswith("mask_decoder.") for k in head_changed), sorted(head)[:5]
    assert any(k.startswith("prompt_encoder.") for k in head_changed), sorted(head)[:5]

    report = (out / "report.html").read_text()
    for term in ("strict_format_cot", "lr_keyframe_vs_mask_dense", "&lt;think&gt;"):
        assert term in report
    assert '<section class="sample scripted">' in report  # the scripted select → answer trajectories are marked
    assert "[SEG] mask not recorded" not in report  # every turn with a [SEG] shows its own mask
    head_dir = out / "checkpoints" / "global_step_2" / "actor" / "seg_head"
    assert (head_dir / "seg_head.safetensors").is_file() and (head_dir / "seg_head_config.json").is_file()
    from videoseg_o3_verl.model.seg_head_io import load_seg_head

    head, _ = load_seg_head(head_dir)  # the trained head reloads on its own (strict keys)
    assert head.hidden_size == 64

    # resume: same command with one more step continues from the step-2 checkpoint; this step also adds the J&F
    # term scored by the SAM2 reward service (Ray actor), which receives the trained decoder weights after the update
    # It also switches calibration off: the old log-probs are then the plain ones although the mask term is logged.
    off_dump = tmp_path / "engine_dump_off"
    proc, _ = run_cli(["demo", "--quick", "--output-dir", str(out), "--steps", "3", "trainer.save_freq=3",
                       "videoseg_o3.rewards.jf.enabled=true", "videoseg_o3.calibration.enabled=false",
                       f"videoseg_o3.debug.dump_dir={off_dump}"], tmp_path)
    assert proc.returncode == 0, tail(proc)
    resumed = _metrics(out)
    assert sorted(resumed) == [3], f"resume should train only step 3, trained {sorted(resumed)}"
    assert (out / "checkpoints" / "global_step_3").is_dir()
    assert 0.0 <= float(resumed[3]["videoseg/reward/jf"]) <= 1.0
    segs = _seg_log_probs(_engine_dump(off_dump)[0])
    assert segs and all(mask_logp < -1e-3 and final == plain for plain, final, mask_logp in segs)
