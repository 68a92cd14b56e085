# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""A small pure-SVG line plot (series → SVG string with axes, ticks and a legend) for the demo report."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
"""Series colours, in order (cycled)."""


@dataclass(frozen=True)
class PlotBox:
    """Pixel layout of a plot: the SVG size and the margins around the plotting area."""

    width: int = 510
    """SVG width in pixels (plot area + legend column)."""
    height: int = 240
    """SVG height in pixels."""
    left: int = 56
    """Left margin (y tick labels)."""
    right: int = 220
    """Right margin (the legend column)."""
    top: int = 26
    """Top margin (the title)."""
    bottom: int = 40
    """Bottom margin (x tick labels and the x label)."""

    def __post_init__(self) -> None:
        if self.width <= self.left + self.right or self.height <= self.top + self.bottom:
            raise ValueError(f"PlotBox: {self.width}x{self.height} px leaves no plotting area inside the margins")


def _span(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi == lo:  # a flat series: centre it in a unit-wide range
        return lo - 0.5, hi + 0.5
    return lo, hi


def tick_label(value: float, span: float) -> str:
    """A tick's text: 3 significant digits; ``0`` for a value within a thousandth of the axis span of zero.

    Example:
        >>> tick_label(1.2345, 2.0), tick_label(3.17e-08, 1.93), tick_label(-0.25, 1.0)
        ('1.23', '0', '-0.25')
    """
    return "0" if abs(value) < 1e-3 * span else f"{value:.3g}"


def project(x: float, y: float, x_range: tuple[float, float], y_range: tuple[float, float],
            box: PlotBox) -> tuple[float, float]:
    """Data point → SVG pixel (the y axis points down in SVG).

    Example:
        >>> box = PlotBox(width=300, height=200, left=50, right=50, top=20, bottom=30)
        >>> project(0.0, 0.0, (0.0, 10.0), (0.0, 1.0), box), project(10.0, 1.0, (0.0, 10.0), (0.0, 1.0), box)
        ((50.0, 170.0), (250.0, 20.0))
    """
    (x_lo, x_hi), (y_lo, y_hi) = x_range, y_range
    px = box.left + (x - x_lo) / (x_hi - x_lo) * (box.width - box.left - box.right)
    py = box.height - box.bottom - (y - y_lo) / (y_hi - y_lo) * (box.height - box.top - box.bottom)
    return px, py


def line_plot(series: Mapping[str, Sequence[tuple[float, float]]], *, title: str = "", x_label: str = "step",
              box: PlotBox = PlotBox(), ticks: int = 5) -> str:
    """One ``<svg>`` with a polyline per non-empty series (and a dot when it has one point), axes with ``ticks``
    evenly spaced labelled ticks on each, the title, the x label and a legend (colour → series name).

    Args:
        series: name → ``(x, y)`` points; non-finite points are dropped, series left empty are not drawn.
        title: text above the plot.
        x_label: text under the x axis.
        box: pixel layout.
        ticks: ticks per axis (>= 2), at the ends of the data range and evenly in between.

    Returns:
        The SVG element as a string (inline it in HTML); a plot with no data says so.
    """
    if ticks < 2:
        raise ValueError(f"line_plot: ticks must be >= 2, got {ticks}")
    clean = {name: [(float(x), float(y)) for x, y in points if math.isfinite(x) and math.isfinite(y)]
             for name, points in series.items()}
    clean = {name: points for name, points in clean.items() if points}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{box.width}" height="{box.height}" '
             f'viewBox="0 0 {box.width} {box.height}" font-family="sans-serif" font-size="11">',
             f'<text x="{box.left}" y="{box.top - 10}" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    x0, x1 = box.left, box.width - box.right
    y0, y1 = box.top, box.height - box.bottom
    parts.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#444"/>')
    if not clean:
        parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{(y0 + y1) / 2:.1f}" text-anchor="middle">no data</text>')
        return "".join(parts) + "</svg>"
    x_range = _span([x for points in clean.values() for x, _ in points])
    y_range = _span([y for points in clean.values() for _, y in points])
    x_span, y_span = x_range[1] - x_range[0], y_range[1] - y_range[0]
    for i in range(ticks):
        fx = x_range[0] + x_span * i / (ticks - 1)
        fy = y_range[0] + y_span * i / (ticks - 1)
        px, _ = project(fx, y_range[0], x_range, y_range, box)
        _, py = project(x_range[0], fy, x_range, y_range, box)
        parts.append(f'<line class="tick" x1="{px:.1f}" y1="{y1}" x2="{px:.1f}" y2="{y1 + 4}" stroke="#444"/>'
                     f'<text x="{px:.1f}" y="{y1 + 15}" text-anchor="middle">{tick_label(fx, x_span)}</text>'
                     f'<line class="tick" x1="{x0 - 4}" y1="{py:.1f}" x2="{x0}" y2="{py:.1f}" stroke="#444"/>'
                     f'<text x="{x0 - 6}" y="{py + 4:.1f}" text-anchor="end">{tick_label(fy, y_span)}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{box.height - 6}" text-anchor="middle">'
                 f"{html.escape(x_label)}</text>")
    for i, (name, points) in enumerate(clean.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join("{:.1f},{:.1f}".format(*project(x, y, x_range, y_range, box)) for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}">'
                     f"<title>{html.escape(name)}</title></polyline>")
        if len(points) == 1:  # a one-point line is invisible: mark the point
            px, py = project(*points[0], x_range, y_range, box)
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
        ly = y0 + 6 + 15 * i
        parts.append(f'<line x1="{x1 + 10}" y1="{ly}" x2="{x1 + 28}" y2="{ly}" stroke="{colour}" stroke-width="2"/>'
                     f'<text class="legend" x="{x1 + 32}" y="{ly + 4}">{html.escape(name)}</text>')
    return "".join(parts) + "</svg>"
