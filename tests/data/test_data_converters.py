# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Dataset converters on tiny hand-made layouts: exact masks, and errors that name the file, the record and the
problem. Frames are 4x5 px; masks are a few hand-placed pixels so every expected value is visible in the test."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from videoseg_o3_verl.data.converters import (
    CONVERTER_REGISTRY,
    convert_dataset,
    get_converter,
    list_converters,
    register_converter,
)
from videoseg_o3_verl.data.parquet import read_parquet_records
from videoseg_o3_verl.data.rle import encode_mask

H, W = 4, 5
FRAMES = ["00000", "00001", "00002"]
REPO = Path(__file__).resolve().parents[2]


def _mask(*pixels: tuple[int, int]) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def _rle(*pixels):
    return encode_mask(_mask(*pixels))


def _jpegs(folder: Path, stems, ext=".jpg") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for s in stems:
        Image.new("RGB", (W, H), (10, 20, 30)).save(folder / f"{s}{ext}")


def _label_png(path: Path, labels: np.ndarray, mode: str = "P") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = labels.astype(np.uint8)
    if mode == "P":
        img = Image.frombytes("P", (W, H), data.tobytes())
        img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    else:
        img = Image.frombytes(mode, (W, H), np.stack([data] * 3, -1).tobytes()) if mode == "RGB" else \
            Image.frombytes("L", (W, H), data.tobytes())
    img.save(path)


def _json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def _edit_json(path: Path, fn) -> None:
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


# --------------------------------------------------------------------------------------------------- MeViS


@pytest.fixture
def mevis_root(tmp_path):
    split = tmp_path / "train"
    _jpegs(split / "JPEGImages" / "v1", FRAMES)
    # anno 1: (0,0) in frame 0, absent in frame 1, (1,1) in frame 2; anno 2: absent, (2,2), (1,2)
    _json(split / "mask_dict.json", {"1": [_rle((0, 0)), None, _rle((1, 1))], "2": [None, _rle((2, 2)), _rle((1, 2))]})
    _json(split / "meta_expressions.json", {"videos": {"v1": {"frames": FRAMES, "expressions": {
        "0": {"exp": "the cat", "obj_id": [0], "anno_id": [1]},
        "1": {"exp": "both animals", "obj_id": [0, 1], "anno_id": [1, 2]},
    }}}})
    return tmp_path


def test_converter_mevis_masks_and_merge(mevis_root):
    recs = convert_dataset("mevis", str(mevis_root), "train")
    assert [r.expression_id for r in recs] == ["0", "1"]
    single, both = recs
    assert single.mask_existence == (1, 0, 1)  # anno 1 is absent in frame 1
    assert both.mask_existence == (1, 1, 1)  # anno 2 fills frame 1
    np.testing.assert_array_equal(both.decode_mask(2), _mask((1, 1), (1, 2)))  # OR of both annos
    assert both.object_ids == (0, 1) and (single.height, single.width) == (H, W)
    assert single.video_path == os.path.abspath(mevis_root / "train" / "JPEGImages" / "v1")
    assert single.frame_ids == tuple(FRAMES) and single.type_id is None


def test_converter_mevis_without_mask_dict_has_no_ground_truth(mevis_root):
    os.remove(mevis_root / "train" / "mask_dict.json")  # like MeViS `valid`
    recs = convert_dataset("mevis", str(mevis_root), "train")
    assert not recs[0].has_ground_truth and (recs[0].height, recs[0].width) == (H, W)  # size read from the JPEG


def _drop_exp(meta):
    del meta["videos"]["v1"]["expressions"]["1"]["exp"]


