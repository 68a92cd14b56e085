# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The demo's quiet console: everything the process and its children write goes to the log file; only what the
demo writes to the yielded console stream is shown."""

import os
import subprocess
import sys

import pytest

from videoseg_o3_verl.demo import console_to_log, log_tail


def test_console_to_log_captures_process_and_children(tmp_path, capfd):
    log = tmp_path / "logs" / "trainer.log"
    with console_to_log(log) as console:
        print("python stdout")
        print("python stderr", file=sys.stderr)
        os.write(1, b"raw fd 1\n")
        child = "import sys; print('child process'); print('child err', file=sys.stderr)"
        subprocess.run([sys.executable, "-c", child], check=True)
        console.write("progress row\n")
    print("after")
    shown = capfd.readouterr()
    assert shown.out == "progress row\nafter\n" and shown.err == ""
    logged = log.read_text()
    for text in ("python stdout", "python stderr", "raw fd 1", "child process", "child err"):
        assert text in logged
    assert "progress row" not in logged
    assert log_tail(log, 2) == "child process\nchild err"


# ---- the learning demo's console: one line per stage, the table, the paths; the stages' output in their logs ----

STAGE_NAMES = ("data", "vts-cot", "sft", "seg-head", "rl", "eval")


def _fake_stages(monkeypatch, fail: str | None = None):
    """Each stage: a subprocess printing 300 lines (like verl and Ray) and writing what the next stage checks."""
    from videoseg_o3_verl.demo import pipeline
    from videoseg_o3_verl.demo.stages import Stage

    def fake(name, outputs):
        code = ("import pathlib, sys\nfor i in range(300):\n    print('noise', i); print('err', i, file=sys.stderr)\n"
                + "".join(f"pathlib.Path({str(p)!r}).mkdir(parents=True, exist_ok=True)\n" for p in outputs)
                + ("raise SystemExit(2)\n" if name == fail else ""))
        return Stage(name, ((sys.executable, "-c", code),), total=1, unit="step", progress=lambda: 0)

    def builder(name, outputs_of):
        return lambda cfg, paths, *rest: fake(name, outputs_of(cfg, paths))

    monkeypatch.setattr(pipeline, "data_stage", builder("data", lambda c, p: [p.train_parquet, p.heldout_parquet]))
    monkeypatch.setattr(pipeline, "vts_cot_stage", builder("vts-cot", lambda c, p: [p.sft_parquet]))
    monkeypatch.setattr(pipeline, "sft_stage",
                        builder("sft", lambda c, p: [p.sft_checkpoint(c.sft_steps) / "hf_policy"]))
    monkeypatch.setattr(pipeline, "head_stage", builder(
        "seg-head", lambda c, p: [p.coldstart_checkpoint(c) / part for part in ("hf_policy", "seg_head")]))
    monkeypatch.setattr(pipeline, "rl_stage", builder("rl", lambda c, p: [p.rl_policy(c.rl_steps)]))
    monkeypatch.setattr(pipeline, "eval_stage",
                        builder("eval", lambda c, p: [p.eval_dir(r) / "metrics.json" for r in pipeline.eval_runs()]))
    from videoseg_o3_verl.demo import report, scores
    from videoseg_o3_verl.demo.summary import METRICS, POLICIES

    metrics = {m: {"mean": 0.5, "ci95": [0.4, 0.6]} for m in METRICS}
    monkeypatch.setattr(scores, "policy_metrics", lambda root, policies: ({p: metrics for p in POLICIES}, "full"))
    monkeypatch.setattr(report, "write_demo_report",
                        lambda paths, cfg, evaluation, fixed: (paths.root / "report.html").write_text("<html>") and
                        paths.root / "report.html")


def test_learning_demo_console_budget_and_summary(tmp_path, monkeypatch, capfd):
    import json

    from videoseg_o3_verl.demo import DemoConfig, run_demo

    _fake_stages(monkeypatch)
    out = tmp_path / "demo"
    (out / "rl" / "global_step_9").mkdir(parents=True)  # an earlier run's checkpoint is not resumed
    (out / "notes.txt").write_text("mine")
    assert run_demo(DemoConfig(output_dir=str(out), sft_steps=3, rl_steps=2)) == 0
    shown = capfd.readouterr()
    lines = (shown.out + shown.err).replace("\r", "\n").splitlines()
    final = (shown.out + shown.err).count("\n")
    assert final <= 100, shown.out + shown.err
    assert "noise" not in shown.out + shown.err
    for i, name in enumerate([*STAGE_NAMES, "report"], start=1):
        assert any(f"[{i}/7] {name}" in line for line in lines), name
    assert "fixed_guess" in shown.out and "0.50 [0.40, 0.60]" in shown.out
    assert f"summary: {out / 'summary.json'}" in shown.out and f"report: {out / 'report.html'}" in shown.out
    for name in STAGE_NAMES:
        assert "noise 299" in (out / "logs" / f"{name}.log").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["stages"]) == [*STAGE_NAMES, "report"]
    assert summary["n_eval"] == 300 and summary["wall_s"] >= sum(summary["stages"].values()) - 1e-6
    assert not (out / "rl" / "global_step_9").exists() and (out / "notes.txt").read_text() == "mine"


def test_learning_demo_without_the_seg_head_stage(tmp_path, monkeypatch, capfd):
    """``head_steps=0``: six stages, no seg-head log; the SFT checkpoint is the cold start's end."""
    from videoseg_o3_verl.demo import DemoConfig, run_demo

    _fake_stages(monkeypatch)
    out = tmp_path / "demo"
    assert run_demo(DemoConfig(output_dir=str(out), sft_steps=3, head_steps=0, rl_steps=2)) == 0
    shown = capfd.readouterr().out
    names = [name for name in STAGE_NAMES if name != "seg-head"]
    for i, name in enumerate([*names, "report"], start=1):
        assert f"[{i}/6] {name}" in shown, name
    assert "seg-head" not in shown and not (out / "logs" / "seg-head.log").exists()


