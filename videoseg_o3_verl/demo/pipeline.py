# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""``videoseg-o3 demo``: the method learns, in miniature, on a CPU.

Stages (each the project's real CLI or trainer, its full output in ``logs/<stage>.log``, one progress line with an
ETA on the console):

1. ``data``: synthetic RVOS training videos and a disjoint held-out set (another seed), converted to verl parquet
   (``videoseg-o3 synthetic``), and the tiny random Qwen-VL and SAM2 (cached);
2. ``vts-cot``: cold-start trajectories from the training parquet (``videoseg-o3 vts-cot``);
3. ``sft``: the cold start on verl's SFT trainer, seg head supervised (``videoseg-o3 sft``);
4. ``seg-head``: the cold start's last part, a new seg head trained alone on the frozen SFT policy (the same SFT
   recipe with ``videoseg_o3.trainable_modules`` without ``policy``; skipped when ``head_steps`` is 0); its
   checkpoint is the "SFT" policy of the evaluation and the start of RL;
5. ``rl``: VideoSEG-O3 RL on verl's PPO trainer from the cold-start checkpoint, no scripted replies (``videoseg-o3
   train``);
6. ``eval``: ``videoseg-o3 eval`` of the fixed guess, the SFT and the RL policies on the held-out samples;
7. ``report``: ``summary.json`` (means with 95 % bootstrap intervals) and ``report.html`` (curves, table,
   trajectories).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from .config import HELDOUT_SEED_OFFSET, DemoConfig
from .console import console_to_log
from .models import demo_models
from .stages import Stage, StageFailed, run_stage, videoseg_cli
from .summary import SUMMARY_FILE, summary_table, write_summary
from .tracker import count_steps

SFT_STEP_KEY = "sft/ce"
"""A metric every SFT training step logs (counts the steps done)."""
RL_STEP_KEY = "actor/pg_loss"
"""A metric every RL training step logs (counts the steps done)."""
TRAINED_POLICIES = ("sft", "rl")
"""The demo's checkpoints that are evaluated (next to the fixed guess)."""
JOURNAL = "predictions.jsonl"
"""The eval's journal: one line per evaluated sample (the eval stage's progress)."""


@dataclass(frozen=True)
class DemoPaths:
    """Where each stage reads and writes, under the output folder."""

    root: Path
    """The output folder."""

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def train_videos(self) -> Path:
        return self.root / "data" / "train"

    @property
    def heldout_videos(self) -> Path:
        return self.root / "data" / "heldout"

    @property
    def train_parquet(self) -> Path:
        return self.train_videos / "train.parquet"

    @property
    def heldout_parquet(self) -> Path:
        return self.heldout_videos / "train.parquet"

    @property
    def sft_parquet(self) -> Path:
        return self.root / "data" / "vts_cot.parquet"

    @property
    def sft_dir(self) -> Path:
        return self.root / "sft"

    @property
    def head_dir(self) -> Path:
        """The seg-head stage's checkpoints and metrics (an SFT run on the SFT policy, hence the name)."""
        return self.root / "sft_head"

    @property
    def rl_dir(self) -> Path:
        return self.root / "rl"

    def outputs(self) -> list[Path]:
        """Everything a run writes (removed before a new run: a stale checkpoint or eval journal would be resumed)."""
        return [self.root / name for name in ("data", "sft", "sft_head", "rl", "eval", "logs", "summary.json",
                                              "report.html")]

    def metrics(self, stage: str) -> Path:
        """verl's file-tracker JSONL of a training stage."""
        return self.root / stage / "metrics.jsonl"

    def eval_dir(self, policy: str) -> Path:
        return self.root / "eval" / policy

    def sft_checkpoint(self, steps: int) -> Path:
        return self.sft_dir / f"global_step_{steps}"

    def coldstart_checkpoint(self, cfg: DemoConfig) -> Path:
        """The end of the cold start (``hf_policy/`` + ``seg_head/``): the seg-head stage's checkpoint, or the SFT's
        when that stage is skipped."""
        if cfg.head_steps:
            return self.head_dir / f"global_step_{cfg.head_steps}"
        return self.sft_checkpoint(cfg.sft_steps)

    def rl_policy(self, steps: int) -> Path:
        """The RL run's final policy (HF folder; its seg head is the sibling ``seg_head/``)."""
        return self.rl_dir / f"global_step_{steps}" / "actor" / "huggingface"