@pytest.mark.parametrize(
    "damage, error, fragments",
    [
        (lambda r: _edit_json(r / "train/meta_expressions.json", _drop_exp), ValueError,
         ["meta_expressions.json", "video 'v1'", "expression '1'", "missing key 'exp'"]),
        (lambda r: _edit_json(r / "train/mask_dict.json", lambda d: d["2"].pop()), ValueError,
         ["meta_expressions.json", "expression '1'", "mask_dict.json['2'] has 2 masks but the video has 3 frames"]),
        (lambda r: _edit_json(r / "train/mask_dict.json", lambda d: d["1"].__setitem__(2, {"size": [H, W],
                                                                                             "counts": "41"})),
         ValueError, ["expression '0'", "bad RLE in", "mask_dict.json['1'][2]", "runs cover 5 pixels"]),
        (lambda r: os.remove(r / "train/JPEGImages/v1/00001.jpg"), FileNotFoundError,
         ["meta_expressions.json", "video 'v1'", os.path.join("v1", "00001.jpg"), "1 of 3 frames missing"]),
        (lambda r: _edit_json(r / "train/meta_expressions.json",
                              lambda m: m["videos"]["v1"]["expressions"]["0"].__setitem__("anno_id", [9])),
         ValueError, ["expression '0'", "anno_id 9 not found in", "mask_dict.json"]),
        (lambda r: _json(r / "train/meta_expressions.json", {"vids": {}}), ValueError,
         ["meta_expressions.json", "missing key 'videos'"]),
        (lambda r: (r / "train/mask_dict.json").write_text("{oops"), ValueError,
         ["mask_dict.json", "not valid JSON"]),
    ],
)
def test_converter_mevis_malformed_names_file_and_record(mevis_root, damage, error, fragments):
    damage(mevis_root)
    with pytest.raises(error) as info:
        convert_dataset("mevis", str(mevis_root), "train")
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_converter_limit_and_progress(mevis_root):
    calls = []

    def progress(items, total, desc):
        calls.append((total, desc))
        return items

    recs = convert_dataset("mevis", str(mevis_root), "train", limit=1, progress=progress)
    assert len(recs) == 1 and calls == [(1, "mevis")]  # one video in the fixture


# --------------------------------------------------------------------------------------------------- ReVOS


@pytest.fixture
def revos_root(tmp_path):
    vid = "UVO/all/clip"  # ReVOS video ids contain "/"; frames live at <root>/<vid>/ (no JPEGImages/ here)
    _jpegs(tmp_path / vid, FRAMES)
    _json(tmp_path / "mask_dict.json", {"7": [None, _rle((3, 4)), None]})
    _json(tmp_path / "mask_dict_foreground.json", {vid: {"masks_rle": [_rle((3, 4))] * 3}})
    _json(tmp_path / "meta_expressions_valid_.json", {"videos": {vid: {
        "vid_id": 0, "height": H, "width": W, "frames": FRAMES,
        "expressions": {"0": {"exp": "why", "obj_id": [3], "anno_id": [7], "type_id": 1}}}}})
    return tmp_path


def test_converter_revos_frames_fallback_type_id_and_foreground(revos_root):
    (rec,) = convert_dataset("revos", str(revos_root), "valid")
    assert rec.video_path == os.path.abspath(revos_root / "UVO/all/clip")
    assert rec.type_id == 1 and rec.mask_existence == (0, 1, 0) and rec.object_ids == (3,)
    assert rec.extra == {"foreground": {"file": os.path.abspath(revos_root / "mask_dict_foreground.json"),
                                        "key": "UVO/all/clip"}}


def test_converter_revos_bad_type_id_names_record(revos_root):
    _edit_json(revos_root / "meta_expressions_valid_.json",
               lambda m: m["videos"]["UVO/all/clip"]["expressions"]["0"].__setitem__("type_id", "reasoning"))
    with pytest.raises(ValueError) as info:
        convert_dataset("revos", str(revos_root), "valid")
    assert "meta_expressions_valid_.json: video 'UVO/all/clip', expression '0'" in str(info.value)
    assert "'type_id' must be None or a non-negative int" in str(info.value)


# ------------------------------------------------------------------------------ Ref-YouTube-VOS / Ref-DAVIS17


