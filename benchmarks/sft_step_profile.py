# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Where a cold-start SFT step of the learning demo spends its time, and what each speed lever saves.

Builds the demo's own inputs (``videoseg-o3 demo``'s data and VTS-CoT stages and tiny models, cached under
``--out``), then runs verl's SFT trainer in this process exactly as the demo's ``sft`` stage composes it
(``recipes/demo_coldstart.yaml`` with the demo's overrides), for ``--warmup + --steps`` optimizer steps, with
timers around each part of a step:

- ``step``: one ``train_batch`` (forward, backward, optimizer, verl's bookkeeping); ``between``: the time from
  one ``train_batch`` to the next (data loading, verl's loop and tracker);
- ``lm_fwd`` (the policy's forward, vision tower included; ``vision_fwd`` of it), ``head_fwd`` (everything the
  seg head adds to the forward: ``frames`` = SAM2 frame features gathered and encoded, ``decode`` = the head's
  forward, ``mask_loss``), ``bwd`` (``loss.backward()``, split by gradient hooks into ``bwd_head`` up to the
  [SEG] hidden states, ``bwd_lm_head`` up to the final hidden states and ``bwd_trunk`` for the rest),
  ``optim`` (clip + AdamW);
- the micro-batch's sequence lengths (padding waste) and the seg head's decodes per step.

Each lever is an extra recipe override, measured in its own process on the same data and seed; the table reports the
warm steps' median and mean and the mean time per loop iteration (step + between) over every step of the run (the
first epoch, 37 steps, decodes, processes and encodes every item for the first time). Usage::

    flock /tmp/videoseg_heavy.lock nice .venv/bin/python benchmarks/sft_step_profile.py --warmup 40 --steps 15 \\
        --lever demo= --lever no_spatial=videoseg_o3_sft.supervise_spatial=false
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

PARTS = ("step", "between", "lm_fwd", "vision_fwd", "head_fwd", "frames", "decode", "mask_loss", "bwd", "bwd_head",
         "bwd_lm_head", "bwd_trunk", "optim")


class StepTimes:
    """Seconds per named part, accumulated per optimizer step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self.current: dict[str, float] = defaultdict(float)
        self.marks: dict[str, float] = {}

    def add(self, part: str, seconds: float) -> None:
        self.current[part] += seconds

    def close_step(self) -> None:
        self.steps.append(dict(self.current))
        self.current = defaultdict(float)


def _timed(times: StepTimes, part: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            times.add(part, time.perf_counter() - start)
    return wrapper


def _module_timer(times: StepTimes, module, part: str) -> None:
    def pre(_module, _args):
        times.marks[part] = time.perf_counter()

    def post(_module, _args, _output):
        times.add(part, time.perf_counter() - times.marks.pop(part))

    module.register_forward_pre_hook(pre)
    module.register_forward_hook(post)


def instrument(times: StepTimes, profile_steps: range | None = None, profile_out: Path | None = None) -> None:
    """Wrap the SFT trainer's and engine's methods with timers (this process only); with ``profile_steps``, record
    those steps with torch.profiler and write its operator table to ``profile_out``."""
    import torch

    from videoseg_o3_verl.sft import engine as sft_engine
    from videoseg_o3_verl.sft import trainer as sft_trainer

    engine_cls = sft_engine.VideoSegO3SFTEngine
    trainer_cls = sft_trainer.VideoSegSFTTrainer

    build_engine = trainer_cls._build_engine

    def _build_engine(self):
        build_engine(self)
        train_batch = self.training_client.train_batch

        profiler = None

        def timed_train_batch(data):
            nonlocal profiler
            index = len(times.steps)
            if profile_steps is not None and index == profile_steps.start:
                profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True)
                profiler.__enter__()
            now = time.perf_counter()
            if "end" in times.marks:
                times.add("between", now - times.marks["end"])
            out = train_batch(data)
            times.marks["end"] = time.perf_counter()
            times.add("step", times.marks["end"] - now)
            times.close_step()
            if profiler is not None and index == profile_steps.stop - 1:
                profiler.__exit__(None, None, None)
                by_op = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=60)
                by_shape = profiler.key_averages(group_by_input_shape=True).table(
                    sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=60, max_shapes_column_width=120)
                profile_out.write_text(f"torch.profiler, steps {profile_steps.start}-{profile_steps.stop - 1}\n"
                                       f"{by_op}\n{by_shape}")
                profiler = None
            return out

        self.training_client.train_batch = timed_train_batch

    trainer_cls._build_engine = _build_engine
    init_engine = trainer_cls._init_engine

    def _init_engine(self):
        init_engine(self)
        engine = self.training_client.engine
        _module_timer(times, engine.module, "lm_fwd")
        inner = getattr(engine.module, "module", engine.module)
        visual = getattr(getattr(inner, "model", inner), "visual", None)
        if visual is not None:
            _module_timer(times, visual, "vision_fwd")
        head = getattr(engine.module, sft_engine.HEAD_ATTR)

        def head_pre(_module, args):
            hidden, features = args
            times.add("decodes", float(hidden.shape[0]))
            if hidden.requires_grad:
                hidden.register_hook(lambda grad: times.marks.__setitem__("head_bwd_done", time.perf_counter()))

        head.register_forward_pre_hook(head_pre)
        _module_timer(times, head, "decode")
        norm = inner.get_decoder().norm if hasattr(inner, "get_decoder") else None

        def norm_post(_module, _args, output):
            if output.requires_grad:
                output.register_hook(lambda grad: times.marks.__setitem__("hidden_bwd_done", time.perf_counter()))

        if norm is not None:
            norm.register_forward_hook(norm_post)

    trainer_cls._init_engine = _init_engine
    build_ckpt_handler = trainer_cls._build_ckpt_handler

    def _build_ckpt_handler(self):
        build_ckpt_handler(self)
        self.ckpt_handler.save_checkpoint = lambda step: None  # the profile needs no checkpoint

    trainer_cls._build_ckpt_handler = _build_ckpt_handler

    fbb = engine_cls.forward_backward_batch

    def forward_backward_batch(self, data, loss_function, forward_only=False):
        lengths = data["input_ids"].offsets().diff().tolist()
        times.add("tokens", float(sum(lengths)))
        times.add("tokens_padded", float(len(lengths) * max(lengths)))
        times.add("len_min", float(min(lengths)))
        times.add("len_max", float(max(lengths)))
        return fbb(self, data, loss_function, forward_only)

    engine_cls.forward_backward_batch = forward_backward_batch
    engine_cls._mask_outputs = _timed(times, "head_fwd", engine_cls._mask_outputs)
    engine_cls.optimizer_step = _timed(times, "optim", engine_cls.optimizer_step)
    sft_engine.build_head_inputs = _timed(times, "frames", sft_engine.build_head_inputs)
    sft_engine.sft_mask_loss = _timed(times, "mask_loss", sft_engine.sft_mask_loss)

    backward = torch.Tensor.backward

    def timed_backward(self, *args, **kwargs):
        start = time.perf_counter()
        times.marks.pop("head_bwd_done", None)
        times.marks.pop("hidden_bwd_done", None)
        backward(self, *args, **kwargs)
        end = time.perf_counter()
        times.add("bwd", end - start)
        head_done = times.marks.get("head_bwd_done", start)
        hidden_done = times.marks.get("hidden_bwd_done", head_done)
        times.add("bwd_head", head_done - start)
        times.add("bwd_lm_head", hidden_done - head_done)
        times.add("bwd_trunk", end - hidden_done)

    torch.Tensor.backward = timed_backward


def prepare_inputs(out: Path) -> tuple[list[str], dict]:
    """The demo's data, VTS-CoT parquet and tiny models under ``out`` (built once); returns the demo's SFT overrides
    and the model paths."""
    from videoseg_o3_verl.demo.config import DemoConfig
    from videoseg_o3_verl.demo.models import demo_models
    from videoseg_o3_verl.demo.pipeline import DemoPaths, data_stage, sft_stage, vts_cot_stage, with_steps
    from videoseg_o3_verl.demo.stages import run_stage

    cfg = with_steps(DemoConfig(output_dir=str(out / "demo"), n_eval=1))
    paths = DemoPaths(Path(cfg.output_dir).resolve())
    models: dict[str, str] = {}
    if not paths.train_parquet.is_file():
        run_stage(data_stage(cfg, paths, models), paths.logs / "data.log", sys.stderr)
    if not paths.sft_parquet.is_file():
        run_stage(vts_cot_stage(cfg, paths), paths.logs / "vts-cot.log", sys.stderr)
    models.update(demo_models(cfg))
    argv = list(sft_stage(cfg, paths, models).steps[0])
    overrides = argv[argv.index("--config-name") + 2:]
    return [o for o in overrides if not o.startswith(("trainer.total_training_steps", "trainer.logger"))], \
        {"recipe": cfg.sft_recipe, **models}


def summarise(steps: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = sorted({k for s in steps for k in s})
    return {k: {"median": statistics.median(s.get(k, 0.0) for s in steps),
                "mean": statistics.fmean(s.get(k, 0.0) for s in steps)} for k in keys}


def run_one(args) -> int:
    """One measured run in this process (the ``--child`` mode): prints a JSON line with the per-step timings."""
    import torch

    from videoseg_o3_verl.launch import compose_recipe
    from videoseg_o3_verl.sft.trainer import run_sft

    overrides, models = prepare_inputs(Path(args.out))
    times = StepTimes()
    total = args.warmup + args.steps
    if args.torch_profile:
        instrument(times, range(total - args.torch_profile, total), Path(args.out) / f"{args.name}_ops.txt")
    else:
        instrument(times)
    extra = [o for o in args.child.split("\x1f") if o]
    cfg = compose_recipe(models["recipe"], [*overrides, f"trainer.total_training_steps={total}",
                                            "trainer.logger=[console]", "trainer.save_freq=-1", *extra])
    start = time.perf_counter()
    run_sft(cfg)
    wall = time.perf_counter() - start
    warm = times.steps[args.warmup:]
    print("PROFILE_JSON " + json.dumps({"threads": torch.get_num_threads(), "wall_s": wall, "steps": len(times.steps),
                                        "warm": summarise(warm), "all_steps": times.steps}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="measured (warm) steps")
    parser.add_argument("--warmup", type=int, default=5, help="steps before the measurement")
    parser.add_argument("--lever", action="append", default=[],
                        help="NAME=override[,override...] (repeatable; 'baseline=' = the demo as it is)")
    parser.add_argument("--out", default="bench_out/sft_step_profile")
    parser.add_argument("--torch-profile", type=int, default=0,
                        help="record the last N steps of each run with torch.profiler (<out>/<lever>_ops.txt)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--name", default="run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return run_one(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prepare_inputs(out)
    results = {}
    for lever in args.lever or ["baseline="]:
        name, _, spec = lever.partition("=")
        overrides = [o for o in spec.split(",") if o]
        log = out / f"{name}.log"
        with open(log, "w") as handle:
            proc = subprocess.run([sys.executable, __file__, "--out", str(out), "--steps", str(args.steps),
                                   "--warmup", str(args.warmup), "--torch-profile", str(args.torch_profile),
                                   "--name", name, "--child", "\x1f".join(overrides)],
                                  stdout=handle, stderr=subprocess.STDOUT)
        lines = [ln for ln in log.read_text().splitlines() if ln.startswith("PROFILE_JSON ")]
        if proc.returncode or not lines:
            print(f"{name}: failed (exit {proc.returncode}); see {log}", flush=True)
            continue
        results[name] = {"overrides": overrides, **json.loads(lines[-1].removeprefix("PROFILE_JSON "))}
        warm = results[name]["warm"]
        print(f"{name}: {warm['step']['median']:.3f} s/step median ({warm['step']['mean']:.3f} mean), "
              + ", ".join(f"{p} {warm[p]['median']:.3f}" for p in PARTS[1:] if p in warm), flush=True)
    (out / "profile.json").write_text(json.dumps(results, indent=1))
    header = ("| lever | s/step (median) | s/step (mean) | s/iteration, all steps | " + " | ".join(PARTS[1:])
              + " | decodes | tokens | padded |")
    lines = [header, "|" + "---|" * (len(PARTS) + 6)]
    for name, r in results.items():
        w = r["warm"]
        every = statistics.fmean(s["step"] + s.get("between", 0.0) for s in r["all_steps"])
        lines.append(f"| {name} | {w['step']['median']:.3f} | {w['step']['mean']:.3f} | {every:.3f} | "
                     + " | ".join(f"{w[p]['median']:.3f}" if p in w else "–" for p in PARTS[1:])
                     + f" | {w.get('decodes', {}).get('median', 0):.0f} | {w['tokens']['median']:.0f} | "
                       f"{w['tokens_padded']['median']:.0f} |")
    table = "\n".join(lines)
    print(table)
    (out / "profile.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