def _count_videos(root: Path) -> int:
    frames = root / "JPEGImages"
    return sum(1 for _ in frames.iterdir()) if frames.is_dir() else 0


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def data_stage(cfg: DemoConfig, paths: DemoPaths, models: dict[str, str]) -> Stage:
    """Training and held-out videos (disjoint seeds) with their parquet files, then the tiny models."""
    def synthetic(root: Path, videos: int, seed: int) -> tuple[str, ...]:
        return videoseg_cli("synthetic", "--root", str(root), "--num-videos", str(videos), "--seed", str(seed),
                            "--parquet-dir", str(root), "--preset", cfg.data_preset)

    def build_models() -> None:
        models.update(demo_models(cfg))

    return Stage("data", (synthetic(paths.train_videos, cfg.n_train, cfg.seed),
                          synthetic(paths.heldout_videos, cfg.n_eval, cfg.seed + HELDOUT_SEED_OFFSET), build_models),
                 total=cfg.n_train + cfg.n_eval, unit="video",
                 progress=lambda: _count_videos(paths.train_videos) + _count_videos(paths.heldout_videos))


def vts_cot_stage(cfg: DemoConfig, paths: DemoPaths) -> Stage:
    from ..launch import recipe_path

    argv = videoseg_cli("vts-cot", "--data", str(paths.train_parquet), "--out", str(paths.sft_parquet), "--seed",
                        str(cfg.seed), "--max-selects", str(cfg.max_selects), "--think-style", cfg.think_style,
                        "--env-file", str(recipe_path(cfg.env_recipe)))
    return Stage("vts-cot", (argv,),
                 total=1, unit="file", progress=lambda: int(paths.sft_parquet.is_file()))


def sft_stage(cfg: DemoConfig, paths: DemoPaths, models: dict[str, str]) -> Stage:
    metrics = paths.metrics("sft")
    argv = videoseg_cli("sft", "--config-name", cfg.sft_recipe, f"model.path={models['model']}",
                        f"videoseg_o3.sam2.checkpoint={models['sam2']}", f"data.train_files={paths.sft_parquet}",
                        f"trainer.default_local_dir={paths.sft_dir}", f"trainer.total_training_steps={cfg.sft_steps}",
                        f"trainer.seed={cfg.seed}", "trainer.logger=[console,file]")
    return Stage("sft", (argv,), total=cfg.sft_steps, unit="step",
                 progress=lambda: count_steps(metrics, SFT_STEP_KEY),
                 env={**_tracker_env(metrics), **stage_threads_env(cfg)})


def head_stage(cfg: DemoConfig, paths: DemoPaths, models: dict[str, str]) -> Stage:
    """A new seg head trained alone on the frozen SFT policy (``DemoConfig.head_steps``): the SFT's own head is left
    behind (it can end the cold start stuck on an empty-mask plateau that further head-only steps do not leave)."""
    from ..config import TRAINABLE_GROUPS

    metrics = paths.metrics("sft_head")
    start = paths.sft_checkpoint(cfg.sft_steps)
    head_only = ",".join(group for group in TRAINABLE_GROUPS if group != "policy")
    argv = videoseg_cli("sft", "--config-name", cfg.sft_recipe, f"model.path={start / 'hf_policy'}",
                        f"videoseg_o3.trainable_modules=[{head_only}]", f"videoseg_o3.sam2.checkpoint={models['sam2']}",
                        f"data.train_files={paths.sft_parquet}",
                        f"trainer.default_local_dir={paths.head_dir}", f"trainer.total_training_steps={cfg.head_steps}",
                        f"trainer.total_epochs={cfg.head_steps}",  # a step per epoch at least, however small the data
                        f"trainer.seed={cfg.seed}", "trainer.logger=[console,file]")
    return Stage("seg-head", (argv,), total=cfg.head_steps, unit="step",
                 progress=lambda: count_steps(metrics, SFT_STEP_KEY),
                 env={**_tracker_env(metrics), **stage_threads_env(cfg)})