def _palette_layout(root: Path, split: str) -> None:
    _jpegs(root / split / "JPEGImages" / "v1", FRAMES)
    labels = [np.zeros((H, W)), np.zeros((H, W)), np.zeros((H, W))]
    labels[0][0, 0], labels[0][1, 1] = 1, 2  # frame 0: object 1 at (0,0), object 2 at (1,1)
    labels[2][2, 3] = 2  # frame 2: object 2 only; frame 1: empty
    for f, lab in zip(FRAMES, labels, strict=True):
        _label_png(root / split / "Annotations" / "v1" / f"{f}.png", lab)
    _json(root / "meta_expressions" / split / "meta_expressions.json", {"videos": {"v1": {"frames": FRAMES,
          "expressions": {"0": {"exp": "a dog", "obj_id": "1"}, "1": {"exp": "a cat", "obj_id": "2"}}}}})


@pytest.mark.parametrize("name, split", [("refytvos", "train"), ("refdavis", "valid")])
def test_converter_palette_png_compares_object_ids(tmp_path, name, split):
    _palette_layout(tmp_path, split)
    dog, cat = convert_dataset(name, str(tmp_path), split)
    assert dog.mask_existence == (1, 0, 0) and cat.mask_existence == (1, 0, 1)
    np.testing.assert_array_equal(cat.decode_mask(0), _mask((1, 1)))  # pixel value 2 only
    np.testing.assert_array_equal(cat.decode_mask(2), _mask((2, 3)))
    assert dog.dataset == name and dog.object_ids == (1,)


def test_converter_palette_png_errors(tmp_path):
    _palette_layout(tmp_path, "train")
    ann = tmp_path / "train" / "Annotations" / "v1"
    os.remove(ann / "00001.png")
    with pytest.raises(FileNotFoundError) as info:
        convert_dataset("refytvos", str(tmp_path), "train")
    assert "video 'v1'" in str(info.value) and str(ann / "00001.png") in str(info.value)
    # the documented opt-in: a missing PNG means "target absent"
    dog, _ = convert_dataset("refytvos", str(tmp_path), "train", missing_mask="absent")
    assert dog.mask_existence == (1, 0, 0)
    _label_png(ann / "00001.png", np.ones((H, W)), mode="RGB")
    with pytest.raises(ValueError, match="has image mode 'RGB'"):
        convert_dataset("refytvos", str(tmp_path), "train")
    _edit_json(tmp_path / "meta_expressions/train/meta_expressions.json",
               lambda m: m["videos"]["v1"]["expressions"]["0"].__setitem__("obj_id", "dog"))
    with pytest.raises(ValueError, match=r"video 'v1', expression '0': obj_id 'dog' is not an integer"):
        convert_dataset("refytvos", str(tmp_path), "train")


def test_converter_palette_submission_split_needs_with_masks_false(tmp_path):
    _palette_layout(tmp_path, "valid")
    import shutil

    shutil.rmtree(tmp_path / "valid" / "Annotations")
    with pytest.raises(FileNotFoundError, match="with_masks=False"):
        convert_dataset("refytvos", str(tmp_path), "valid")
    recs = convert_dataset("refytvos", str(tmp_path), "valid", with_masks=False)
    assert [r.has_ground_truth for r in recs] == [False, False]


# --------------------------------------------------------------------------------------------------- ReasonVOS


def _reasonvos_raw(root: Path) -> None:
    _jpegs(root / "JPEGImages" / "v1", FRAMES)
    for obj, pix in ((1, (0, 0)), (2, (3, 4))):
        for t, f in enumerate(FRAMES):
            lab = np.zeros((H, W))
            if t != 1:  # both objects absent in frame 1
                lab[pix] = 255
            _label_png(root / "Annotations" / f"MOSE_v1_{obj}" / f"{f}.png", lab, mode="L")
    _json(root / "meta_expressions.json", {"videos": {"v1": {"source": "MOSE", "frames": FRAMES, "expressions": [
        {"exp_id": 0, "obj_id": 1, "exp_text": "the thing that barks", "is_sent": 1},
        {"exp_id": 0, "obj_id": 2, "exp_text": "duplicate id", "is_sent": 0},
    ]}}})


def test_converter_reasonvos_raw_layout(tmp_path):
    _reasonvos_raw(tmp_path)
    first, dup = convert_dataset("reasonvos", str(tmp_path), "valid")
    assert (first.expression_id, dup.expression_id) == ("0", "0_dup1")  # duplicate exp_id re-numbered
    assert first.mask_existence == (1, 0, 1)
    np.testing.assert_array_equal(dup.decode_mask(2), _mask((3, 4)))
    assert first.extra == {"source": "MOSE", "is_sent": 1} and first.type_id is None


