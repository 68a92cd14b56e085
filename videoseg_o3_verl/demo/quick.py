# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""``videoseg-o3 demo --quick``: the plumbing run of the whole method (about a minute on 2 cores).

1. writes a small synthetic RVOS dataset (moving shapes, referring and reasoning queries) and converts it to
   verl parquet through the real converter;
2. builds the tiny random Qwen-VL and SAM2 (cached);
3. runs a few VideoSEG-O3 RL steps through verl's trainer (`recipes/tiny_cpu.yaml`: multi-turn agent loop, seg-head
   engine with SEG-aware calibration, the paper's rewards, GRPO) with a progress bar and a per-step metrics table —
   a random model never writes a valid ``<select>``, so some queries get scripted replies to show multi-turn
   trajectories (their log-probs are still the model's own);
4. writes an HTML report: frames shown each turn, selections, predicted vs ground-truth masks, reward terms.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from ..backends.cpu.scripted import SCRIPTED_FIELD
from ..report import StepMetrics, format_metrics_table
from .console import console_to_log, log_tail

TABLE_KEYS = ("videoseg/reward/total", "videoseg/avg_turns", "videoseg/final_keyframe_iou",
              "videoseg/calibration/mask_logp_mean", "actor/videoseg/aux_loss", "actor/pg_loss", "actor/kl_loss",
              "timing_s/step")
"""Columns of the per-step console table."""

SCRIPT_FILE = "scripted_rollout.json"
"""The demo's scripted replies, in the output folder."""

THINK = "<think>Step 1: when. Step 2: where. Step 3: what. Action: look.</think>"


def scripted_rules(num_frames: int, probability: float = 0.5) -> dict:
    """Scripted replies for some trajectories: a ``<select>`` in turn 0 (with ``probability``, so GRPO groups mix
    scripted and sampled trajectories), then an ``<answer>`` in turn 1."""
    mid = num_frames // 2
    select = (THINK + f'<select><VTG>{{"start": {max(0, mid - 6)}, "end": {min(num_frames - 1, mid + 6)}, '
              f'"keyframe": {mid}}}</VTG>, <RefSeg>[SEG]</RefSeg></select>')
    answer = (THINK + f'<answer><VTG>{{"start": 0, "end": '
              f'{num_frames - 1}, "keyframe": {mid}}}</VTG>, <RefSeg>[SEG]</RefSeg></answer>')
    return {"rules": [{"turn": 0, "response": select, "probability": probability}, {"turn": 1, "response": answer}]}


def prepare(output_dir: Path, num_videos: int = 6, num_frames: int = 24, seed: int = 0) -> dict[str, str]:
    """Synthetic data, parquet files, tiny models and the script; returns the paths the recipe needs."""
    from ..data.converters import convert_dataset
    from ..data.parquet import write_parquet
    from ..data.synthetic import generate_synthetic_dataset
    from ..model.tiny import tiny_qwen_vl, tiny_sam2

    data_root = output_dir / "synthetic"
    generate_synthetic_dataset(data_root, num_videos=num_videos, num_frames=num_frames, height=96, width=128,
                               seed=seed)
    records = convert_dataset("synthetic", str(data_root), split="train")
    videos = sorted({r.video_id for r in records})
    val_videos = set(videos[-1:])
    train = [r for r in records if r.video_id not in val_videos]
    val = [r for r in records if r.video_id in val_videos][:4]
    train_path = write_parquet(train, output_dir / "train.parquet", shuffle_seed=seed)
    val_path = write_parquet(val, output_dir / "val.parquet")
    script = output_dir / SCRIPT_FILE
    script.write_text(json.dumps(scripted_rules(num_frames), indent=1))
    return {"model": str(tiny_qwen_vl("qwen2_5_vl")), "sam2": str(tiny_sam2()), "train": str(train_path),
            "val": str(val_path), "script": str(script)}


class MetricsWatcher(threading.Thread):
    """Follows verl's file-tracker JSONL: advances a progress bar and prints one table row per step."""

    def __init__(self, path: Path, total_steps: int, console: TextIO | None = None):
        super().__init__(daemon=True)
        self.path, self.total = path, total_steps
        self.console = console
        self.rows: list[StepMetrics] = []
        self._done = threading.Event()

    def run(self) -> None:
        from tqdm import tqdm

        bar = tqdm(total=self.total, desc="VideoSEG-O3 RL steps", unit="step", file=self.console or sys.stderr)
        seen = 0
        while not self._done.is_set() or seen < self._count():
            lines = self.path.read_text().splitlines() if self.path.exists() else []
            for line in lines[seen:]:
                entry = json.loads(line)
                if "actor/pg_loss" not in entry["data"]:
                    continue
                row = StepMetrics(step=int(entry["step"]), values=entry["data"])
                self.rows.append(row)
                bar.write(format_metrics_table([row], TABLE_KEYS, header=len(self.rows) == 1), file=self.console)
                bar.update(1)
            seen = len(lines)
            time.sleep(0.5)
        bar.close()

    def _count(self) -> int:
        return len(self.path.read_text().splitlines()) if self.path.exists() else 0

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


def is_scripted(entry: dict) -> bool:
    """A dumped trajectory is scripted when the trainer flagged it (some turn's reply came from the script)."""
    return bool(entry.get(SCRIPTED_FIELD))


def build_report(output_dir: Path, rows: list[StepMetrics], max_samples: int = 6) -> Path:
    """HTML report from the trajectories the trainer dumped (``samples.jsonl``)."""
    import numpy as np
    from PIL import Image

    from ..data.records import RVOSRecord
    from ..report import ReportSample, ReportTurn, frames_shown, turn_mask_previews, write_report
    from ..trajectory import EXTRA_FIELDS_KEY, Trajectory
    from ..video import VideoSource

    dumped = output_dir / "dump" / "samples.jsonl"
    entries = [json.loads(line) for line in dumped.read_text().splitlines()] if dumped.exists() else []
    # prefer multi-turn trajectories, then the latest steps
    entries.sort(key=lambda e: (len(e["trajectory"]["turns"]) > 1, e["step"]), reverse=True)
    samples = []
    for entry in entries[:max_samples]:
        record = RVOSRecord.from_json(entry["record"])
        trajectory = Trajectory.from_extra_fields({EXTRA_FIELDS_KEY: entry["trajectory"]})
        video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids) or None)
        turns = []
        for t, (turn, preview) in enumerate(zip(trajectory.turns, turn_mask_previews(entry, trajectory))):
            indices = frames_shown(trajectory, t)
            key = video.get_frame(turn.seg_keyframe)
            pred = None if preview is None else np.asarray(
                Image.fromarray(preview.astype(np.uint8) * 255).resize(key.size, Image.NEAREST)) > 0
            turns.append(ReportTurn(frames=video.get_frames(indices), frame_indices=indices, keyframe_image=key,
                                    pred_mask=pred, gt_mask=record.decode_mask(turn.seg_keyframe)))
        samples.append(ReportSample(record=record, trajectory=trajectory, turns=turns, reward_terms=entry["terms"],
                                    reward_total=entry["total"], step=entry["step"],
                                    scripted=is_scripted(entry)))
    keep = ("videoseg/", "val-videoseg/", "actor/videoseg/")
    extra = {"actor/pg_loss", "actor/kl_loss", "actor/grad_norm", "critic/score/mean", "timing_s/step"}
    table = [StepMetrics(step=row.step,
                         values={k: v for k, v in row.values.items() if k.startswith(keep) or k in extra})
             for row in rows]
    return write_report(output_dir / "report.html", samples, table, title="VideoSEG-O3 CPU demo")


