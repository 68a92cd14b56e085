# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""``demo_output/report.html`` of the learning demo (one self-contained file): training curves of SFT, the seg-head
stage and RL as inline SVG, the before/after table with 95 % intervals, and the same held-out samples under SFT and
RL side by side (frames shown per turn, turn texts, predicted vs ground-truth masks — rendered by the eval report)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report import _CSS
from .summary import METRICS, POLICIES, format_cell
from .svg import line_plot
from .tracker import keys_with_prefix, read_rows, series

if TYPE_CHECKING:
    from ..data.records import RVOSRecord
    from .config import DemoConfig
    from .pipeline import DemoPaths

PLOTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "sft": (("SFT losses", ("sft/ce", "sft/mask_loss")),
            ("SFT mask IoU", ("sft/seg_iou",))),
    "sft_head": (("Seg-head mask loss", ("sft/mask_loss", "sft/mask_bce", "sft/mask_dice")),
                 ("Seg-head mask IoU", ("sft/seg_iou",))),
    "rl": (("RL reward", ("videoseg/reward/total",)),
           ("RL reward terms", ("videoseg/reward/*",)),
           ("RL turns", ("videoseg/avg_turns",)),
           ("RL select rate", ("videoseg/select_rate",)),
           ("RL mask IoU", ("videoseg/final_mask_iou", "videoseg/final_keyframe_iou")),
           ("RL losses", ("actor/pg_loss", "actor/videoseg/aux_loss", "actor/kl_loss"))),
}
"""Plots per training stage: title and the metric names drawn (``prefix*``: every metric with that prefix that no
plot of the stage names explicitly)."""

STAGE_TITLES = {"sft": "SFT (cold start)", "sft_head": "Seg head on the frozen SFT policy (end of the cold start)",
                "rl": "RL"}
"""Section titles of the training curves, per stage of :data:`PLOTS`."""

POLICY_NAMES = {"sft": "SFT (cold start)", "rl": "RL"}
"""Row labels of the before/after table (the fixed guess's names its variant)."""

_DEMO_CSS = """
div.plots svg { margin: 4px; border: 1px solid #ddd; background: #fff; }
div.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; border-top: 3px solid #444; margin-top: 1.5em; }
div.pair > div > section.sample { border-top: none; margin-top: 0; }
div.pair h2.policy { margin-bottom: 0; }
"""