def rl_stage(cfg: DemoConfig, paths: DemoPaths, models: dict[str, str]) -> Stage:
    metrics = paths.metrics("rl")
    start = paths.coldstart_checkpoint(cfg)
    argv = videoseg_cli("train", "--config-name", cfg.rl_recipe, f"actor_rollout_ref.model.path={start / 'hf_policy'}",
                        f"videoseg_o3.seg_head.path={start / 'seg_head'}",
                        f"videoseg_o3.sam2.checkpoint={models['sam2']}", f"data.train_files={paths.train_parquet}",
                        f"data.val_files={paths.heldout_parquet}", f"data.seed={cfg.seed}",
                        f"trainer.total_training_steps={cfg.rl_steps}",
                        f"trainer.save_freq={cfg.rl_steps}", f"trainer.default_local_dir={paths.rl_dir}",
                        "trainer.resume_mode=disable",
                        "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]",
                        "trainer.logger=[console,file]")
    return Stage("rl", (argv,), total=cfg.rl_steps, unit="step", progress=lambda: count_steps(metrics, RL_STEP_KEY),
                 env=_tracker_env(metrics))


def eval_runs() -> tuple[str, ...]:
    """The eval runs: each fixed-guess variant (the best is the baseline), then the SFT and RL checkpoints."""
    from ..eval.fixed_guess import FIXED_GUESS_MASKS

    return (*(f"fixed_guess_{mask}" for mask in FIXED_GUESS_MASKS), *TRAINED_POLICIES)


def eval_stage(cfg: DemoConfig, paths: DemoPaths, models: dict[str, str]) -> Stage:
    """``videoseg-o3 eval`` of every run of :func:`eval_runs` on the first ``n_eval`` held-out samples."""
    policy = {"sft": ["--model", str(paths.coldstart_checkpoint(cfg) / "hf_policy")],
              "rl": ["--model", str(paths.rl_policy(cfg.rl_steps))]}
    runs = eval_runs()
    steps = tuple(videoseg_cli("eval", "--config-name", cfg.eval_recipe,
                               *policy.get(run, ["--fixed-guess", run.removeprefix("fixed_guess_")]),
                               "--sam2", models["sam2"], "--data", str(paths.heldout_parquet), "--limit",
                               str(cfg.n_eval), "--output-dir", str(paths.eval_dir(run))) for run in runs)
    return Stage("eval", steps, total=len(runs) * cfg.n_eval, unit="episode",
                 progress=lambda: sum(_count_lines(paths.eval_dir(run) / JOURNAL) for run in runs),
                 env=stage_threads_env(cfg))


def stage_threads_env(cfg: DemoConfig) -> dict[str, str]:
    """The one-process stages' torch threads (the SFT reads its items in the training process: no loader worker
    takes the second core)."""
    return {"OMP_NUM_THREADS": str(cfg.stage_threads())}


