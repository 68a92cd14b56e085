# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""What makes grounding learnable for a CPU-sized policy: cold-start learning curves of task/training variants.

Each variant runs the learning demo's own stages — `videoseg-o3 synthetic --preset <the demo's>`, `videoseg-o3 vts-cot`
and `videoseg-o3 sft --config-name demo_coldstart` (verl's SFT trainer, seg head supervised; not the demo's seg-head
stage after it) — and the SFT checkpoints saved every `--eval-every` steps are evaluated with `evaluate_policies` (the
demo's eval: training observations, greedy multi-turn episodes, SAM2 propagation) on the same held-out videos, next to
the fixed-guess baseline. The table lists, per checkpoint, the training wall time and the five episode metrics with
their 95 % bootstrap intervals.

Variants (one factor changed from the demo's settings, or two where named). The demo's settings changed in the eighth
round (docs/learning_demo.md): one window shared by the three objects (`--preset grounding_shared`), the compact trace
whose step 3 names the query, a [SEG] standardizer. The variants from ``plain_ce`` to ``flat_lr_no_spatial`` were
measured against the demo before that, which is ``separate_windows`` (a window per object, the short trace, no
standardizer; with ``--sft-steps 560``); on today's defaults they change today's demo.

- ``demo``: what `videoseg-o3 demo` trains (compact grounded reasoning, ×5 weight on digit tokens, up to one
  `<select>`, the [SEG] standardizer, shared windows);
- ``raw_head``: no [SEG] standardizer (the head reads the raw [SEG] states, as released);
- ``raw_head_mask4``: ``raw_head`` with the mask loss at four times its weights;
- ``separate_windows``: the demo before the eighth round (see above);
- ``plain_ce``: digit tokens weighted like every other token (`videoseg_o3_sft.digit_weight=1`);
- ``full_think``: the phrased VTS-CoT reasoning (~80 tokens per turn) instead of the compact one;
- ``grounded``: the compact reasoning whose step 3 names the query (`--think-style grounded`);
- ``input_norm``: the seg head standardises the [SEG] states before its projection (`videoseg_o3.seg_head.input_norm`);
- ``grounded_input_norm``: both;
- ``grounded_mask4``: ``grounded`` with the mask loss at four times its weights (BCE 8, Dice 2);
- ``grounded_mask4_input_norm``: ``grounded_mask4`` with the standardiser;
- ``grounded_all_frames``: ``grounded`` with every [SEG] supervised on all frames;
- ``no_select``: every cold-start trajectory answers at once (no `<select>` turn);
- ``all_frames``: every [SEG] decoded and supervised on all frames (`videoseg_o3_sft.supervise_all_frames`);
- ``frame_labels``: "Frame k: " before each low-resolution image (`EnvConfig.frame_labels`; the demo's default now,
  so the same as ``demo``);
- ``no_frame_labels``: the images back to back, as released (the demo's default before the sixth round);
- ``labels_batch8``: frame labels and 8 trajectories per SFT step instead of 16 (the same as ``batch8`` now);
- ``batch8``: 8 trajectories per SFT step instead of 16 (about half the step's cost);
- ``flat_lr``: the learning rate stays at its peak after the warm-up (the demo's schedule now, so the same as
  ``demo``; it was measured against a cosine decay to 0);
- ``no_mask_loss``: the seg head's masks unsupervised (BCE and Dice weights 0): the token loss alone;
- ``flat_lr_no_spatial``: ``flat_lr`` with each [SEG] decoded on its keyframe only (``supervise_spatial=false``: a
  third of the seg-head decodes, ~15 % cheaper steps).

Usage::

    flock /tmp/videoseg_heavy.lock nice .venv/bin/python benchmarks/learning_curve.py \\
        --variants demo,plain_ce --sft-steps 600 --eval-every 200 --out bench_out/learning_curve
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MASK_X4 = ["videoseg_o3_sft.bce_weight=8", "videoseg_o3_sft.dice_weight=2"]
"""The mask loss at four times the demo's weights (BCE 2 -> 8, Dice 0.5 -> 2)."""

VARIANTS: dict[str, dict] = {
    "demo": {"vts_cot": [], "sft": []},
    "plain_ce": {"vts_cot": [], "sft": ["videoseg_o3_sft.digit_weight=1.0"]},
    "full_think": {"vts_cot": ["--think-style", "full"], "sft": []},
    "grounded": {"vts_cot": ["--think-style", "grounded"], "sft": []},
    "input_norm": {"vts_cot": [], "sft": ["videoseg_o3.seg_head.input_norm=true"]},
    "grounded_input_norm": {"vts_cot": ["--think-style", "grounded"], "sft": ["videoseg_o3.seg_head.input_norm=true"]},
    "no_select": {"vts_cot": ["--max-selects", "0"], "sft": []},
    "all_frames": {"vts_cot": [], "sft": ["videoseg_o3_sft.supervise_all_frames=true"]},
    "frame_labels": {"vts_cot": [], "sft": [], "env": {"frame_labels": True}},
    "no_frame_labels": {"vts_cot": [], "sft": [], "env": {"frame_labels": False}},
    "labels_batch8": {"vts_cot": [], "sft": ["data.train_batch_size=8", "data.micro_batch_size_per_gpu=8"],
                      "env": {"frame_labels": True}},
    "flat_lr": {"vts_cot": [], "sft": ["optim.lr_scheduler_type=constant"]},
    "batch8": {"vts_cot": [], "sft": ["data.train_batch_size=8", "data.micro_batch_size_per_gpu=8"]},
    "grounded_mask4": {"vts_cot": ["--think-style", "grounded"], "sft": MASK_X4},
    "grounded_mask4_input_norm": {"vts_cot": ["--think-style", "grounded"],
                                  "sft": [*MASK_X4, "videoseg_o3.seg_head.input_norm=true"]},
    "grounded_all_frames": {"vts_cot": ["--think-style", "grounded"],
                            "sft": ["videoseg_o3_sft.supervise_all_frames=true"]},
    "no_mask_loss": {"vts_cot": [], "sft": ["videoseg_o3_sft.bce_weight=0", "videoseg_o3_sft.dice_weight=0"]},
    "flat_lr_no_spatial": {"vts_cot": [], "sft": ["optim.lr_scheduler_type=constant",
                                                  "videoseg_o3_sft.supervise_spatial=false"]},
    "raw_head": {"vts_cot": [], "sft": ["videoseg_o3.seg_head.input_norm=false"]},
    "raw_head_mask4": {"vts_cot": [], "sft": ["videoseg_o3.seg_head.input_norm=false", *MASK_X4]},
    "separate_windows": {"vts_cot": ["--think-style", "short"], "sft": ["videoseg_o3.seg_head.input_norm=false"],
                         "preset": "grounding"},
}
"""Variant name -> extra `vts-cot` arguments, extra SFT recipe overrides, environment overrides (`env`, for the
cold-start trajectories and the evaluation) and the data preset (`preset`), on top of the demo's."""

METRICS = ("format_valid", "keyframe_hit", "tiou", "jf", "reward_total")


def cli(*args: str, log: Path, env: dict[str, str] | None = None) -> None:
    """Run `python -m videoseg_o3_verl <args>`, its output to `log`; raise with the log's tail on failure."""
    with open(log, "w") as handle:
        env = {**os.environ, "WANDB_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "videoseg_o3_verl", *args], stdout=handle,
                              stderr=subprocess.STDOUT, env=env)
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed; see {log}:\n" + log.read_text()[-3000:])


def variant_preset(name: str) -> str:
    """The variant's synthetic data preset (the demo's unless the variant names one)."""
    from videoseg_o3_verl.demo.config import DemoConfig

    return VARIANTS[name].get("preset", DemoConfig.data_preset)


def make_data(out: Path, preset: str, n_train: int, n_eval: int, seed: int) -> tuple[Path, Path]:
    """Training and held-out (disjoint seed) videos of one preset as RL parquet files (under ``out/<preset>``)."""
    from videoseg_o3_verl.demo.config import HELDOUT_SEED_OFFSET

    out = out / preset
    out.mkdir(parents=True, exist_ok=True)
    for name, videos, data_seed in (("train", n_train, seed), ("heldout", n_eval, seed + HELDOUT_SEED_OFFSET)):
        if not (out / name / "train.parquet").is_file():
            cli("synthetic", "--root", str(out / name), "--preset", preset, "--num-videos", str(videos),
                "--seed", str(data_seed), "--parquet-dir", str(out / name), log=out / f"data_{name}.log")
    return out / "train" / "train.parquet", out / "heldout" / "train.parquet"


def variant_env(name: str) -> dict:
    """The demo's environment overrides (`recipes/demo_env.yaml`) with the variant's own on top."""
    from videoseg_o3_verl.demo.config import DemoConfig
    from videoseg_o3_verl.env import load_env_overrides
    from videoseg_o3_verl.launch import recipe_path

    return {**load_env_overrides(recipe_path(DemoConfig.env_recipe)), **VARIANTS[name].get("env", {})}


def run_variant(name: str, out: Path, train: Path, models: dict[str, str], steps: int, every: int,
                seed: int) -> tuple[dict[int, Path], float]:
    """VTS-CoT + SFT of one variant; returns {step: checkpoint} and the SFT wall seconds."""
    import yaml

    from videoseg_o3_verl.demo.config import DemoConfig
    from videoseg_o3_verl.demo.pipeline import stage_threads_env

    demo = DemoConfig()
    spec = VARIANTS[name]
    work = out / name
    work.mkdir(parents=True, exist_ok=True)
    env_file = work / "env.yaml"
    env_file.write_text(yaml.safe_dump(variant_env(name)))
    sft_parquet = work / "vts_cot.parquet"
    cli("vts-cot", "--data", str(train), "--out", str(sft_parquet), "--seed", str(seed), "--max-selects",
        str(demo.max_selects), "--think-style", demo.think_style, "--env-file", str(env_file), *spec["vts_cot"],
        log=work / "vts_cot.log")
    start = time.perf_counter()
    cli("sft", "--config-name", demo.sft_recipe, f"model.path={models['model']}",
        f"videoseg_o3.sam2.checkpoint={models['sam2']}", f"data.train_files={sft_parquet}",
        f"trainer.default_local_dir={work / 'sft'}", f"trainer.total_training_steps={steps}",
        f"trainer.save_freq={every}", f"trainer.seed={seed}", "trainer.logger=[console,file]", *spec["sft"],
        log=work / "sft.log", env={"VERL_FILE_LOGGER_PATH": str(work / "sft_metrics.jsonl"), **stage_threads_env(demo)})
    wall = time.perf_counter() - start
    checkpoints = {int(p.name.split("_")[-1]): p for p in (work / "sft").glob("global_step_*")}
    return dict(sorted(checkpoints.items())), wall


def fmt(metric: dict) -> str:
    lo, hi = metric["ci95"]
    return f"{metric['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="demo,plain_ce", help=f"comma-separated, from {sorted(VARIANTS)}")
    parser.add_argument("--sft-steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--n-train", type=int, default=1000, help="training videos (3 expressions each)")
    parser.add_argument("--n-eval", type=int, default=300, help="held-out samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench_out/learning_curve")
    args = parser.parse_args(argv)
    if args.n_train * 3 < 16:
        parser.error(f"--n-train {args.n_train} gives {args.n_train * 3} trajectories, fewer than one SFT batch (16)")
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {sorted(VARIANTS)}")

    from videoseg_o3_verl.demo.config import DemoConfig
    from videoseg_o3_verl.demo.models import demo_models
    from videoseg_o3_verl.eval.compare import PolicySpec, evaluate_policies

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = demo_models(DemoConfig())
    rows, baselines = [], {}
    for name in variants:
        preset = variant_preset(name)
        train, heldout = make_data(out, preset, args.n_train, args.n_eval, args.seed)
        checkpoints, wall = run_variant(name, out, train, models, args.sft_steps, args.eval_every, args.seed)
        policies = {f"step_{step}": PolicySpec(model=str(ckpt / "hf_policy"), seg_head=str(ckpt / "seg_head"))
                    for step, ckpt in checkpoints.items()}
        result = evaluate_policies(policies, data=str(heldout), sam2=models["sam2"],
                                   output_dir=str(out / name / "eval"), env_protocol="train", env=variant_env(name),
                                   limit=args.n_eval, fixed_guess=preset not in baselines, progress=False)
        baselines.setdefault(preset, result["eval"].get("fixed_guess"))
        for step in checkpoints:
            rows.append({"variant": name, "preset": preset, "step": step,
                         "sft_wall_s": round(wall * step / args.sft_steps, 1), **result["eval"][f"step_{step}"]})
        print(f"{name}: {len(checkpoints)} checkpoints, SFT {wall:.0f} s", flush=True)
    header = "| variant | SFT step | SFT s (prorated) | " + " | ".join(METRICS) + " |"
    lines = [header, "|" + "---|" * (3 + len(METRICS))]
    for preset, baseline in baselines.items():
        lines.append(f"| fixed guess ({preset}) | – | – | " + " | ".join(fmt(baseline[m]) for m in METRICS) + " |")
    for row in rows:
        lines.append(f"| {row['variant']} | {row['step']} | {row['sft_wall_s']} | "
                     + " | ".join(fmt(row[m]) for m in METRICS) + " |")
    table = "\n".join(lines)
    print(table)
    (out / "learning_curve.md").write_text(table + "\n")
    (out / "learning_curve.json").write_text(json.dumps({"fixed_guess": baselines, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