def test_converter_reasonvos_raw_missing_mask_names_file(tmp_path):
    _reasonvos_raw(tmp_path)
    os.remove(tmp_path / "Annotations" / "MOSE_v1_2" / "00002.png")
    with pytest.raises(FileNotFoundError) as info:
        convert_dataset("reasonvos", str(tmp_path), "valid")
    msg = str(info.value)
    assert "meta_expressions.json: video 'v1', expression '0'" in msg and "MOSE_v1_2" in msg


def test_converter_reasonvos_mask_dict_layout_is_auto_detected(tmp_path):
    _jpegs(tmp_path / "JPEGImages" / "v1", FRAMES)
    _json(tmp_path / "mask_dict.json", {"MOSE_v1_1": [_rle((0, 1)), None, None]})
    _json(tmp_path / "meta_expressions_format.json", {"videos": {"v1": {"source": "MOSE", "frames": FRAMES,
          "expressions": {"5": {"exp": "x", "anno_id": "MOSE_v1_1"}}}}})  # scalar anno_id as in the release
    (rec,) = convert_dataset("reasonvos", str(tmp_path), "valid")
    assert rec.expression_id == "5" and rec.object_ids == ("MOSE_v1_1",) and rec.mask_existence == (1, 0, 0)
    assert rec.extra == {"source": "MOSE"}


# --------------------------------------------------------------------------------------------------- Long-RVOS


def _longrvos(root: Path) -> None:
    split = root / "valid"
    _jpegs(split / "JPEGImages" / "v1", FRAMES)
    _label_png(split / "Annotations/v1/1/00000.png", _mask((0, 0)) * 255, mode="L")
    _label_png(split / "Annotations/v1/1/00002.png", _mask((0, 1)) * 255, mode="L")  # no 00001.png: absent
    _label_png(split / "Annotations/v1/2/00001.png", _mask((2, 2)) * 255, mode="L")
    _json(split / "meta_expressions.json", {"videos": {"v1": {"frames": FRAMES, "expressions": {
        "0": {"exp": "a", "obj_id": 1, "type": "static"},
        "1": {"exp": "b", "obj_id": [1, 2], "type": "dynamic"},
    }}}})


def test_converter_longrvos_missing_png_is_absent_and_lists_merge(tmp_path):
    _longrvos(tmp_path)
    one, two = convert_dataset("longrvos", str(tmp_path), "valid")
    assert one.mask_existence == (1, 0, 1) and two.mask_existence == (1, 1, 1)
    np.testing.assert_array_equal(two.decode_mask(1), _mask((2, 2)))
    assert one.extra == {"type": "static"} and two.object_ids == (1, 2)


def test_converter_longrvos_missing_object_folder(tmp_path):
    _longrvos(tmp_path)
    _edit_json(tmp_path / "valid/meta_expressions.json",
               lambda m: m["videos"]["v1"]["expressions"]["0"].__setitem__("obj_id", 5))
    with pytest.raises(FileNotFoundError) as info:
        convert_dataset("longrvos", str(tmp_path), "valid")
    assert "video 'v1', expression '0'" in str(info.value)
    assert os.path.join("Annotations", "v1", "5") in str(info.value)


# --------------------------------------------------------------------------------------------------- GroundMoRe

GM_VID = "clip_0010_0020"  # clip starts at 00:10
GM_FRAMES = [f"frame_{t:06d}" for t in range(6)]


def _groundmore(root: Path) -> None:
    video = root / "annotations" / GM_VID
    _jpegs(video / "images", GM_FRAMES)
    for f in GM_FRAMES:
        lab = np.zeros((H, W))
        lab[0, 0], lab[1, 1] = 1, 2  # object 1 and 2 visible in every mask PNG
        _label_png(video / "masks" / f"{f}.png", lab)
    _json(root / "test_v2.json", {"videos": {GM_VID: {"questions": {"q1": {
        "question": "who kicks the ball?", "answer": "the boy", "obj_id": "1", "q_type": "Causal",
        "action_start": "00:11", "action_end": "00:12"}}}}})


