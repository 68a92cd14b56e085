# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Speed of `videoseg-o3 eval` in the learning demo's setting, against the one-at-a-time path in the same run.

Setting: held-out videos of the `grounding` preset (8 frames of 56x56), the demo's tiny Qwen2.5-VL (hidden 128,
2 layers) and tiny SAM2 at 128 px, the demo environment (`recipes/demo_env.yaml` on the RL protocol). Measured per
episode, each on the same records:

- the fixed guess (both constant masks; no model, no propagation);
- a random tiny model (writes 96 tokens of garbage, no [SEG], so no propagation): turns generated one episode at a
  time (the baseline) vs in left-padded batches of `--batch-size` episodes, with the share of episodes whose turns
  are identical;
- a policy that answers at once with a well-formed answer and a [SEG] (scripted reply, no generation cost): the
  final mask propagated with every frame encoded while it is tracked (the baseline) vs with each video's SAM2
  backbone outputs computed once and shared by its expressions, with the share of identical masks.

Usage::

    flock /tmp/videoseg_heavy.lock nice .venv/bin/python benchmarks/eval_demo_speed.py --episodes 300
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch

from videoseg_o3_verl.data.parquet import convert_to_parquet, read_parquet_records
from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset
from videoseg_o3_verl.demo.config import DemoConfig
from videoseg_o3_verl.demo.models import demo_models
from videoseg_o3_verl.env import EnvConfig, load_env_overrides
from videoseg_o3_verl.eval.fixed_guess import FixedGuessModels
from videoseg_o3_verl.eval.policy import Generation
from videoseg_o3_verl.eval.predict import evaluate_records, load_models

ENV_FILE = Path(__file__).resolve().parents[1] / "recipes" / "demo_env.yaml"
ANSWER = ('<think>Step 1: it. Step 2: seen in 3, 4. Step 3: from 3 to 4. Action: answer.</think><answer><VTG>'
          '{"start": 3, "end": 4, "keyframe": 3}</VTG>, <RefSeg>[SEG]</RefSeg></answer>')


class AnswerAtOnce:
    """Replies `ANSWER` (real tokenizer, processor and hidden states of the wrapped HF policy)."""

    def __init__(self, hf):
        self.hf = hf

    def generate(self, messages, images, max_new_tokens):
        prompt = self.hf._inputs(messages, images)["input_ids"][0].tolist()
        ids = self.hf.tokenizer.encode(ANSWER, add_special_tokens=False) + [
            self.hf.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        text = self.hf.tokenizer.decode(ids, skip_special_tokens=False).strip()
        return Generation(text=text, prompt_ids=prompt, token_ids=ids, images=list(images), messages=list(messages))

    def seg_hidden(self, generation):
        return self.hf.seg_hidden(generation)

    def turn_seg_hiddens(self, generation):
        return self.hf.turn_seg_hiddens(generation)


def timed(models, records, batch_size: int) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    entries = []
    for i in range(0, len(records), batch_size):
        entries += evaluate_records(models, records[i:i + batch_size], "synthetic")
    return (time.perf_counter() - start) / len(records), entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=300, help="held-out expressions (3 per video)")
    parser.add_argument("--batch-size", type=int, default=32, help="episodes per generation batch")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the held-out videos")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_synthetic_dataset(root / "syn", num_videos=math.ceil(args.episodes / 3), seed=args.seed,
                                   preset="grounding")
        convert_to_parquet("synthetic", root / "syn", root / "heldout.parquet")
        records = read_parquet_records(root / "heldout.parquet")[: args.episodes]
        env = EnvConfig.train(**load_env_overrides(ENV_FILE))
        tiny = demo_models(DemoConfig())
        models = load_models(tiny["model"], tiny["sam2"], device="cpu", env=env)
        report = {"episodes": len(records), "batch_size": args.batch_size}
        for mask in ("empty", "full"):
            report[f"fixed_guess_{mask}_s"] = timed(FixedGuessModels(mask, env), records, 1)[0]

        one, one_entries = timed(models, records, 1)
        batched, batched_entries = timed(models, records, args.batch_size)
        same = sum(a["turns"] == b["turns"] for a, b in zip(one_entries, batched_entries))
        report.update(random_one_at_a_time_s=one, random_batched_s=batched, random_speedup=one / batched,
                      random_identical_turns=same / len(records))

        hf = models.policy
        models.policy = AnswerAtOnce(hf)
        tracking = models.tracking
        models.tracking = None
        plain, plain_entries = timed(models, records, args.batch_size)
        models.tracking = tracking
        cached, cached_entries = timed(models, records, args.batch_size)
        same = sum(a["result"]["prediction_masks"] == b["result"]["prediction_masks"]
                   for a, b in zip(plain_entries, cached_entries))
        report.update(answer_uncached_s=plain, answer_cached_s=cached, answer_speedup=plain / cached,
                      answer_identical_masks=same / len(records))
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}, indent=1))


if __name__ == "__main__":
    main()
