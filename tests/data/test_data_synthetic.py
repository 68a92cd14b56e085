# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The synthetic RVOS dataset: determinism, exact masks, resolvable expressions, speed, and the round trip
generator → real converter → parquet → records."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion

from videoseg_o3_verl.data.converters import convert_dataset
from videoseg_o3_verl.data.parquet import convert_to_parquet, read_parquet_records
from videoseg_o3_verl.data.rle import decode_rle
from videoseg_o3_verl.data.synthetic import COLOURS, SHAPES, generate_synthetic_dataset

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(num_videos=12, num_frames=16, height=48, width=64)  # small but long enough for partial visibility
ALL_KINDS = {"appearance", "colour", "shape_group", "motion", "second_half", "first_half", "enters_after_leaves",
             "appears_last", "disappears_first", "fastest"}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    info = generate_synthetic_dataset(root, seed=2, **SMALL)  # seed 2: every expression kind occurs
    records = convert_dataset("synthetic", str(root), "train")
    sidecar = json.loads((root / "synthetic_objects_train.json").read_text())["videos"]
    mask_dict = json.loads((root / "mask_dict.json").read_text())
    return root, info, records, sidecar, mask_dict


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synthetic_same_seed_gives_identical_files(tmp_path):
    a = generate_synthetic_dataset(tmp_path / "a", seed=7, num_videos=2, num_frames=10, height=32, width=40)
    generate_synthetic_dataset(tmp_path / "b", seed=7, num_videos=2, num_frames=10, height=32, width=40)
    generate_synthetic_dataset(tmp_path / "c", seed=8, num_videos=2, num_frames=10, height=32, width=40)
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert files_a == files_b  # annotations and JPEG bytes
    assert len([f for f in files_a if f.endswith(".jpg")]) == 2 * 10
    meta = "meta_expressions_train_.json"
    assert (tmp_path / "c" / meta).read_bytes() != files_a[meta]  # another seed, another dataset
    assert sorted(os.path.relpath(f, a.root) for f in a.files) == [
        "mask_dict.json", "mask_dict_foreground.json", meta, "synthetic_objects_train.json"]


def test_synthetic_existence_matches_masks(synthetic):
    _, _, records, _, _ = synthetic
    for rec in records:
        rec.check_masks()  # every non-None RLE is well-formed and non-empty
        visible = tuple(int(rec.decode_mask(t).any()) for t in range(rec.num_frames))
        assert rec.mask_existence == visible, rec.name


def test_synthetic_masks_are_exact_visible_pixels(synthetic):
    root, _, _, sidecar, mask_dict = synthetic
    checked = 0
    for vid, info in sidecar.items():
        frames = [np.asarray(Image.open(root / "JPEGImages" / vid / f"{t:05d}.jpg")) for t in range(16)]
        for t in range(16):
            union = np.zeros(frames[0].shape[:2], dtype=int)
            for obj in info["objects"]:
                rle = mask_dict[str(obj["anno_id"])][t]
                if rle is None:
                    continue
                m = decode_rle(rle)
                union += m
                # interior pixels (2 px from the mask border: JPEG chroma subsampling blurs edges) have the
                # object's colour; JPEG q90 + noise 6 keep the mean error far below 30 per channel
                inner = binary_erosion(m, iterations=2)
                if inner.sum() >= 4:
                    err = np.abs(frames[t][inner].mean(axis=0) - np.array(COLOURS[obj["colour"]]))
                    assert err.max() < 30, (vid, t, obj["obj_id"], err)
                    checked += 1
            assert union.max() <= 1  # visible masks of different objects never overlap
            fg = decode_rle(json.loads((root / "mask_dict_foreground.json").read_text())[vid]["masks_rle"][t])
            np.testing.assert_array_equal(fg, union > 0)
    assert checked > 100  # most (object, frame) pairs have an interior to check


