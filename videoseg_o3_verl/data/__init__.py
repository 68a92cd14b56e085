# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""RVOS data: the record schema, RLE helpers, dataset converters, verl parquet rows and the synthetic dataset.

    records.py     RVOSRecord (one expression on one video, per-frame RLE ground truth)
    rle.py         encode / decode / merge COCO RLEs with input checks
    parquet.py     verl parquet row schema, write/read, convert_to_parquet
    converters/    registry of on-disk layouts (mevis, revos, refytvos, refdavis, reasonvos, longrvos,
                   groundmore, videoseg_rl_json, synthetic)
    synthetic.py   the embedded default dataset (moving shapes, referring + temporal reasoning expressions)
"""

from videoseg_o3_verl.data.converters import convert_dataset, get_converter, list_converters, register_converter
from videoseg_o3_verl.data.parquet import (
    ConversionResult,
    convert_to_parquet,
    read_parquet_records,
    record_from_extra_info,
    record_to_row,
    write_parquet,
)
from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.data.rle import decode_rle, encode_mask, merge_rles, normalize_rle
from videoseg_o3_verl.data.synthetic import SyntheticDataset, generate_synthetic_dataset

__all__ = [
    "ConversionResult",
    "RVOSRecord",
    "SyntheticDataset",
    "convert_dataset",
    "convert_to_parquet",
    "decode_rle",
    "encode_mask",
    "generate_synthetic_dataset",
    "get_converter",
    "list_converters",
    "merge_rles",
    "normalize_rle",
    "read_parquet_records",
    "record_from_extra_info",
    "record_to_row",
    "register_converter",
    "write_parquet",
]
