# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""What SAM2's tracking adds to an evaluation's masks: one checkpoint evaluated with the protocol's propagation and
with every frame decoded as its own conditioning frame (`propagate_language(memory=False)`), on the same samples.

The demo's SAM2 is a tiny random model: its memory attention is untrained, so tracking can only move the features
the seg head was trained on (image mode, one frame at a time). Decoding every frame the way the keyframe is decoded
separates what the seg head knows from what the random tracker does to it. Printed per mode: the episode metrics
(`evaluate_policies`, the demo's environment) and the frame-by-frame breakdown of `mask_breakdown.py` (visible /
blank / distractor frames).

Usage::

    .venv/bin/python benchmarks/tracking_ablation.py demo_output/rl/global_step_12/actor/huggingface \\
        demo_output/data/heldout/train.parquet --out bench_out/tracking_ablation
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mask_breakdown import breakdown, breakdown_lines  # noqa: E402

METRICS = ("format_valid", "keyframe_hit", "jf", "reward_total")


@contextlib.contextmanager
def without_memory() -> Iterator[None]:
    """Inside: the evaluation's propagation decodes every frame as a conditioning frame (no SAM2 memory)."""
    import videoseg_reward.propagation as propagation

    protocol = propagation.propagate_language
    propagation.propagate_language = functools.partial(protocol, memory=False)
    try:
        yield
    finally:
        propagation.propagate_language = protocol


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the policy's folder, as `videoseg-o3 eval --model` takes it")
    parser.add_argument("--seg-head", default=None, help="the seg head's folder when it is not in the model's")
    parser.add_argument("data", type=Path, help="held-out parquet (e.g. demo_output/data/heldout/train.parquet)")
    parser.add_argument("--limit", type=int, default=300, help="evaluated samples")
    parser.add_argument("--sam2", default=None, help="SAM2 checkpoint (default: the demo's tiny SAM2)")
    parser.add_argument("--out", type=Path, default=Path("bench_out/tracking_ablation"))
    args = parser.parse_args(argv)

    from videoseg_o3_verl.demo.config import DemoConfig
    from videoseg_o3_verl.demo.models import demo_models
    from videoseg_o3_verl.env.config import load_env_overrides
    from videoseg_o3_verl.eval.compare import PolicySpec, evaluate_policies
    from videoseg_o3_verl.launch import recipe_path

    sam2 = args.sam2 or demo_models(DemoConfig())["sam2"]
    env = load_env_overrides(recipe_path(DemoConfig.env_recipe))
    spec = PolicySpec(model=str(args.model), seg_head=args.seg_head)
    for mode, scope in (("tracking", contextlib.nullcontext()), ("no_memory", without_memory())):
        with scope:
            result = evaluate_policies({mode: spec}, data=str(args.data), sam2=sam2, output_dir=str(args.out),
                                       env=env, limit=args.limit, fixed_guess=False, progress=False)
        metrics = result["eval"][mode]
        print(f"{mode:10s} " + "  ".join(f"{m} {metrics[m]['mean']:.3f} [{metrics[m]['ci95'][0]:.3f}, "
                                         f"{metrics[m]['ci95'][1]:.3f}]" for m in METRICS))
        for line in breakdown_lines(breakdown(args.out / mode / "predictions.jsonl", args.data)):
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
