# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The report's pure-SVG line plot: one polyline per series, points at the right pixels, axes, ticks, legend."""

import re
import xml.etree.ElementTree as ET

import pytest

from videoseg_o3_verl.demo.svg import PlotBox, line_plot, project, tick_label

NS = {"s": "http://www.w3.org/2000/svg"}
BOX = PlotBox(width=300, height=200, left=50, right=50, top=20, bottom=30)


def _points(polyline) -> list[tuple[float, float]]:
    return [tuple(float(v) for v in p.split(",")) for p in polyline.get("points").split()]


def test_points_map_to_hand_computed_pixels():
    # plot area: x in [50, 250] (300 - 50 right margin), y in [20, 170] (200 - 30 bottom margin), y axis down.
    # data ranges over both series: x in [0, 10], y in [0, 2]
    svg = line_plot({"loss": [(0, 2.0), (5, 1.0), (10, 0.0)], "iou": [(0, 0.0), (10, 0.5)]}, title="t", box=BOX)
    root = ET.fromstring(svg)
    lines = root.findall("s:polyline", NS)
    assert len(lines) == 2
    # loss: (0, 2) → (50, 20); (5, 1) → (50 + 0.5·200, 170 - 0.5·150) = (150, 95); (10, 0) → (250, 170)
    assert _points(lines[0]) == [(50.0, 20.0), (150.0, 95.0), (250.0, 170.0)]
    # iou: (0, 0) → (50, 170); (10, 0.5) → (250, 170 - 0.25·150) = (250, 132.5)
    assert _points(lines[1]) == [(50.0, 170.0), (250.0, 132.5)]
    assert [t.text for t in lines[0].findall("s:title", NS) + lines[1].findall("s:title", NS)] == ["loss", "iou"]
    assert lines[0].get("stroke") != lines[1].get("stroke")


def test_axes_ticks_title_and_legend():
    svg = line_plot({"a": [(1, 0.0), (3, 4.0)], "b": [(2, 1.0)]}, title="Rewards <RL>", x_label="step", box=BOX,
                    ticks=3)
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "Rewards <RL>" in texts and "step" in texts  # escaped in the source, plain text once parsed
    assert "&lt;RL&gt;" in svg
    # 3 ticks per axis at the ends of the data range and the middle: x 1, 2, 3; y 0, 2, 4 (written x, y, x, y, ...)
    assert [t for t in texts if t in {"0", "1", "2", "3", "4"}] == ["1", "0", "2", "2", "3", "4"]
    assert len(root.findall("s:line[@class='tick']", NS)) == 6
    assert [t.text for t in root.findall("s:text[@class='legend']", NS)] == ["a", "b"]


def test_empty_and_non_finite_series_are_not_drawn():
    svg = line_plot({"none": [], "nan": [(0, float("nan"))], "ok": [(0, 1.0), (1, float("inf")), (2, 3.0)]},
                    box=BOX)
    root = ET.fromstring(svg)
    lines = root.findall("s:polyline", NS)
    assert len(lines) == 1 and len(_points(lines[0])) == 2
    assert root.findall("s:circle", NS) == []
    assert "no data" in line_plot({"x": []}, box=BOX)


def test_a_one_point_series_gets_a_dot():
    # x range [2, 2] widens to [1.5, 2.5] and y [1, 1] to [0.5, 1.5]: the point sits mid-area at (150, 95)
    root = ET.fromstring(line_plot({"one": [(2, 1.0)]}, box=BOX))
    dots = root.findall("s:circle", NS)
    assert [(float(d.get("cx")), float(d.get("cy"))) for d in dots] == [(150.0, 95.0)]


def test_flat_series_is_centred():
    # one y value 3.0: the range becomes [2.5, 3.5], so the line sits mid-height: 170 - 0.5·150 = 95
    root = ET.fromstring(line_plot({"flat": [(0, 3.0), (4, 3.0)]}, box=BOX))
    assert [y for _, y in _points(root.find("s:polyline", NS))] == [95.0, 95.0]


def test_project_and_bad_layout():
    assert project(2.5, 0.5, (0.0, 10.0), (0.0, 1.0), BOX) == (100.0, 95.0)
    with pytest.raises(ValueError, match="no plotting area"):
        PlotBox(width=100, height=200, left=50, right=50)
    with pytest.raises(ValueError, match="ticks"):
        line_plot({"a": [(0, 1)]}, ticks=1)
    assert re.match(r"<svg ", line_plot({"a": [(0, 1)]}))


def test_tick_labels_near_zero_read_zero():
    # the lowest tick of a loss that starts at 3e-8 on a 0..1.9 axis is 0 for the reader, not "3.17e-08"
    assert tick_label(3.17e-08, 1.93) == "0" and tick_label(0.01, 1.93) == "0.01"
    assert tick_label(1234.5, 10.0) == "1.23e+03" and tick_label(-0.5, 1.0) == "-0.5"
