# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""VideoSEG-O3 through verl's trainer with verl's own vLLM rollout on CPU (`videoseg-o3 demo --quick --rollout vllm`).

Multi-turn agent loop with scripted ``<select>`` turns (teacher-forced by vLLM), seg-head engine with
calibration, the weight-sync filter that keeps the seg head out of vLLM (vLLM rejects unknown weight names),
rewards, GRPO; the weights reach vLLM after every update through verl's shared-memory bucket.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.e2e.runner import run_cli, tail
from videoseg_o3_verl.backends.vllm_cpu.shm import PREFIXES, SHM_DIR

pytestmark = [pytest.mark.vllm, pytest.mark.e2e, pytest.mark.ray]

LR = 1e-3
TOLERANCE = 0.005
"""Largest |rollout_corr/log_ppl_diff - mask offset| accepted (the offset is exact for a uniform model only;
measured: 0.0007 at step 1, 0.0027 at step 2)."""


def _mask_offset(model_dir: Path) -> float:
    """Mean rollout-minus-actor log-prob that verl's rollout logit mask adds for a near-uniform tiny model.

    verl's vLLM rollout sets the padded vocabulary rows and the 5 vision placeholder tokens to -inf before the
    softmax; the actor does not. For a random model whose next-token distribution is close to uniform over the V
    padded rows, every allowed token gains log(V / allowed), e.g. log(704 / (661 - 5)) = 0.0706.
    """
    config = json.loads((model_dir / "config.json").read_text())
    vocab = config["text_config"]["vocab_size"]
    tokenizer_config = json.loads((model_dir / "tokenizer.json").read_text())
    tokens = len(tokenizer_config["model"]["vocab"]) + len(tokenizer_config["added_tokens"])
    return math.log(vocab / (tokens - 5))


def _segments() -> set[str]:
    return {p.name for p in SHM_DIR.iterdir() if p.name.startswith(PREFIXES)} if SHM_DIR.is_dir() else set()


def test_videoseg_o3_two_steps_with_vllm_rollout(tmp_path, tiny_qwen25_path):
    before = _segments()
    out = tmp_path / "demo"
    # a learning rate that moves the policy far enough in one step for a stale rollout to show (see below)
    proc, _ = run_cli(["demo", "--quick", "--rollout", "vllm", "--output-dir", str(out), "--steps", "2",
                       f"actor_rollout_ref.actor.optim.lr={LR}"], tmp_path)
    assert proc.returncode == 0, tail(proc)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = {r["step"]: r["data"] for r in rows if "actor/pg_loss" in r["data"]}
    assert sorted(steps) == [1, 2]
    offset = _mask_offset(Path(tiny_qwen25_path))
    for step, data in steps.items():
        for key in ("videoseg/reward/total", "videoseg/calibration/mask_logp_mean", "actor/videoseg/aux_loss",
                    "actor/pg_loss", "actor/kl_loss", "actor/grad_norm", "timing_s/update_weights"):
            assert math.isfinite(float(data[key])), f"step {step}: {key}={data.get(key)}"
        assert float(data["videoseg/calibration/mask_logp_mean"]) < 0
        assert float(data["critic/score/mean"]) == pytest.approx(float(data["videoseg/reward/total"]), abs=1e-5)
        # rollout (vLLM) vs actor log-probs of the same tokens: equal up to verl's rollout logit mask
        diff = float(data["rollout_corr/log_ppl_diff"])
        assert abs(diff - offset) < TOLERANCE, f"step {step}: log_ppl_diff {diff} vs mask offset {offset:.4f}"
    assert max(float(d["videoseg/avg_turns"]) for d in steps.values()) > 1.0, "no multi-turn trajectory"
    # vLLM received the update: step 2's rollout agrees with the updated actor, which has moved away from the
    # initial weights by KL ~ actor/kl_loss (the reference is the initial model). A rollout still on the initial
    # weights would sample from the reference and raise log_ppl_diff by about KL(reference || actor), i.e. more
    # than the tolerance.
    assert float(steps[2]["actor/kl_loss"]) > 2 * TOLERANCE, steps[2]["actor/kl_loss"]
    assert (out / "report.html").is_file()
    assert not (_segments() - before), "the run left /dev/shm segments behind"
