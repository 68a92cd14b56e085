# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Do the seg head's two inputs carry the query's colour? Linear colour probes of the [SEG] states and SAM2 features.

On the colour-grounding presets the seg head must turn "the red object" into the red square's mask. It reads two
inputs: the policy's last-layer (final-norm) hidden state at each [SEG] of a cold-start trajectory, and the frozen
SAM2 image features of the frame. This script fits a multinomial logistic regression (L2, standardised features,
70/30 split) that predicts the colour named in the query:

* from the [SEG] states of ``--policy`` on the trajectories of a VTS-CoT parquet (teacher-forced, as in the cold
  start); run it on the initial policy and on cold-start checkpoints to see whether training keeps the colour there;
* from the SAM2 features at the centre of each object, on every feature level, for frames drawn like the presets'
  (three squares in distinct saturated colours on black, one per quadrant).

High test accuracy on both (chance: one over the number of colours) with masks that stay empty means the bottleneck is
the head learning to match the two, not its inputs.

Usage::

    .venv/bin/python benchmarks/colour_probe.py --vts-cot demo_output/data/vts_cot.parquet \\
        --policy demo_output/sft/global_step_200/hf_policy --policy /path/to/the/initial/policy
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import numpy as np
import torch

QUERY = re.compile(r'The query is "the (\w+) object"')
"""The colour named in a grounding-preset query (first user turn)."""