def test_learning_demo_failure_names_the_stage_and_its_log(tmp_path, monkeypatch, capfd):
    from videoseg_o3_verl.demo import DemoConfig, run_demo

    _fake_stages(monkeypatch, fail="sft")
    out = tmp_path / "demo"
    assert run_demo(DemoConfig(output_dir=str(out), sft_steps=3, rl_steps=2)) == 1
    shown = capfd.readouterr().out
    assert "stage 'sft' failed" in shown and str(out / "logs" / "sft.log") in shown
    assert "[4/7] seg-head" not in shown and not (out / "summary.json").exists()


def test_learning_demo_steps_default_to_the_recipes(tmp_path, capfd):
    from videoseg_o3_verl.demo import DemoConfig, run_demo
    from videoseg_o3_verl.demo.pipeline import recipe_steps, with_steps

    assert with_steps(DemoConfig(sft_steps=7, rl_steps=5, rl_recipe="tiny_cpu")).rl_steps == 5
    assert with_steps(DemoConfig(sft_steps=7, rl_recipe="tiny_cpu")).rl_steps == recipe_steps("tiny_cpu") == 3
    # a recipe without a step count: the message says which flag to pass, nothing runs
    assert run_demo(DemoConfig(output_dir=str(tmp_path / "d"), sft_recipe="coldstart_tiny_cpu")) == 1
    assert "pass the stage's steps (--sft-steps / --rl-steps)" in capfd.readouterr().out
    assert not (tmp_path / "d").exists()