def stage_plots(rows: Sequence[dict[str, Any]], specs: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """One SVG per plot spec from file-tracker rows (a plot whose metrics were never logged says "no data"); a
    prefix's metrics are named without the prefix in the legend."""
    explicit = {key for _, keys in specs for key in keys if not key.endswith("*")}
    out = []
    for title, keys in specs:
        lines: dict[str, list[tuple[float, float]]] = {}
        for key in keys:
            if not key.endswith("*"):
                lines[key] = series(rows, key)
                continue
            prefix = key[:-1]  # legend: the name after the prefix (the title says what they are)
            lines.update({name[len(prefix):]: series(rows, name) for name in keys_with_prefix(rows, prefix)
                          if name not in explicit})
        out.append(line_plot(lines, title=title))
    return out


def table_html(evaluation: Mapping[str, Mapping[str, Any]], n_eval: int, fixed_guess: str) -> str:
    """The before/after table: one row per policy, ``mean [lo, hi]`` per metric; ``fixed_guess`` names the mask of
    the reported fixed-guess variant."""
    names = {**POLICY_NAMES, "fixed_guess": f"fixed guess ({fixed_guess} mask: the best trivial policy)"}
    head = "".join(f"<th>{html.escape(m)}</th>" for m in METRICS)
    body = "".join(f'<tr><td class="name">{html.escape(names[p])}</td>'
                   + "".join(f"<td>{format_cell(evaluation[p][m], 1 if m == 'J&F' else 3)}</td>" for m in METRICS)
                   + "</tr>" for p in POLICIES)
    return (f"<p>{n_eval} held-out samples (videos never seen in training); mean and 95 % bootstrap interval. "
            "The fixed guess answers the middle keyframe and the whole video with a constant mask.</p>"
            f'<table class="summary"><tr><th>policy</th>{head}</tr>{body}</table>')


def episode_line(entry: dict[str, Any]) -> str:
    """The sample's own metrics (the eval's per-episode ``metrics``), or nothing when it has none.

    Example:
        >>> episode_line({"metrics": {"format_valid": 1.0, "keyframe_hit": 0.0, "tiou": 0.25, "jf": 61.04,
        ...                           "reward_total": 2.5}})
        '<p>format valid 1, keyframe hit 0, tIoU 0.250, J&amp;F 61.0, reward 2.500</p>'
    """
    m = entry.get("metrics")
    if not m:
        return ""
    return html.escape(f"format valid {m['format_valid']:.0f}, keyframe hit {m['keyframe_hit']:.0f}, "
                       f"tIoU {m['tiou']:.3f}, J&F {m['jf']:.1f}, reward {m['reward_total']:.3f}").join(
        ("<p>", "</p>"))


def pair_html(record: RVOSRecord, sft_entry: dict[str, Any], rl_entry: dict[str, Any]) -> str:
    """One held-out sample under SFT (left) and RL (right)."""
    from ..eval.report import _expression_html

    sides = "".join(f'<div><h2 class="policy">{name}</h2>{episode_line(entry)}{_expression_html(record, entry)}</div>'
                    for name, entry in (("SFT", sft_entry), ("RL", rl_entry)))
    return f'<div class="pair">{sides}</div>'



def render_demo_report(curves: Mapping[str, Sequence[dict[str, Any]]],
                       evaluation: Mapping[str, Mapping[str, Any]], n_eval: int, fixed_guess: str,
                       pairs: Sequence[tuple[RVOSRecord, dict[str, Any], dict[str, Any]]],
                       title: str = "VideoSEG-O3 learning demo") -> str:
    """The page as a string (see the module docstring); ``curves``: file-tracker rows per stage (keys of
    :data:`PLOTS`), drawn in the mapping's order."""
    body = [f"<h1>{html.escape(title)}</h1>", "<h2>Held-out evaluation</h2>",
            table_html(evaluation, n_eval, fixed_guess)]
    for stage, rows in curves.items():
        body.append(f"<h2>{html.escape(STAGE_TITLES[stage])}: training curves</h2>"
                    f'<div class="plots">{"".join(stage_plots(rows, PLOTS[stage]))}</div>')
    body.append("<h2>The same held-out samples under SFT and RL</h2>")
    body.extend(pair_html(*pair) for pair in pairs)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}{_DEMO_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def same_samples(records: Sequence[RVOSRecord], sft_entries: Sequence[dict[str, Any]],
                 rl_entries: Sequence[dict[str, Any]], count: int
                 ) -> list[tuple[RVOSRecord, dict[str, Any], dict[str, Any]]]:
    """The first ``count`` records (in record order) that both policies evaluated, with both journal entries."""
    sft = {(e["video"], e["expression_id"]): e for e in sft_entries}
    rl = {(e["video"], e["expression_id"]): e for e in rl_entries}
    out = []
    for record in records:
        key = (record.video_id, record.expression_id)
        if key in sft and key in rl and len(out) < count:
            out.append((record, sft[key], rl[key]))
    return out


def write_demo_report(paths: DemoPaths, cfg: DemoConfig, evaluation: Mapping[str, Mapping[str, Any]],
                      fixed_guess: str) -> Path:
    """Read the stages' outputs and write ``report.html``; returns its path."""
    from ..data.parquet import read_parquet_records
    from ..eval.runner import JOURNAL, read_journal

    records = read_parquet_records(str(paths.heldout_parquet))[: cfg.n_eval]
    pairs = same_samples(records, read_journal(paths.eval_dir("sft") / JOURNAL),
                         read_journal(paths.eval_dir("rl") / JOURNAL), cfg.report_videos)
    ran = [stage for stage in PLOTS if paths.metrics(stage).is_file()]  # the seg-head stage is optional
    text = render_demo_report({stage: read_rows(paths.metrics(stage)) for stage in ran}, evaluation,
                              cfg.n_eval, fixed_guess, pairs)
    path = paths.root / "report.html"
    path.write_text(text, encoding="utf-8")
    return path
