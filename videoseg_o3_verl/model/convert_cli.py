# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Convert a released VideoSEG-O3 (Sa2VA-style) checkpoint into HF Qwen-VL + seg head + SAM2 checkpoint.

Usage:
    python tools/convert_checkpoint.py /path/to/VideoSEG-O3-2B-RL /path/to/out
    python tools/convert_checkpoint.py SRC DST --llm-prefix mllm.model. --sam2-config sam2_hiera_l --overwrite

A thin wrapper over :func:`videoseg_o3_verl.model.convert_released.convert_released_checkpoint`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from videoseg_reward.sam2_model import Sam2Meta

from videoseg_o3_verl.model.convert_released import ARCHITECTURES, ReleasedLayout, convert_released_checkpoint


def build_parser() -> argparse.ArgumentParser:
    defaults = ReleasedLayout()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="released checkpoint directory (config.json, weights, tokenizer)")
    parser.add_argument("dst", help="output directory")
    parser.add_argument("--llm-prefix", default=defaults.llm_prefix, help="key prefix of the Qwen-VL weights")
    parser.add_argument("--proj-prefix", default=defaults.proj_prefix, help="key prefix of the [SEG] projection")
    parser.add_argument("--sam2-prefix", default=defaults.sam2_prefix, help="key prefix of the SAM2 weights")
    parser.add_argument("--sam2-config", default="sam2_hiera_l", help="SAM2 config of the grounding encoder")
    parser.add_argument("--sam2-image-size", type=int, default=None, help="SAM2 input size (default: config's)")
    parser.add_argument("--model-type", default="qwen3_vl", choices=sorted(ARCHITECTURES),
                        help="HF model_type of the output")
    parser.add_argument("--seg-token", default="[SEG]", help="segmentation token")
    parser.add_argument("--max-shard-gb", type=float, default=5.0, help="LLM safetensors shard size in GiB")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = convert_released_checkpoint(
        args.src, args.dst,
        layout=ReleasedLayout(llm_prefix=args.llm_prefix, proj_prefix=args.proj_prefix, sam2_prefix=args.sam2_prefix),
        sam2_meta=Sam2Meta(config=args.sam2_config, image_size=args.sam2_image_size),
        model_type=args.model_type, seg_token=args.seg_token, max_shard_bytes=int(args.max_shard_gb * 1024**3),
        overwrite=args.overwrite)
    print(f"wrote {report.output_dir}: {report.llm_tensors} LLM tensors, hidden {report.hidden_size}, "
          f"{args.seg_token} id {report.seg_token_id}{' (added)' if report.seg_token_added else ''}, "
          f"SAM2 checkpoint {report.sam2_checkpoint}")
    if report.skipped_files:
        print(f"not copied: {', '.join(report.skipped_files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