def test_demo_models_build_the_configured_sam2_width(monkeypatch):
    from videoseg_o3_verl.demo import DemoConfig
    from videoseg_o3_verl.demo.models import demo_models
    from videoseg_o3_verl.model import tiny

    built = {}
    monkeypatch.setattr(tiny, "tiny_qwen_vl", lambda kind, **kw: f"qwen-{kw['hidden_size']}")
    monkeypatch.setattr(tiny, "tiny_sam2", lambda **kw: built.update(kw) or "sam2.pt")
    assert demo_models(DemoConfig()) == {"model": "qwen-128", "sam2": "sam2.pt"}
    assert built == {"image_size": 128, "small_trunk": True, "width": 64}
    demo_models(DemoConfig(sam2_width=256))
    assert built["width"] == 256
    with pytest.raises(ValueError, match="sam2_width"):
        DemoConfig(sam2_width=0)


def test_one_process_stages_get_every_core_and_rl_keeps_the_environment(tmp_path, monkeypatch):
    # The SFT reads its items in the training process and the eval runs in one process: with scripts/cpu_env.sh's
    # OMP_NUM_THREADS=1 they would leave the second core idle. RL's Ray workers keep the environment's setting.
    from videoseg_o3_verl.demo import DemoConfig
    from videoseg_o3_verl.demo.pipeline import DemoPaths, eval_stage, head_stage, rl_stage, sft_stage

    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    models = {"model": "m", "sam2": "s.pt"}
    cfg = DemoConfig(output_dir=str(tmp_path), sft_steps=4, rl_steps=2)
    paths = DemoPaths(tmp_path)
    assert sft_stage(cfg, paths, models).env["OMP_NUM_THREADS"] == "6"
    assert head_stage(cfg, paths, models).env["OMP_NUM_THREADS"] == "6"
    assert eval_stage(cfg, paths, models).env["OMP_NUM_THREADS"] == "6"
    assert "OMP_NUM_THREADS" not in rl_stage(cfg, paths, models).env
    cfg = DemoConfig(output_dir=str(tmp_path), sft_steps=4, rl_steps=2, threads=1)
    assert sft_stage(cfg, paths, models).env["OMP_NUM_THREADS"] == "1"
    with pytest.raises(ValueError, match="threads"):
        DemoConfig(threads=0)


def test_seg_head_stage_trains_the_head_alone_and_rl_and_eval_start_from_it(tmp_path):
    """The seg-head stage runs the SFT recipe on the SFT policy with a new head (no ``seg_head.path``) and the policy
    left out of the trained groups; RL and the "sft" evaluation read its checkpoint, or the SFT's when ``head_steps``
    is 0."""
    from videoseg_o3_verl.demo import DemoConfig
    from videoseg_o3_verl.demo.pipeline import DemoPaths, eval_stage, head_stage, rl_stage

    models = {"model": "m", "sam2": "s.pt"}
    paths = DemoPaths(tmp_path)
    cfg = DemoConfig(output_dir=str(tmp_path), sft_steps=4, head_steps=3, rl_steps=2)
    argv = head_stage(cfg, paths, models).steps[0]
    sft = tmp_path / "sft" / "global_step_4"
    assert f"model.path={sft / 'hf_policy'}" in argv and not any("seg_head.path" in arg for arg in argv)
    assert "videoseg_o3.trainable_modules=[seg_head.proj,seg_head.prompt_encoder,seg_head.mask_decoder]" in argv
    assert "trainer.total_training_steps=3" in argv and f"trainer.default_local_dir={tmp_path / 'sft_head'}" in argv
    head = tmp_path / "sft_head" / "global_step_3"
    assert f"actor_rollout_ref.model.path={head / 'hf_policy'}" in rl_stage(cfg, paths, models).steps[0]
    assert str(head / "hf_policy") in eval_stage(cfg, paths, models).steps[-2]
    skipped = DemoConfig(output_dir=str(tmp_path), sft_steps=4, head_steps=0, rl_steps=2)
    assert f"videoseg_o3.seg_head.path={sft / 'seg_head'}" in rl_stage(skipped, paths, models).steps[0]
    assert str(sft / "hf_policy") in eval_stage(skipped, paths, models).steps[-2]
    with pytest.raises(ValueError, match="head_steps"):
        DemoConfig(head_steps=-1)