def test_converter_groundmore_action_interval(tmp_path):
    _groundmore(tmp_path)
    (rec,) = convert_dataset("groundmore", str(tmp_path), "test", fps=2)
    # fps 2: start = (11 - 10) * 2 = 2, end = (12 - 10) * 2 - 1 = 3 → GT only in frames 2 and 3
    assert rec.mask_existence == (0, 0, 1, 1, 0, 0)
    np.testing.assert_array_equal(rec.decode_mask(2), _mask((0, 0)))  # pixel value == obj_id 1
    assert rec.extra["action_start_frame"] == 2 and rec.extra["action_end_frame"] == 3
    assert rec.extra["question_type"] == "Causal" and rec.extra["answer"] == "the boy"
    assert rec.frame_ids == tuple(GM_FRAMES) and rec.expression == "who kicks the ball?"


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda q: q.__setitem__("action_start", "11s"), "time '11s' is not of the form [H:]MM:SS"),
        (lambda q: q.pop("obj_id"), "missing key 'obj_id'"),
    ],
)
def test_converter_groundmore_malformed_question(tmp_path, edit, fragment):
    _groundmore(tmp_path)
    _edit_json(tmp_path / "test_v2.json", lambda m: edit(m["videos"][GM_VID]["questions"]["q1"]))
    with pytest.raises(ValueError) as info:
        convert_dataset("groundmore", str(tmp_path), "test")
    assert f"test_v2.json: video '{GM_VID}', expression 'q1'" in str(info.value) and fragment in str(info.value)


def test_converter_groundmore_video_id_without_clip_times(tmp_path):
    _groundmore(tmp_path)
    os.rename(tmp_path / "annotations" / GM_VID, tmp_path / "annotations" / "clip")
    _edit_json(tmp_path / "test_v2.json", lambda m: m["videos"].__setitem__("clip", m["videos"].pop(GM_VID)))
    with pytest.raises(ValueError, match="video id 'clip' does not end with the clip times"):
        convert_dataset("groundmore", str(tmp_path), "test")


# --------------------------------------------------------------------------------------------------- RL JSON


def _rl_root(root: Path) -> Path:
    _jpegs(root / "video_datas" / "revos" / "v1", FRAMES)
    _json(root / "video_datas" / "revos" / "mask_dict.json", {"1": [_rle((0, 0)), None, _rle((2, 2))]})
    return _json(root / "VideoSEG-O3-RL" / "rl_revos_data.json", [
        [{"video_name": "v1", "frames": FRAMES, "exp": "used", "anno_id": [1], "mask_existence": [1, 0, 1]},
         {"video_name": "v1", "frames": FRAMES, "exp": "IGNORED", "anno_id": [1]}],  # only [0] is used
        {"video_name": "v1", "frames": FRAMES, "exp": "cot style", "anno_id": [1], "cot_trace": [{"key_frame": 2}]},
    ])


def test_converter_rl_json_uses_element_zero(tmp_path):
    _rl_root(tmp_path)
    first, second = convert_dataset("videoseg_rl_json", str(tmp_path), dataset_name="revos")
    assert first.expression == "used" and first.expression_id == "0" and first.dataset == "revos"
    assert first.mask_existence == (1, 0, 1) and first.object_ids == (1,)
    assert second.extra == {"source_index": 1, "cot_trace": [{"key_frame": 2}]}