def _first_last(existence: list[int]) -> tuple[int, int]:
    idx = np.flatnonzero(existence)
    return int(idx[0]), int(idx[-1])


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_synthetic_expressions_are_resolvable(synthetic):
    """Re-derive each expression's target from the objects (sidecar) and exact masks, independently."""
    _, _, records, sidecar, mask_dict = synthetic
    kinds, types = set(), set()
    for rec in records:
        objs = [o for o in sidecar[rec.video_id]["objects"] if any(o["existence"])]
        target = sidecar[rec.video_id]["expressions"][rec.expression_id]
        kinds.add(target["kind"])
        types.add(rec.type_id)
        text, t_len, half = rec.expression, rec.num_frames, rec.num_frames // 2
        span = {o["obj_id"]: _first_last(o["existence"]) for o in objs}
        if m := re.fullmatch(r"the shape moving (left|right|up|down)", text):
            # every object keeps one direction, and exactly one has this one
            assert all(o["direction"] is not None for o in objs)
            expected = [o["obj_id"] for o in objs if o["direction"] == m.group(1)]
        elif m := re.fullmatch(r"the (\w+) shape", text):  # unique colour, shared shape
            expected = [o["obj_id"] for o in objs if o["colour"] == m.group(1)]
            shape = next(o["shape"] for o in objs if o["colour"] == m.group(1))
            assert sum(o["shape"] == shape for o in objs) >= 2
        elif m := re.fullmatch(r"the (\w+) (\w+)( moving (left|right|up|down))?", text):
            colour, shape, direction = m.group(1), m.group(2), m.group(4)
            expected = [o["obj_id"] for o in objs if (o["colour"], o["shape"]) == (colour, shape)]
            if direction:
                # net displacement of the target's mask centroid has the named sign along the named axis
                first, last = span[expected[0]]
                d = _centroid(rec.decode_mask(last)) - _centroid(rec.decode_mask(first))
                axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[direction]
                assert d[axis] * sign > 0, (rec.name, text, d)
        elif m := re.fullmatch(r"all the (\w+)s", text):
            expected = [o["obj_id"] for o in objs if o["shape"] == m.group(1)]
            assert len(expected) >= 2
        elif text == "the object that is visible only in the second half of the video":
            expected = [k for k, (f, _) in span.items() if f >= half]
        elif text == "the object that is visible only in the first half of the video":
            expected = [k for k, (_, e) in span.items() if e < half]
        elif m := re.fullmatch(r"the shape that enters after the (\w+) (\w+) leaves", text):
            (ref,) = [o["obj_id"] for o in objs if (o["colour"], o["shape"]) == (m.group(1), m.group(2))]
            assert span[ref][1] < t_len - 1  # the reference object does leave
            expected = [k for k, (f, _) in span.items() if f > span[ref][1]]
        elif text == "the object that appears last":
            latest = max(f for f, _ in span.values())
            expected = [k for k, (f, _) in span.items() if f == latest]
            assert latest > 0
        elif text == "the object that disappears first":
            earliest = min(e for _, e in span.values())
            expected = [k for k, (_, e) in span.items() if e == earliest]
            assert earliest < t_len - 1
        elif text == "the fastest-moving object":
            speeds = sorted((o["speed"], o["obj_id"]) for o in objs)
            assert speeds[-1][0] >= 1.3 * speeds[-2][0]
            expected = [speeds[-1][1]]
        else:
            raise AssertionError(f"unexpected expression {text!r}")
        assert sorted(expected) == sorted(target["obj_ids"]) == sorted(rec.object_ids), (rec.name, text)
        # the record's masks are the OR of the targets' masks in mask_dict
        annos = [o["anno_id"] for o in objs if o["obj_id"] in expected]
        for t in range(t_len):
            union = np.zeros((rec.height, rec.width), dtype=bool)
            for a in annos:
                if mask_dict[str(a)][t] is not None:
                    union |= decode_rle(mask_dict[str(a)][t])
            np.testing.assert_array_equal(rec.decode_mask(t), union)
    assert types == {0, 1}  # both referring and reasoning expressions occur
    assert kinds == ALL_KINDS  # every branch above was exercised


def test_synthetic_expressions_unique_within_video(synthetic):
    _, info, records, _, _ = synthetic
    texts = [(r.video_id, r.expression) for r in records]
    assert len(texts) == len(set(texts)) == info.num_expressions


def test_synthetic_objects_have_unique_appearance(synthetic):
    _, _, _, sidecar, _ = synthetic
    for info in sidecar.values():
        pairs = [(o["colour"], o["shape"]) for o in info["objects"]]
        assert len(pairs) == len(set(pairs)) and 2 <= len(pairs) <= 4
        assert all(c in COLOURS and s in SHAPES for c, s in pairs)
        assert (info["objects"][0]["first"], info["objects"][0]["last"]) == (0, 15)  # object 0 is always drawn


