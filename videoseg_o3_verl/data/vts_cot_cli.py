# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Build the VTS-CoT cold-start SFT parquet (``videoseg-o3 vts-cot``, ``tools/build_vts_cot.py``).

Examples:
    videoseg-o3 vts-cot --data data/mevis.parquet --out data/mevis_sft.parquet --seed 0 --max-selects 2
    videoseg-o3 vts-cot --released data/VTG-CoT/revos.json --mask-file data/revos/mask_dict.json \\
        --frames-dir data/revos --out data/revos_sft.parquet            # authors' JSON, their rendering
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from videoseg_o3_verl.data.vts_cot import MAX_SELECTS, THINK_STYLES, build_vts_cot
from videoseg_o3_verl.env import EnvConfig, load_env_overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoseg-o3 vts-cot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="RL parquet written by `videoseg-o3 data` / `synthetic` (ground-truth build)")
    source.add_argument("--released", help="the authors' VTS-CoT JSON (cot_trace, conversations, ...)")
    parser.add_argument("--out", required=True, help="output SFT parquet")
    parser.add_argument("--seed", type=int, default=0, help="seed of the plans and the reasoning phrasing")
    parser.add_argument("--max-selects", type=int, default=MAX_SELECTS, help="most <select> turns per trajectory")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N records")
    parser.add_argument("--think-style", choices=THINK_STYLES, default="full",
                        help="reasoning text: the phrased trace, the compact one for tiny policies (short, the "
                             "demo), or the compact one naming the query in step 3 (grounded)")
    parser.add_argument("--env-file", default=None,
                        help="YAML mapping of EnvConfig overrides (the RL run's `videoseg_o3.env`, e.g. "
                             "recipes/demo_env.yaml), applied to the train preset")
    parser.add_argument("--patch-factor", type=int, default=None,
                        help="smart_resize factor of the policy's processor (28 Qwen2.5-VL, 32 Qwen3-VL); default: "
                             "read from --model, else 28")
    parser.add_argument("--model", default=None, help="HF policy folder whose processor sets the patch factor")
    parser.add_argument("--mask-file", help="with --released: the mask_dict.json")
    parser.add_argument("--frames-dir", help="with --released: folder holding <video_name>/<frame>.jpg")
    parser.add_argument("--dataset-name", default="revos", help="with --released: data_source of the rows")
    parser.add_argument("--no-parity", action="store_true",
                        help="with --released: render user turns with the RL environment instead of the released "
                             "loader's rendering")
    return parser


def patch_factor_of(model: str | None, given: int | None) -> int:
    """The processor's ``patch_size × merge_size`` (what the RL agent loop uses), or ``given``, or 28."""
    if given is not None:
        return given
    if model is None:
        return 28
    from transformers import AutoProcessor

    image_processor = AutoProcessor.from_pretrained(model).image_processor
    return int(getattr(image_processor, "patch_size", 14)) * int(getattr(image_processor, "merge_size", 2))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = load_env_overrides(args.env_file) if args.env_file else {}
    env = EnvConfig.train(**{"patch_factor": patch_factor_of(args.model, args.patch_factor), **overrides})
    if args.released:
        if not args.mask_file or not args.frames_dir:
            raise SystemExit("--released needs --mask-file and --frames-dir")
        from videoseg_o3_verl.data.vts_cot_released import convert_released_vts_cot

        n = convert_released_vts_cot(args.released, args.mask_file, args.frames_dir, args.out,
                                     dataset_name=args.dataset_name, parity=not args.no_parity, env=env,
                                     limit=args.limit, progress=tqdm)
        print(f"{args.out}: {n} trajectories (released VTS-CoT, parity={not args.no_parity})")
        return 0
    result = build_vts_cot(args.data, args.out, seed=args.seed, max_selects=args.max_selects, env=env,
                           limit=args.limit, progress=tqdm, think_style=args.think_style)
    print(f"{result.path}: {result.num_rows} trajectories; turns {json.dumps(result.turn_histogram)}; "
          f"skipped {json.dumps(result.skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