def _script_override(rollout: str, script: str, console: TextIO) -> list[str]:
    """The scripted-replies setting of the rollout backend; verl's stock vLLM server (GPU) has none."""
    from .. import register

    register.register_all()
    if rollout == "vllm" and not register.STATE.get("vllm_cpu_rollout"):
        print("[demo] verl's vLLM server has no scripted replies: every turn is sampled", file=console)
        return []
    return [f"+actor_rollout_ref.rollout.engine_kwargs.{rollout}.scripted_responses={script}"]


def run_quick_demo(output_dir: str = "demo_output", steps: int = 3, overrides: list[str] | None = None,
             rollout: str = "hf") -> int:
    """The whole demo (see the module docstring); returns a process exit code.

    ``rollout``: ``hf`` (the plugin's backend) or ``vllm`` (verl's vLLM rollout; on CPU it needs ``.venv-vllm``).

    The console shows the progress bar, one metrics row per step and the output paths; verl's resolved config,
    its console logger and Ray's log stream go to ``<output_dir>/logs/trainer.log``.
    """
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "logs" / "trainer.log"
    print(f"[demo] output: {out}\n[demo] verl and Ray logs: {log_path}", flush=True)
    started = time.time()
    with console_to_log(log_path) as console:
        try:
            rows = _prepare_and_train(out, steps, overrides, rollout, console)
        except BaseException:
            print(f"[demo] training failed; last lines of {log_path}:\n{log_tail(log_path)}", file=console)
            raise
        report = build_report(out, rows)
    print(f"[demo] {len(rows)} RL steps in {time.time() - started:.0f} s")
    print(f"[demo] metrics: {out / 'metrics.jsonl'}\n[demo] report: {report}")
    return 0


def _prepare_and_train(out: Path, steps: int, overrides: list[str] | None, rollout: str,
                       console: TextIO) -> list[StepMetrics]:
    """Data, models, verl's trainer (Ray shut down before returning, so its exit messages stay in the log)."""
    import ray

    from ..launch import compose_recipe, run_trainer

    print("[demo] preparing synthetic data and tiny models", file=console)
    paths = prepare(out)
    metrics_path = out / "metrics.jsonl"
    metrics_path.unlink(missing_ok=True)
    (out / "dump" / "samples.jsonl").unlink(missing_ok=True)
    os.environ["VERL_FILE_LOGGER_PATH"] = str(metrics_path)
    cfg = compose_recipe("tiny_cpu", [
        f"actor_rollout_ref.model.path={paths['model']}", f"videoseg_o3.sam2.checkpoint={paths['sam2']}",
        f"data.train_files={paths['train']}", f"data.val_files={paths['val']}",
        f"actor_rollout_ref.rollout.name={rollout}", *_script_override(rollout, paths["script"], console),
        f"trainer.total_training_steps={steps}", f"trainer.default_local_dir={out / 'checkpoints'}",
        f"videoseg_o3.report.samples_dir={out / 'dump'}",
        "trainer.logger=[console,file]", *(overrides or [])])
    watcher = MetricsWatcher(metrics_path, steps, console=console)
    watcher.start()
    try:
        run_trainer(cfg)
    finally:
        watcher.stop()
        if ray.is_initialized():
            ray.shutdown()
    return watcher.rows