def test_synthetic_speed_sanity(tmp_path):
    start = time.perf_counter()
    generate_synthetic_dataset(tmp_path, num_videos=10, num_frames=20, height=96, width=128, seed=0)
    elapsed = time.perf_counter() - start
    print(f"synthetic: 200 frames of 96x128 in {elapsed:.3f} s ({200 / elapsed:.0f} frames/s)")
    assert elapsed < 30.0  # generous: ~0.2 s measured on a shared 2-core machine


@pytest.mark.parametrize("layout", ["revos", "mevis"])
def test_synthetic_roundtrip_converter_parquet_records(tmp_path, layout):
    generate_synthetic_dataset(tmp_path / "data", layout=layout, splits=("train", "valid"), seed=1,
                               num_videos=2, num_frames=12, height=32, width=48)
    reader = "revos" if layout == "revos" else "mevis"
    direct = convert_dataset(reader, str(tmp_path / "data"), "valid", dataset_name="synthetic")
    result = convert_to_parquet("synthetic", tmp_path / "data", tmp_path / "pq" / "valid.parquet", split="valid")
    back = read_parquet_records(result.train_path)
    assert result.num_train == len(back) == len(direct) > 0
    # the real layout converter and the synthetic entry agree (apart from ReVOS's foreground pointer)
    assert [dataclass_without_extra(r) for r in back] == [dataclass_without_extra(r) for r in direct]
    assert all(r.video_id.startswith("synthetic_valid_") for r in back)
    assert {r.type_id for r in back} <= {0, 1}


def test_synthetic_convert_to_parquet_val_split_by_video(tmp_path):
    generate_synthetic_dataset(tmp_path / "data", seed=4, num_videos=4, num_frames=10, height=32, width=40)
    result = convert_to_parquet("synthetic", tmp_path / "data", tmp_path / "train.parquet", val_fraction=0.25)
    train, val = read_parquet_records(result.train_path), read_parquet_records(result.val_path)
    # round(0.25 * 4 videos) = 1 validation video; no video is in both files
    assert result.val_path == str(tmp_path / "train_val.parquet")
    assert len({r.video_id for r in val}) == 1 == result.summary["val"]["videos"]
    assert not {r.video_id for r in train} & {r.video_id for r in val}
    assert (len(train), len(val)) == (result.num_train, result.num_val)


def dataclass_without_extra(rec):
    payload = rec.to_payload()
    payload.pop("extra")
    return payload


def test_synthetic_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="layout must be one of"):
        generate_synthetic_dataset(tmp_path, layout="coco")
    with pytest.raises(ValueError, match="height must be an int >= 8"):
        generate_synthetic_dataset(tmp_path, height=4)