def probe_accuracy(x: np.ndarray, labels: list[str], *, seed: int = 0, l2: float = 1e-2,
                   train_share: float = 0.7) -> tuple[float, float]:
    """``(train, test)`` accuracy of a multinomial logistic regression predicting ``labels`` from ``x`` [N, D].

    The rows are shuffled with ``seed`` and split ``train_share`` / rest; features are standardised with the training
    rows' statistics; the fit minimises cross-entropy ``+ l2 * ||W||²`` with L-BFGS.
    """
    x = np.asarray(x, dtype=np.float64)
    classes = sorted(set(labels))
    y = np.array([classes.index(c) for c in labels])
    if x.ndim != 2 or len(x) != len(y) or len(x) < 4:
        raise ValueError(f"probe_accuracy needs [N >= 4, D] features and N labels, got {x.shape} and {len(y)}")
    order = np.random.default_rng(seed).permutation(len(x))
    cut = max(1, min(len(x) - 1, int(train_share * len(x))))
    train, test = order[:cut], order[cut:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    z = torch.tensor((x - mean) / std, dtype=torch.float32)
    target = torch.tensor(y)
    weight = torch.zeros(z.shape[1], len(classes), requires_grad=True)
    bias = torch.zeros(len(classes), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=300)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(z[train] @ weight + bias, target[train]) + l2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        hit = ((z @ weight + bias).argmax(1) == target).numpy()
    return float(hit[train].mean()), float(hit[test].mean())


def seg_states(policy: str, vts_cot: str, limit: int) -> tuple[np.ndarray, list[str]]:
    """Final-norm hidden states at every [SEG] of the first ``limit`` trajectories, and the colour each query names."""
    import pandas as pd
    from PIL import Image
    from transformers import AutoConfig, AutoProcessor
    from verl.utils.model import get_hf_auto_model_class

    processor = AutoProcessor.from_pretrained(policy)
    model = get_hf_auto_model_class(AutoConfig.from_pretrained(policy)).from_pretrained(policy).eval()
    seg_id = processor.tokenizer.convert_tokens_to_ids("[SEG]")
    states, colours = [], []
    for _, row in pd.read_parquet(vts_cot).iloc[:limit].iterrows():
        messages = [dict(m) for m in row["messages"]]
        found = QUERY.search(str(messages[1]["content"]))
        if found is None:
            raise ValueError(f"{vts_cot}: a first user turn without a colour query (not a grounding preset?)")
        conversation = [{"role": m["role"], "content": [
            {"type": "image"} if part == "<image>" else {"type": "text", "text": part}
            for part in re.split(r"(<image>)", str(m["content"])) if part]} for m in messages]
        images = [Image.open(io.BytesIO(image["bytes"])).convert("RGB") for image in row["images"]]
        inputs = processor(text=[processor.apply_chat_template(conversation, tokenize=False)], images=images,
                           return_tensors="pt")
        with torch.no_grad():
            hidden = model(**inputs, output_hidden_states=True).hidden_states[-1][0]
        for position in (inputs["input_ids"][0] == seg_id).nonzero().flatten().tolist():
            states.append(hidden[position].float().numpy())
            colours.append(found.group(1))
    return np.stack(states), colours


def object_features(sam2_checkpoint: str, frames: int, seed: int) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per SAM2 feature level, the feature vector at each object's centre and its colour, on ``frames`` frames of
    three squares (56 px, as the grounding presets draw them)."""
    from videoseg_reward.sam2_model import load_sam2_model

    from videoseg_o3_verl.data.synthetic import (
        GROUNDING_COLOURS,
        PRESET_DEFAULTS,
        _make_grounding_objects,
        render_video,
    )
    from videoseg_o3_verl.model.frame_encoder import FrameEncoder

    size = PRESET_DEFAULTS["grounding_shared"]
    height, width = size["height"], size["width"]
    rng = np.random.default_rng(seed)
    images, objects = [], []
    for _ in range(frames):
        video_objects = _make_grounding_objects(rng, 2, height, width, 1, shared_window=True)
        video, _ = render_video(rng, video_objects, 2, height, width, 0, palette=GROUNDING_COLOURS,
                                background=(0, 0, 0))
        images.append(video[video_objects[0].first])
        objects.append([(o.colour, o.centres[0][1] / height, o.centres[0][0] / width) for o in video_objects])
    encoder = FrameEncoder.from_sam2(load_sam2_model(sam2_checkpoint), project_high_res=True)
    with torch.no_grad():
        features = encoder.encode(np.stack(images))
    levels = {"image_embed": features.image_embed,
              **{f"high_res_{i}": level for i, level in enumerate(features.high_res_feats)}}
    out = {}
    for name, level in levels.items():
        side = level.shape[-1]
        rows, colours = [], []
        for k, frame_objects in enumerate(objects):
            for colour, cy, cx in frame_objects:
                rows.append(level[k, :, int(cy * side), int(cx * side)].float().numpy())
                colours.append(colour)
        out[f"{name} {tuple(level.shape[1:])}"] = (np.stack(rows), colours)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vts-cot", help="VTS-CoT parquet of a grounding preset (`videoseg-o3 vts-cot`)")
    parser.add_argument("--policy", action="append", default=[], help="policy folder(s) to probe ([SEG] states)")
    parser.add_argument("--sam2", help="SAM2 checkpoint to probe (default: the demo's tiny SAM2)")
    parser.add_argument("--limit", type=int, default=240, help="trajectories read for the [SEG] probe")
    parser.add_argument("--frames", type=int, default=300, help="frames drawn for the SAM2 probe")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.policy and not args.vts_cot:
        parser.error("--policy needs --vts-cot")

    for policy in args.policy:
        states, colours = seg_states(policy, args.vts_cot, args.limit)
        train, test = probe_accuracy(states, colours, seed=args.seed)
        n_colours = len(set(colours))
        print(f"[SEG] states of {Path(policy).name} ({Path(policy).parent.name}): {len(colours)} states, "
              f"{n_colours} colours: probe train {train:.2f}, test {test:.2f} (chance {1 / n_colours:.2f})")
    sam2 = args.sam2
    if sam2 is None:
        from videoseg_o3_verl.demo.config import DemoConfig
        from videoseg_o3_verl.demo.models import demo_models

        sam2 = demo_models(DemoConfig())["sam2"]
    for name, (features, colours) in object_features(sam2, args.frames, args.seed).items():
        train, test = probe_accuracy(features, colours, seed=args.seed)
        print(f"SAM2 {name} at object centres: {len(colours)} objects: probe train {train:.2f}, test {test:.2f} "
              f"(chance {1 / len(set(colours)):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
