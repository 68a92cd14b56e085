# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Write the synthetic RVOS dataset (moving shapes) and optionally convert it to verl parquet.

Example:
    python tools/make_synthetic.py --root data/synthetic --num-videos 32 --splits train,valid \
        --parquet-dir data/synthetic/parquet
writes `data/synthetic/{JPEGImages, mask_dict.json, meta_expressions_train_.json, ...}` and
`data/synthetic/parquet/{train,valid}.parquet`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tqdm import tqdm

from videoseg_o3_verl.data.parquet import convert_to_parquet
from videoseg_o3_verl.data.synthetic import LAYOUTS, PRESET_DEFAULTS, PRESETS, generate_synthetic_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="output folder")
    parser.add_argument("--num-videos", type=int, default=8, help="videos per split")
    parser.add_argument("--preset", choices=PRESETS, default="shapes",
                        help="content: moving shapes with referring/reasoning queries, or the learnable "
                             "colour-grounding task with a window per object (grounding) or one window shared by "
                             "all objects (grounding_shared, the learning demo's)")
    sizes = ", ".join(f"{name}: {d['num_frames']} frames of {d['height']}x{d['width']}"
                      for name, d in PRESET_DEFAULTS.items())
    parser.add_argument("--num-frames", type=int, default=None, help=f"frames per video (default per preset: {sizes})")
    parser.add_argument("--height", type=int, default=None, help="frame height in pixels (default per preset)")
    parser.add_argument("--width", type=int, default=None, help="frame width in pixels (default per preset)")
    parser.add_argument("--seed", type=int, default=0, help="seed (same seed = identical files)")
    parser.add_argument("--layout", choices=LAYOUTS, default="revos", help="on-disk layout")
    parser.add_argument("--splits", default="train", help="comma-separated split names")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality of the frames")
    parser.add_argument("--parquet-dir", default=None, help="also write <dir>/<split>.parquet through the converter")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    splits = tuple(s for s in args.splits.split(",") if s)
    start = time.perf_counter()
    info = generate_synthetic_dataset(
        args.root,
        num_videos=args.num_videos,
        num_frames=args.num_frames,
        height=args.height,
        width=args.width,
        seed=args.seed,
        layout=args.layout,
        splits=splits,
        jpeg_quality=args.jpeg_quality,
        preset=args.preset,
    )
    elapsed = time.perf_counter() - start
    frames = len(splits) * args.num_videos * (args.num_frames or PRESET_DEFAULTS[args.preset]["num_frames"])
    print(f"wrote {frames} frames, {info.num_expressions} expressions to {info.root} in {elapsed:.2f} s "
          f"({frames / max(elapsed, 1e-9):.0f} frames/s)")
    if args.parquet_dir is not None:
        for split in splits:
            out = os.path.join(args.parquet_dir, f"{split}.parquet")
            result = convert_to_parquet("synthetic", args.root, out, split=split, progress=tqdm, layout=args.layout)
            print(f"{out}: {json.dumps(result.summary['train'], sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
