# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Convert an on-disk RVOS dataset to verl parquet (thin wrapper over `videoseg_o3_verl.data.convert_to_parquet`).

Examples:
    python tools/convert_dataset.py --dataset mevis --root data/mevis --split train --out data/parquet/mevis.parquet
    python tools/convert_dataset.py --dataset revos --root data/revos --split train --out revos.parquet \
        --val-fraction 0.05 --opt frames_dir=data/revos
    python tools/convert_dataset.py --dataset videoseg_rl_json --root data --out rl_revos.parquet \
        --opt dataset_name=revos
Converter-specific options are passed as `--opt key=value` (value parsed as JSON when possible, else a string).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tqdm import tqdm

from videoseg_o3_verl.data.converters import list_converters
from videoseg_o3_verl.data.parquet import convert_to_parquet


def parse_opts(items: list[str]) -> dict[str, Any]:
    """`["a=1", "b=x"]` → `{"a": 1, "b": "x"}` (JSON values where they parse)."""
    opts: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--opt expects key=value, got {item!r}")
        try:
            opts[key] = json.loads(value)
        except json.JSONDecodeError:
            opts[key] = value
    return opts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help=f"converter name, one of {list_converters()}")
    parser.add_argument("--root", required=True, help="dataset root folder (see the converter's docstring)")
    parser.add_argument("--split", default="train", help="dataset split (default: train)")
    parser.add_argument("--out", required=True, help="output parquet file (training rows)")
    parser.add_argument("--limit", type=int, default=None, help="keep only the first N records")
    parser.add_argument("--val-fraction", type=float, default=0.0, help="fraction of videos held out as validation")
    parser.add_argument("--val-out", default=None, help="validation parquet (default: <out>_val.parquet)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val video split")
    parser.add_argument("--shuffle-seed", type=int, default=None, help="shuffle rows with this seed")
    parser.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="converter option")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = convert_to_parquet(
        args.dataset,
        args.root,
        args.out,
        split=args.split,
        limit=args.limit,
        val_fraction=args.val_fraction,
        val_out=args.val_out,
        seed=args.seed,
        shuffle_seed=args.shuffle_seed,
        progress=tqdm,
        **parse_opts(args.opt),
    )
    for part, path in (("train", result.train_path), ("val", result.val_path)):
        if path is not None:
            print(f"{path}: {json.dumps(result.summary[part], sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
