# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`report.html` of an evaluation run: the table, then for a sample of videos every expression's turns, the
frames shown each turn, the selections and the final masks over the frames (one self-contained file)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from videoseg_reward.masks import decode_rle

from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.report import _CSS, OVERLAY_SIDE, THUMB_SIDE, _img, overlay
from videoseg_o3_verl.video import VideoSource

OVERLAY_FRAMES = 4
"""Frames with the final mask overlay per expression (the keyframe plus evenly spaced others)."""


def _overlay_indices(num_frames: int, keyframe: int) -> list[int]:
    spaced = np.linspace(0, num_frames - 1, min(OVERLAY_FRAMES, num_frames), dtype=int).tolist()
    return sorted({keyframe, *spaced})[: OVERLAY_FRAMES + 1]


def _thumbs(video: VideoSource, indices: Sequence[int]) -> str:
    frames = video.get_frames(list(indices))
    return "".join(f"<figure>{_img(img, THUMB_SIDE, f'frame {i}')}<figcaption>{int(i)}</figcaption></figure>"
                   for img, i in zip(frames, indices, strict=True))


def _expression_html(record: RVOSRecord, entry: dict[str, Any]) -> str:
    result = entry["result"]
    head = f"<h2>{html.escape(record.name)}</h2><p><b>Query:</b> {html.escape(record.expression)}</p>"
    if "error" in result:
        return f'<section class="sample">{head}<p><b>Error:</b> {html.escape(result["error"])}</p></section>'
    video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids) or None)
    try:
        initial = entry.get("initial") or {}
        shown = list(initial.get("low_res", [])) + list(initial.get("high_res", []))
        parts = [head, f"<p>{len(video)} frames; {result['num_rounds']} turn(s); final keyframe "
                       f"{result['keyframe_index']}; [SEG]: {'yes' if result.get('has_seg') else 'no (empty masks)'}"
                       + (f"; J {entry['score']['J']:.4f}, F {entry['score']['F']:.4f}" if entry.get("score") else "")
                       + "</p>"]
        for t, turn in enumerate(entry.get("turns", [])):
            action = f"<b>{html.escape(turn['kind'])}</b>"
            if turn.get("vtg"):
                action += f" VTG {html.escape(json.dumps(turn['vtg']))}"
            if turn.get("reason"):
                action += f" — {html.escape(turn['reason'])}"
            parts.append(f'<div class="turn"><h3>Turn {t}</h3><p>Frames shown:</p>'
                         f'<div class="thumbs">{_thumbs(video, shown)}</div>'
                         f'<pre class="assistant">{html.escape(turn["text"])}</pre><p>Action: {action}</p></div>')
            shown = list(turn.get("shown_low_res", [])) + ([turn["shown_keyframe"]]
                                                           if turn.get("shown_keyframe") is not None else [])
        overlays = []
        for i in _overlay_indices(len(video), int(result["keyframe_index"])):
            pred = decode_rle(result["prediction_masks"][i])
            gt = record.decode_mask(i) if record.has_ground_truth else None
            label = f"frame {i}" + (" (keyframe)" if i == result["keyframe_index"] else "")
            image = overlay(video.get_frame(i), pred, gt)
            overlays.append(f'<figure class="overlay">{_img(image, OVERLAY_SIDE, label)}'
                            f"<figcaption>{html.escape(label)}</figcaption></figure>")
        parts.append('<h3>Final masks: <span class="legend-pred">prediction</span> / <span class="legend-gt">ground '
                     'truth</span> / <span class="legend-both">both</span></h3>'
                     f'<div class="thumbs">{"".join(overlays)}</div>')
    finally:
        video.close()
    return f'<section class="sample">{"".join(parts)}</section>'


def _table_html(metrics: dict[str, Any]) -> str:
    cells = "".join(f"<tr><td class=\"name\">{html.escape(str(k))}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                    for k, v in metrics.get("table", {}).items())
    counts = (f"<p>{metrics['num_evaluated']} of {metrics['num_expressions']} expression(s) evaluated, "
              f"{metrics['num_scored']} scored, {metrics['num_errors']} error(s), "
              f"{metrics['num_without_seg']} without [SEG]; rounds {html.escape(json.dumps(metrics['rounds']))}</p>")
    return f'{counts}<table class="rewards"><tr><th>metric</th><th>value</th></tr>{cells}</table>'


def write_eval_report(path: Path, records: Sequence[RVOSRecord], entries: Sequence[dict[str, Any]],
                      metrics: dict[str, Any], *, max_videos: int = 4) -> Path:
    """Write the page; the sample is the first `max_videos` videos in record order (all their expressions)."""
    by_key = {(e["video"], e["expression_id"]): e for e in entries}
    videos: list[str] = []
    sections = []
    for record in records:
        entry = by_key.get((record.video_id, record.expression_id))
        if entry is None:
            continue
        if record.video_id not in videos:
            if len(videos) >= max_videos:
                continue
            videos.append(record.video_id)
        sections.append(_expression_html(record, entry))
    title = f"VideoSEG-O3 evaluation — {metrics['dataset']}"
    body = [f"<h1>{html.escape(title)}</h1>", _table_html(metrics), *sections]
    path.write_text("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                    f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
                    + "\n".join(body) + "\n</body></html>\n", encoding="utf-8")
    return path
