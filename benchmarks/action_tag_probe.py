# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Has a cold start learned which tag it opened? Teacher-forced probability of each turn's closing tag.

Every assistant turn of the trajectory format ends ``…<RefSeg>[SEG]</RefSeg></answer>`` or ``…</select>``: the word
after the last ``</`` repeats the action the turn opened ~30 tokens earlier. This script feeds a policy the
trajectories of a VTS-CoT parquet (the cold start's own tokens and images, through its dataset class) and prints, per
turn number and action, the mean probability it gives the right closing word. A policy that has learned the link
gives ~1 to both actions; one that has not gives each action the same prior (e.g. 0.5 and 0.5, or 0.7 for "answer"
and 0.3 for "select"), and its greedy format is valid only where that prior leans the way the greedy turn went.

Usage::

    .venv/bin/python benchmarks/action_tag_probe.py --vts-cot demo_output/data/vts_cot.parquet \\
        --policy demo_output/sft/global_step_200/hf_policy --limit 80
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from videoseg_o3_verl.sft.token_loss import ACTION_WORDS


def closing_tag_probabilities(input_ids: list[int], log_probs: torch.Tensor, loss_mask: list[int], *,
                              closing_prefix_id: int, action_ids: dict[str, int]) -> list[tuple[int, str, float]]:
    """``(turn, action, p)`` for each trained closing tag, turns counted from 1.

    Args:
        input_ids: the trajectory's token ids.
        log_probs: ``[L, V]`` next-token log-probabilities (row t scores token t + 1).
        loss_mask: 1 on the trained (assistant) tokens.
        closing_prefix_id: the token before the closing word (``></`` in the tiny tokenizer).
        action_ids: the closing word's token id per action.
    """
    by_id = {token: action for action, token in action_ids.items()}
    found, turn = [], 0
    for t in range(len(input_ids) - 1):
        nxt = input_ids[t + 1]
        if input_ids[t] == closing_prefix_id and nxt in by_id and loss_mask[t + 1]:
            turn += 1
            found.append((turn, by_id[nxt], float(log_probs[t, nxt].exp())))
    return found


def probe(policy: str, vts_cot: str, limit: int) -> dict[tuple[int, str], list[float]]:
    """Closing-tag probabilities of the first ``limit`` trajectories, grouped by (turn, action)."""
    from omegaconf import OmegaConf
    from transformers import AutoConfig, AutoProcessor
    from verl.utils.model import get_hf_auto_model_class

    from videoseg_o3_verl.sft.dataset import VideoSegSFTDataset

    processor = AutoProcessor.from_pretrained(policy)
    tokenizer = processor.tokenizer
    model = get_hf_auto_model_class(AutoConfig.from_pretrained(policy)).from_pretrained(policy).eval()
    config = OmegaConf.create({"pad_mode": "no_padding", "max_length": 8192, "truncation": "error"})
    dataset = VideoSegSFTDataset(vts_cot, tokenizer, config, processor)
    prefix = tokenizer("</RefSeg></answer>")["input_ids"][-3]
    action_ids = {a: tokenizer(f"</RefSeg></{a}>")["input_ids"][-2] for a in sorted(ACTION_WORDS)}
    groups: dict[tuple[int, str], list[float]] = defaultdict(list)
    for index in range(min(limit, len(dataset))):
        item = dataset[index]
        ids = item["input_ids"]
        vision = item["multi_modal_inputs"]
        with torch.no_grad():
            logits = model(input_ids=ids[None], attention_mask=torch.ones_like(ids)[None],
                           pixel_values=vision["pixel_values"], image_grid_thw=vision["image_grid_thw"]).logits[0]
        for turn, action, p in closing_tag_probabilities(ids.tolist(), logits.float().log_softmax(-1),
                                                         item["loss_mask"].tolist(), closing_prefix_id=prefix,
                                                         action_ids=action_ids):
            groups[(turn, action)].append(p)
    return dict(groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vts-cot", required=True, help="VTS-CoT parquet (`videoseg-o3 vts-cot`)")
    parser.add_argument("--policy", action="append", required=True, help="HF policy folder (repeatable)")
    parser.add_argument("--limit", type=int, default=80, help="trajectories to read")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for policy in args.policy:
        print(f"{policy}")
        for (turn, action), ps in sorted(probe(policy, args.vts_cot, args.limit).items()):
            values = torch.tensor(ps)
            print(f"  turn {turn} {action:6s}  n={len(ps):3d}  mean p={values.mean():.3f}  "
                  f"p>0.5: {(values > 0.5).float().mean():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
