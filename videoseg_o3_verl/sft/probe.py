# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Is a policy's own first turn well-formed? Greedy first turns on held-out prompts, scored by the format reward.

The prompt is the RL environment's first observation (same frames, resolutions and wording as the agent loop);
a turn counts as valid when ``strict_format_cot([turn]) == 1`` (``<think>…</think>`` then a ``<select>`` or
``<answer>`` with strict-JSON ``<VTG>`` and ``<RefSeg>[SEG]</RefSeg>``), and as parsable when the environment's
parser reads it as a select or an answer.

    python -m videoseg_o3_verl.sft.probe --model out/coldstart/global_step_80/hf_policy --data valid.parquet
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch

END_MARKERS = ("<|im_end|>", "<|endoftext|>")


def format_validity(model_path: str, data: str, *, limit: int = 20, max_new_tokens: int = 256,
                    progress=None) -> dict[str, Any]:
    """Greedy first turns of ``model_path`` on the first ``limit`` records of an RL parquet, scored for format."""
    from transformers import AutoConfig, AutoProcessor
    from verl.utils.model import get_hf_auto_model_class
    from videoseg_reward.terms import strict_format_cot

    from ..data.parquet import read_parquet_records
    from ..env import EnvConfig, initial_messages, parse_action
    from ..video import VideoSource

    processor = AutoProcessor.from_pretrained(model_path)
    tokenizer = processor.tokenizer
    model = get_hf_auto_model_class(AutoConfig.from_pretrained(model_path)).from_pretrained(model_path).eval()
    image_processor = processor.image_processor
    env = EnvConfig.train(patch_factor=int(image_processor.patch_size) * int(image_processor.merge_size))
    records = [r for r in read_parquet_records(data) if r.num_frames >= 2][:limit]
    eos = [tokenizer.convert_tokens_to_ids(t) for t in END_MARKERS if t in tokenizer.get_vocab()]
    turns = []
    for record in progress(records, desc="probe") if progress else records:
        video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids) or None)
        messages = initial_messages(video, record.expression, env)
        inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                               return_dict=True, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos,
                                 pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=False)
        for marker in END_MARKERS:
            text = text.split(marker)[0]
        turns.append({"text": text, "valid_format": strict_format_cot([text]) == 1.0,
                      "action": parse_action(text, record.num_frames, "train").kind})
    n = len(turns)
    return {"n": n, "valid_format": sum(t["valid_format"] for t in turns) / max(n, 1),
            "parsable_action": sum(t["action"] != "invalid" for t in turns) / max(n, 1),
            "examples": [t["text"] for t in turns[:3]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videoseg_o3_verl.sft.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="HF policy folder (e.g. <checkpoint>/hf_policy)")
    parser.add_argument("--data", required=True, help="held-out RL parquet (records the SFT data did not contain)")
    parser.add_argument("--limit", type=int, default=20, help="prompts to sample")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="token budget of the turn")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    result = format_validity(args.model, args.data, limit=args.limit, max_new_tokens=args.max_new_tokens,
                             progress=tqdm)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