def test_make_synthetic_cli(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_synthetic", REPO / "tools" / "make_synthetic.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main(["--root", str(tmp_path / "d"), "--num-videos", "2", "--num-frames", "10", "--height", "32",
                     "--width", "40", "--splits", "train,valid", "--parquet-dir", str(tmp_path / "pq")]) == 0
    assert "wrote 40 frames" in capsys.readouterr().out  # 2 splits x 2 videos x 10 frames
    assert {r.video_id for r in read_parquet_records(tmp_path / "pq" / "valid.parquet")} == {
        "synthetic_valid_0000", "synthetic_valid_0001"}


# ------------------------------------------------------------------------------------------ grounding preset
def test_grounding_preset_is_the_learnable_colour_task(tmp_path):
    """3 still squares of distinct saturated colours, one per 28-px quadrant of a 56x56 frame, each visible in its
    own 2-frame window only; one expression per object naming its colour; masks exact; black background."""
    from videoseg_o3_verl.data.synthetic import GROUNDING_COLOURS

    generate_synthetic_dataset(tmp_path, num_videos=6, seed=5, preset="grounding")
    sidecar = json.loads((tmp_path / "synthetic_objects_train.json").read_text())["videos"]
    meta = json.loads((tmp_path / "meta_expressions_train_.json").read_text())["videos"]
    records = convert_dataset("synthetic", str(tmp_path), split="train")
    assert len(sidecar) == 6 and len(records) == 18
    for vid, info in sidecar.items():
        objects = info["objects"]
        assert len(objects) == 3 and len({o["colour"] for o in objects}) == 3
        assert {e["exp"] for e in meta[vid]["expressions"].values()} == {f"the {o['colour']} object" for o in objects}
        frames = np.stack([np.array(Image.open(tmp_path / "JPEGImages" / vid / f"{t:05d}.jpg")) for t in range(8)])
        assert frames.shape == (8, 56, 56, 3)
        quadrants = set()
        for o in objects:
            assert sum(o["existence"]) == 2 and o["last"] == o["first"] + 1
            assert o["existence"] == [int(o["first"] <= t <= o["last"]) for t in range(8)]
        for r in (r for r in records if r.video_id == vid):
            obj = next(o for o in objects if r.expression == f"the {o['colour']} object")
            assert list(r.mask_existence) == obj["existence"]
            mask = r.decode_mask(obj["first"])
            ys, xs = np.nonzero(mask)
            quadrant = (int(ys.min()) // 28, int(xs.min()) // 28)
            assert quadrant == (int(ys.max()) // 28, int(xs.max()) // 28)  # inside one quadrant (one visual token)
            quadrants.add(quadrant)
            side, height = int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
            assert 20 <= side <= 28 and abs(height - side) <= 1 and mask.sum() == side * height  # a solid square
            colour = np.array(GROUNDING_COLOURS[obj["colour"]])
            pixels = frames[obj["first"]][mask].astype(int)
            assert np.abs(pixels.mean(0) - colour).max() < 25  # JPEG keeps the saturated colour
        assert len(quadrants) == 3
        union = np.zeros((8, 56, 56), bool)
        for r in (r for r in records if r.video_id == vid):
            union |= np.stack([r.decode_mask(t) for t in range(8)])
        assert np.median(frames[~union]) == 0  # black background (JPEG rings only at the square edges)


def test_grounding_shared_preset_shows_every_object_in_one_window(tmp_path):
    """The shared-window variant: the same three squares and expressions, all visible in the same 2-frame window (the
    window moves between videos), nothing anywhere else; the window-per-object preset's files are unchanged by it."""
    generate_synthetic_dataset(tmp_path / "shared", num_videos=8, seed=5, preset="grounding_shared")
    sidecar = json.loads((tmp_path / "shared" / "synthetic_objects_train.json").read_text())["videos"]
    records = convert_dataset("synthetic", str(tmp_path / "shared"), split="train")
    assert len(records) == 24
    firsts = set()
    for vid, info in sidecar.items():
        objects = info["objects"]
        assert len(objects) == 3 and len({o["colour"] for o in objects}) == 3
        assert len({(o["first"], o["last"]) for o in objects}) == 1 and objects[0]["last"] == objects[0]["first"] + 1
        firsts.add(objects[0]["first"])
        masks = np.stack([np.stack([r.decode_mask(t) for t in range(8)]) for r in records if r.video_id == vid])
        visible = masks.any(axis=(2, 3))  # [object, T]
        assert (visible == visible[0]).all() and visible[0].sum() == 2
        assert not (masks.sum(0) > 1).any()  # one object per pixel
    assert len(firsts) > 1
    # the window-per-object preset draws the same windows as before the shared variant existed (recorded then)
    generate_synthetic_dataset(tmp_path / "own", num_videos=8, seed=5, preset="grounding")
    own = json.loads((tmp_path / "own" / "synthetic_objects_train.json").read_text())["videos"]
    assert [[o["first"] for o in info["objects"]] for info in own.values()] == [
        [0, 0, 5], [2, 4, 6], [0, 4, 2], [5, 6, 1], [6, 6, 5], [6, 0, 3], [0, 6, 2], [1, 0, 1]]


def test_grounding_preset_defaults_and_bad_sizes(tmp_path):
    generate_synthetic_dataset(tmp_path / "a", num_videos=1, preset="grounding")
    assert len(list((tmp_path / "a" / "JPEGImages" / "synthetic_train_0000").iterdir())) == 8
    with pytest.raises(ValueError, match="preset must be one of"):
        generate_synthetic_dataset(tmp_path / "b", preset="stripes")
    with pytest.raises(ValueError, match="grounding preset needs"):
        generate_synthetic_dataset(tmp_path / "c", preset="grounding", height=12, width=12)
