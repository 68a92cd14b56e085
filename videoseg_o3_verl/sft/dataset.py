# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""verl's multi-turn SFT dataset for VTS-CoT parquet: images used as stored, ``extra_info`` passed to the engine.

Two differences from :class:`verl.utils.dataset.multiturn_sft_dataset.MultiTurnSFTDataset` (selected with
``data.custom_cls``): images are handed to the processor exactly as stored (PNG, already resized by the RL
environment; verl's ``process_image`` would re-snap them with ``fetch_image`` first, which RL never does), and
every item carries the row's ``extra_info`` (record + per-turn [SEG] keyframes) for the seg head.

With ``data.cache_items: true`` each processed item (tokens, pixel values, extra_info) is kept in memory after its
first use, so later epochs skip PNG decoding, the processor and the tokenizer (~25 ms per item for the learning
demo, ~0.8 MB each). Items are deterministic, so the cache changes nothing but the time; it lives in the process that
reads the dataset, so it pays with ``data.num_workers: 0`` (verl re-creates loader workers every epoch).
"""

from __future__ import annotations

import io

from PIL import Image
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.py_functional import convert_nested_value_to_list_recursive

from ..data.vts_cot import SFT_INFO_KEY


def _as_image(item) -> Image.Image:
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if isinstance(item, dict) and item.get("bytes") is not None:
        return Image.open(io.BytesIO(item["bytes"])).convert("RGB")
    raise ValueError(f"image entries must be {{'bytes': ...}} (as written by `videoseg-o3 vts-cot`), got "
                     f"{type(item).__name__}")


class VideoSegSFTDataset(MultiTurnSFTDataset):
    """Multi-turn SFT rows of ``videoseg-o3 vts-cot`` (see the module docstring)."""

    def __init__(self, parquet_files, tokenizer, config, *args, **kwargs):
        super().__init__(parquet_files, tokenizer, config, *args, **kwargs)
        self.cache_items = bool((config or {}).get("cache_items", False))
        self._items: dict[int, dict] = {}

    def _build_messages(self, example: dict):
        if self.image_key in example and example[self.image_key] is not None:
            example = {**example, self.image_key: [_as_image(i) for i in example[self.image_key]]}
        return super()._build_messages(example)

    def __getitem__(self, item):
        if item in self._items:
            return dict(self._items[item])
        out = self._process(item)
        if self.cache_items:
            self._items[item] = out
            return dict(out)
        return out

    def _process(self, item):
        out = super().__getitem__(item)
        extra = convert_nested_value_to_list_recursive(self.dataframe["extra_info"].iloc[item])
        if not isinstance(extra, dict) or SFT_INFO_KEY not in extra:
            raise ValueError(f"row {item}: extra_info has no {SFT_INFO_KEY!r} (build the parquet with "
                             "`videoseg-o3 vts-cot`)")
        out["extra_info"] = dict(extra)
        return out