def _tracker_env(metrics: Path) -> dict[str, str]:
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.unlink(missing_ok=True)
    return {"VERL_FILE_LOGGER_PATH": str(metrics), "WANDB_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _check_outputs(stage: str, paths: DemoPaths, *required: Path) -> None:
    missing = [p for p in required if not p.exists()]
    if missing:
        raise StageFailed(stage, paths.logs / f"{stage}.log", f"it wrote no {', '.join(map(str, missing))}")


def report_stage(cfg: DemoConfig, paths: DemoPaths, walls: dict[str, float], started: float,
                 result: dict[str, Any]) -> Stage:
    """Per-policy means with bootstrap intervals → ``summary.json``, then ``report.html``; fills ``result``."""
    from .report import write_demo_report
    from .scores import policy_metrics

    def summarise() -> None:
        result["eval"], result["fixed_guess"] = policy_metrics(paths.root / "eval", TRAINED_POLICIES)
        write_summary(paths.root / SUMMARY_FILE, cfg.n_eval, time.perf_counter() - started, result["eval"], walls)

    def report() -> None:
        result["report"] = write_demo_report(paths, cfg, result["eval"], result["fixed_guess"])

    return Stage("report", (summarise, report), total=2, unit="file",
                 progress=lambda: int((paths.root / SUMMARY_FILE).is_file()) + int("report" in result))


def recipe_steps(recipe: str) -> int:
    """``trainer.total_training_steps`` of a recipe; the error says which flag sets it instead."""
    from ..launch import compose_recipe

    steps = compose_recipe(recipe).trainer.get("total_training_steps")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"[demo] recipe {recipe!r} sets no trainer.total_training_steps (got {steps!r}): pass the "
                         "stage's steps (--sft-steps / --rl-steps)")
    return steps


def with_steps(cfg: DemoConfig) -> DemoConfig:
    """``cfg`` with the SFT and RL step counts filled in from their recipes where unset."""
    return replace(cfg, sft_steps=cfg.sft_steps or recipe_steps(cfg.sft_recipe),
                   rl_steps=cfg.rl_steps or recipe_steps(cfg.rl_recipe))


def run_demo(cfg: DemoConfig | None = None) -> int:
    """The whole learning demo (module docstring); returns a process exit code (1 when a stage failed, after
    printing which one and the end of its log)."""
    try:
        cfg = with_steps(cfg or DemoConfig())
    except (FileNotFoundError, ValueError) as err:
        print(f"[demo] {err}", flush=True)
        return 1
    paths = DemoPaths(Path(cfg.output_dir).resolve())
    for old in paths.outputs():
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
    paths.logs.mkdir(parents=True)
    print(f"[demo] output: {paths.root}\n[demo] logs: {paths.logs}", flush=True)
    started = time.perf_counter()
    models: dict[str, str] = {}
    walls: dict[str, float] = {}
    result: dict[str, Any] = {}
    plan = [(lambda: data_stage(cfg, paths, models), (paths.train_parquet, paths.heldout_parquet)),
            (lambda: vts_cot_stage(cfg, paths), (paths.sft_parquet,)),
            (lambda: sft_stage(cfg, paths, models), (paths.sft_checkpoint(cfg.sft_steps) / "hf_policy",)),
            *([(lambda: head_stage(cfg, paths, models),
                tuple(paths.coldstart_checkpoint(cfg) / part for part in ("hf_policy", "seg_head")))]
              if cfg.head_steps else []),
            (lambda: rl_stage(cfg, paths, models), (paths.rl_policy(cfg.rl_steps),)),
            (lambda: eval_stage(cfg, paths, models), tuple(paths.eval_dir(r) / "metrics.json" for r in eval_runs())),
            (lambda: report_stage(cfg, paths, walls, started, result), ())]
    with console_to_log(paths.logs / "demo.log") as console:
        try:
            for i, (build, outputs) in enumerate(plan, start=1):
                stage = build()
                walls[stage.name] = run_stage(stage, paths.logs / f"{stage.name}.log", console,
                                              label=f"[{i}/{len(plan)}] {stage.name}")
                _check_outputs(stage.name, paths, *outputs)
        except StageFailed as failure:
            print(str(failure), file=console)
            return 1
        wall_s = time.perf_counter() - started
        write_summary(paths.root / SUMMARY_FILE, cfg.n_eval, wall_s, result["eval"], walls)
        _print_result(console, paths, result["eval"], walls, wall_s, result["report"])
    return 0


def _print_result(console: TextIO, paths: DemoPaths, evaluation: dict[str, Any], walls: dict[str, float],
                  wall_s: float, report: Path) -> None:
    stages = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in walls.items())
    lines = [f"[demo] done in {wall_s:.0f} s ({stages})", *summary_table(evaluation),
             f"[demo] summary: {paths.root / SUMMARY_FILE}", f"[demo] report: {report}"]
    print("\n".join(lines), file=console)