def test_converter_rl_json_existence_mismatch(tmp_path, caplog):
    ann = _rl_root(tmp_path)
    # the masks of entry 0 exist on frames 0 and 2; the JSON says 1,1,1 (frame 1 disagrees)
    _edit_json(ann, lambda d: d[0][0].__setitem__("mask_existence", [1, 1, 1]))
    with caplog.at_level(logging.WARNING):
        first, second = convert_dataset("videoseg_rl_json", str(tmp_path), dataset_name="revos")
    assert first.mask_existence == (1, 1, 1)  # the JSON's flags, as released
    assert first.masks_rle[1] is None and not first.decode_mask(1).any()  # the masks stay the IoU ground truth
    assert second.mask_existence == (1, 0, 1)  # no field: derived from the masks
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "disagrees with the masks in 1 of 2 records (1 frames)" in warning
    assert "entry [0], video 'v1': 'mask_existence' disagrees with the masks at 1 frame(s), first frame 1" in warning
    with pytest.raises(ValueError) as info:
        convert_dataset("videoseg_rl_json", str(tmp_path), dataset_name="revos", strict_existence=True)
    assert "rl_revos_data.json: entry [0], video 'v1'" in str(info.value)
    assert "disagrees with the masks at 1 frame(s), first frame 1" in str(info.value)


def test_converter_rl_json_strict_existence_from_the_command_line(tmp_path):
    from videoseg_o3_verl.data.convert_cli import main

    ann = _rl_root(tmp_path)
    _edit_json(ann, lambda d: d[0][0].__setitem__("mask_existence", [1, 1, 1]))
    args = ["--dataset", "videoseg_rl_json", "--root", str(tmp_path), "--out", str(tmp_path / "rl.parquet"),
            "--opt", "dataset_name=revos"]
    assert main(args) == 0 and read_parquet_records(tmp_path / "rl.parquet")[0].mask_existence == (1, 1, 1)
    with pytest.raises(ValueError, match="strict_existence=True stops on any disagreement"):
        main([*args, "--opt", "strict_existence=true"])
    with pytest.raises(ValueError, match="strict_existence must be true or false, got 'yes'"):
        main([*args, "--opt", "strict_existence=yes"])


def test_converter_rl_json_agreeing_existence_is_silent(tmp_path, caplog):
    _rl_root(tmp_path)
    with caplog.at_level(logging.WARNING):
        first, _ = convert_dataset("videoseg_rl_json", str(tmp_path), dataset_name="revos", strict_existence=True)
    assert first.mask_existence == (1, 0, 1) and not caplog.records


def test_converter_rl_json_missing_key_and_paths(tmp_path):
    ann = _rl_root(tmp_path)
    _edit_json(ann, lambda d: d[1].pop("exp"))
    with pytest.raises(ValueError, match=r"rl_revos_data.json: entry \[1\], video 'v1': missing key 'exp'"):
        convert_dataset("videoseg_rl_json", str(tmp_path), dataset_name="revos")
    with pytest.raises(ValueError, match="has no default paths"):
        convert_dataset("videoseg_rl_json", str(tmp_path), dataset_name="mydata")


# --------------------------------------------------------------------------------------------------- registry


@pytest.fixture
def clean_registry():
    before = dict(CONVERTER_REGISTRY)
    yield
    CONVERTER_REGISTRY.clear()
    CONVERTER_REGISTRY.update(before)


def test_registry_duplicate_registration_different_function(clean_registry):
    def conv_a(root, split="train", **kw):
        return []

    def conv_b(root, split="train", **kw):
        return []

    assert register_converter("test_dup")(conv_a) is conv_a  # the decorator returns the function unchanged
    register_converter("test_dup")(conv_a)  # same object again: allowed
    with pytest.raises(ValueError, match="already registered"):
        register_converter("test_dup")(conv_b)


def test_registry_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as info:
        get_converter("nope")
    for name in ("mevis", "revos", "refytvos", "refdavis", "reasonvos", "longrvos", "groundmore",
                 "videoseg_rl_json", "synthetic"):
        assert name in list_converters() and name in str(info.value)


# --------------------------------------------------------------------------------------------------- CLI


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_dataset_cli_writes_parquet(mevis_root, tmp_path, capsys):
    out = tmp_path / "out" / "mevis.parquet"
    cli = _load_tool("convert_dataset")
    assert cli.main(["--dataset", "mevis", "--root", str(mevis_root), "--split", "train", "--out", str(out),
                     "--opt", "dataset_name=mevis_tiny"]) == 0
    recs = read_parquet_records(out)
    assert recs == convert_dataset("mevis", str(mevis_root), "train", dataset_name="mevis_tiny")
    assert '"records": 2' in capsys.readouterr().out
