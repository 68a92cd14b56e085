# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Registry of dataset converters: on-disk RVOS layouts → `list[RVOSRecord]`.

Every converter has the signature
`convert(root, split=..., *, limit=None, progress=None, **options) -> list[RVOSRecord]`:
`limit` stops after that many records, `progress(iterable, total=..., desc=...)` wraps the video loop
(e.g. `tqdm.tqdm`), and the options are converter-specific keywords documented on each function.

| name | module | layout |
|---|---|---|
| `mevis`, `revos` | `mevis_revos` | JPEG frames + `mask_dict.json` (RLE per anno_id) + `meta_expressions*.json` |
| `refytvos`, `refdavis` | `youtube_davis` | JPEG frames + palette PNG `Annotations/` + `meta_expressions/<split>/` |
| `reasonvos` | `reasonvos` | VideoLISA release (per-object PNG folders) or the formatted mask_dict variant |
| `longrvos` | `longrvos` | `Annotations/<vid>/<obj_id>/<frame>.png` binary PNGs |
| `groundmore` | `groundmore` | `annotations/<vid>/{images,masks}` + question JSON with action intervals |
| `videoseg_rl_json` | `videoseg_rl` | the authors' RL JSON (docs/method.md §2) + a `mask_dict.json` |
| `synthetic` | `synthetic` | output of `videoseg_o3_verl.data.synthetic` (ReVOS or MeViS layout) |

The registry copies verl's shape: a module-level dict, a decorator returning the function unchanged,
registering a different object under a taken name raises, and a failed lookup lists the known names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from videoseg_o3_verl.data.records import RVOSRecord

ConverterFn = Callable[..., list[RVOSRecord]]
"""`convert(root, split=..., *, limit=None, progress=None, **options) -> list[RVOSRecord]`."""

CONVERTER_REGISTRY: dict[str, ConverterFn] = {}
"""Converter name → converter function."""


def register_converter(name: str) -> Callable[[ConverterFn], ConverterFn]:
    """Decorator registering a converter under `name` (re-registering the same function is a no-op).

    Raises:
        ValueError: a different function is already registered under `name`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"converter name must be a non-empty str, got {name!r}")

    def decorator(fn: ConverterFn) -> ConverterFn:
        existing = CONVERTER_REGISTRY.get(name)
        if existing is not None and existing is not fn:
            raise ValueError(
                f"converter name {name!r} is already registered to {existing.__module__}.{existing.__qualname__}; "
                f"cannot register {getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!s} under it"
            )
        CONVERTER_REGISTRY[name] = fn
        return fn

    return decorator


def get_converter(name: str) -> ConverterFn:
    """Look up a converter by name.

    Raises:
        ValueError: unknown name (the message lists the registered names).
    """
    if name not in CONVERTER_REGISTRY:
        raise ValueError(f"unknown dataset converter {name!r}; registered converters: {list_converters()}")
    return CONVERTER_REGISTRY[name]


def list_converters() -> list[str]:
    """Sorted names of the registered converters."""
    return sorted(CONVERTER_REGISTRY)


def convert_dataset(name: str, root: str, split: str = "train", **options: Any) -> list[RVOSRecord]:
    """Run the converter `name` on `root` (shorthand for `get_converter(name)(root, split=split, **options)`)."""
    return get_converter(name)(root, split=split, **options)


# Importing the converter modules registers them (keep at the bottom: they import the decorator above).
from videoseg_o3_verl.data.converters import (  # noqa: E402,F401
    groundmore,
    longrvos,
    mevis_revos,
    reasonvos,
    refsav,
    synthetic,
    videoseg_rl,
    youtube_davis,
)
