# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""RLE helpers, RVOSRecord validation and the verl parquet row contract (including verl's RLHFDataset)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from videoseg_o3_verl.data.parquet import (
    AGENT_NAME,
    read_parquet_records,
    record_from_extra_info,
    record_to_row,
    split_by_video,
    write_parquet,
)
from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.data.rle import (
    decode_rle,
    encode_mask,
    merge_rles,
    normalize_rle,
    rle_area,
)
from videoseg_o3_verl.env.prompts import SEG_COT_SYS, SEG_COT_TEMPORAL_TEMPLATE

H, W = 4, 5


def _mask(*pixels: tuple[int, int]) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def _record(**overrides) -> RVOSRecord:
    """A valid 3-frame record: target at (0,0) in frame 0, absent in frame 1, at (1,1)+(2,2) in frame 2."""
    fields = dict(
        dataset="ds",
        video_id="vid",
        video_path="/data/vid",
        frame_ids=("00000", "00001", "00002"),
        num_frames=3,
        expression="the red square",
        expression_id="e0",
        object_ids=(1,),
        mask_existence=(1, 0, 1),
        masks_rle=(encode_mask(_mask((0, 0))), None, encode_mask(_mask((1, 1), (2, 2)))),
        type_id=0,
        height=H,
        width=W,
        extra={"note": "x"},
    )
    fields.update(overrides)
    return RVOSRecord(**fields)


# ------------------------------------------------------------------------------------------------ RLE


@pytest.mark.parametrize(
    "mask",
    [
        _mask(),  # empty
        _mask((0, 0)),  # first pixel: counts start with a 0-length background run
        _mask((3, 4)),  # last pixel
        np.ones((H, W), dtype=bool),  # full
        _mask((1, 1), (1, 2), (2, 1)),  # L-shape
    ],
)
def test_rle_encode_decode_roundtrip(mask):
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [H, W]
    np.testing.assert_array_equal(decode_rle(rle), mask)
    assert rle_area(rle) == int(mask.sum())


def test_rle_runs_parser_agrees_with_pycocotools():
    from videoseg_reward.masks import rle_counts  # the one RLE validator the data helpers use

    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = rng.integers(1, 60, size=2)
        m = rng.random((h, w)) < rng.random()
        counts = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"]
        _, runs = rle_counts({"size": [int(h), int(w)], "counts": counts})
        # rebuild the column-major mask from the alternating runs (first run is background)
        flat = np.repeat(np.arange(len(runs)) % 2, runs).astype(bool)
        np.testing.assert_array_equal(flat.reshape(w, h).T, m)


def test_rle_data_helpers_enforce_the_reward_pixel_limit():
    from videoseg_reward.masks import MAX_RLE_PIXELS

    side = 8193  # 8193 x 8193 > 8192 x 8192: one 16-byte counts string would allocate 67 MB when decoded
    huge = {"size": [side, side], "counts": [side * side]}
    assert side * side > MAX_RLE_PIXELS
    for helper in (normalize_rle, rle_area, decode_rle):
        with pytest.raises(ValueError, match="exceeds the limit"):
            helper(huge)


def test_rle_normalize_accepts_bytes_and_uncompressed_lists():
    target = _mask((1, 0))  # column-major index 1: runs [1 background, 1 foreground, 18 background]
    expected = encode_mask(target)
    by_bytes = normalize_rle({"size": [H, W], "counts": expected["counts"].encode("ascii")})
    by_list = normalize_rle({"size": [H, W], "counts": [1, 1, 18]})
    assert by_bytes == expected and by_list == expected


@pytest.mark.parametrize(
    "rle, error, fragment",
    [
        ({"counts": "5"}, ValueError, "needs both 'size' and 'counts'"),
        ({"size": [H, W]}, ValueError, "needs both 'size' and 'counts'"),
        ({"size": [H], "counts": "5"}, ValueError, "'size' must be [H, W]"),
        ({"size": [H, W], "counts": "4~"}, ValueError, "invalid character '~'"),  # '~' = ASCII 126 > 111
        ({"size": [H, W], "counts": "4W"}, ValueError, "truncated"),  # 'W' - 48 = 39 has the 0x20 bit
        ({"size": [H, W], "counts": "41"}, ValueError, "runs cover 5 pixels but size 4x5 has 20"),
        ({"size": [H, W], "counts": [25, -5]}, ValueError, "negative run"),
        ({"size": [H, W], "counts": 7}, ValueError, "must be a string or a list of integers"),
        ({"size": [H, W], "counts": "4\u00e9"}, ValueError, "invalid character 'é' at 1"),
        ("not a dict", TypeError, "must be a dict"),
    ],
)
def test_rle_normalize_rejects_malformed(rle, error, fragment):
    with pytest.raises(error) as info:
        normalize_rle(rle)
    assert fragment in str(info.value)


def test_rle_decode_list_is_union_of_masks():
    # a list of several objects' masks decodes to their union (docs/method.md, "Data")
    a, b = _mask((0, 0), (1, 1)), _mask((1, 1), (3, 4))
    np.testing.assert_array_equal(decode_rle([encode_mask(a), encode_mask(b)]), a | b)


def test_rle_merge_is_or_and_none_means_absent():
    a, b = _mask((0, 1)), _mask((2, 3))
    merged = merge_rles([encode_mask(a), None, encode_mask(b)])
    np.testing.assert_array_equal(decode_rle(merged), a | b)
    assert merge_rles([None, None]) is None
    assert merge_rles([encode_mask(_mask())]) is None  # an all-background mask is "absent"


def test_rle_merge_rejects_different_sizes():
    with pytest.raises(ValueError, match="different sizes"):
        merge_rles([encode_mask(_mask((0, 0))), encode_mask(np.ones((2, 2), dtype=bool))])


# ------------------------------------------------------------------------------------------------ records


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"frame_ids": ("a", "b")}, "'frame_ids' has 2 entries but num_frames is 3"),
        ({"mask_existence": (1, 0)}, "'mask_existence' has 2 entries but num_frames is 3"),
        ({"mask_existence": (1, 2, 1)}, "'mask_existence'[1] must be 0 or 1"),
        ({"masks_rle": (encode_mask(np.ones((2, 2), dtype=bool)), None, None), "mask_existence": (1, 0, 0)},
         "RLE size [2, 2] differs"),
        ({"mask_existence": (), "masks_rle": (None, None, None)}, "'mask_existence' has 0 entries"),
        ({"type_id": -1}, "'type_id' must be None or a non-negative int"),
        ({"object_ids": ()}, "'object_ids' is empty"),
        ({"num_frames": 0, "frame_ids": ()}, "'num_frames' must be a positive int"),
        ({"extra": {"bad": {1, 2}}}, "'extra' must be JSON-serialisable"),
    ],
)
def test_record_validation_names_the_record(overrides, fragment):
    with pytest.raises(ValueError) as info:
        _record(**overrides)
    assert "RVOSRecord ds/vid/e0" in str(info.value)
    assert fragment in str(info.value)


def test_record_normalises_lists_and_bytes_counts():
    rle = encode_mask(_mask((0, 0)))
    rec = _record(frame_ids=["a", "b", "c"], mask_existence=[1, 0, 0],
                  masks_rle=[{"size": [H, W], "counts": rle["counts"].encode()}, None, None])
    assert isinstance(rec.frame_ids, tuple) and isinstance(rec.mask_existence, tuple)
    assert rec.masks_rle[0] == rle  # bytes counts stored as str


def test_record_decode_mask_present_absent_and_range():
    rec = _record()
    np.testing.assert_array_equal(rec.decode_mask(0), _mask((0, 0)))
    np.testing.assert_array_equal(rec.decode_mask(1), _mask())  # None → all False
    assert rec.decode_masks().shape == (3, H, W)
    with pytest.raises(ValueError, match="frame_index 3 out of range"):
        rec.decode_mask(3)


def test_record_without_ground_truth():
    rec = _record(mask_existence=(), masks_rle=())
    assert not rec.has_ground_truth
    with pytest.raises(ValueError, match="no ground-truth masks"):
        rec.decode_mask(0)


def test_record_existence_may_disagree_with_the_masks():
    # the authors' RL JSON carries its own existence flags; the masks stay the IoU ground truth
    rec = _record(mask_existence=(0, 1, 1))  # frame 0 has a mask but is flagged absent, frame 1 flagged without one
    assert rec.mask_existence == (0, 1, 1) and rec.masks_rle[1] is None
    assert rec.decode_mask(0).any() and not rec.decode_mask(1).any()


def test_record_check_masks_finds_empty_and_malformed_rles():
    empty = encode_mask(_mask())  # valid RLE, but no foreground (an empty frame must be None)
    with pytest.raises(ValueError, match="frame 0: the RLE has no foreground pixel"):
        _record(masks_rle=(empty, None, encode_mask(_mask((1, 1))))).check_masks()
    broken = {"size": [H, W], "counts": "41"}
    with pytest.raises(ValueError, match="frame 0: malformed RLE"):
        _record(masks_rle=(broken, None, encode_mask(_mask((1, 1))))).check_masks()


def test_record_payload_json_roundtrip_is_lossless():
    rec = _record(object_ids=(3, "a7"), type_id=None)
    assert RVOSRecord.from_json(rec.to_json()) == rec
    payload = rec.to_payload()
    payload["masks_rle"][0]["counts"] = "changed"  # editing the payload must not edit the record
    assert rec.masks_rle[0]["counts"] != "changed"
    assert RVOSRecord.from_row(rec.to_row(5)) == rec


def test_record_from_payload_rejects_missing_keys_and_versions():
    payload = _record().to_payload()
    del payload["height"]
    with pytest.raises(ValueError, match=r"payload ds/vid/e0: missing key\(s\) \['height'\]"):
        RVOSRecord.from_payload(payload)
    with pytest.raises(ValueError, match="version 99 is not supported"):
        RVOSRecord.from_payload({**_record().to_payload(), "version": 99})


# ------------------------------------------------------------------------------------------------ parquet


def test_parquet_row_schema():
    rec = _record()
    row = record_to_row(rec, 7)
    assert row["data_source"] == "ds" and row["agent_name"] == AGENT_NAME == "videoseg_o3"
    assert row["ability"] == "rvos"
    assert row["prompt"] == [
        {"role": "system", "content": SEG_COT_SYS},
        {"role": "user", "content": SEG_COT_TEMPORAL_TEMPLATE.format(question="the red square", total_frames=3)},
    ]
    assert row["reward_model"] == {"style": "rule", "ground_truth": "e0"}
    assert row["extra_info"]["index"] == 7
    assert isinstance(row["extra_info"]["videoseg"], str)  # one JSON string, not nested lists
    assert record_from_extra_info(row["extra_info"]) == rec


def test_parquet_record_from_extra_info_errors():
    with pytest.raises(ValueError, match="has no 'videoseg' entry"):
        record_from_extra_info({"index": 3})
    with pytest.raises(ValueError, match="not valid JSON"):
        record_from_extra_info({"index": 3, "videoseg": "{"})


def _records(n_videos: int, per_video: int) -> list[RVOSRecord]:
    return [_record(video_id=f"v{v}", expression_id=f"e{e}") for v in range(n_videos) for e in range(per_video)]


def test_parquet_write_read_roundtrip_and_shuffle(tmp_path):
    records = _records(3, 2)
    plain = read_parquet_records(write_parquet(records, tmp_path / "a.parquet"))
    assert plain == records
    shuffled_path = write_parquet(records, tmp_path / "b.parquet", shuffle_seed=1)
    shuffled = read_parquet_records(shuffled_path)
    # same rows in the permutation np.random.default_rng(1) draws for 6 rows
    order = np.random.default_rng(1).permutation(6).tolist()
    assert shuffled == [records[j] for j in order]
    import pandas as pd

    indices = [e["index"] for e in pd.read_parquet(shuffled_path)["extra_info"]]
    assert indices == list(range(6))  # index = row position after the shuffle


def test_parquet_write_rejects_empty_and_bad_suffix(tmp_path):
    with pytest.raises(ValueError, match="no records"):
        write_parquet([], tmp_path / "a.parquet")
    with pytest.raises(ValueError, match="must end with '.parquet'"):
        write_parquet(_records(1, 1), tmp_path / "a.json")


def test_parquet_split_by_video_keeps_videos_whole():
    records = _records(10, 3)
    train, val = split_by_video(records, 0.2, seed=0)
    # round(0.2 * 10 videos) = 2 validation videos of 3 records each
    assert len(val) == 6 and len(train) == 24
    assert not {r.video_id for r in train} & {r.video_id for r in val}
    with pytest.raises(ValueError, match="at least 2 videos"):
        split_by_video(_records(1, 3), 0.5)


def test_parquet_is_readable_by_verl_rlhf_dataset(tmp_path, monkeypatch):
    """verl's RLHFDataset loads our parquet and hands our extra_info back intact."""
    datasets = pytest.importorskip("datasets")
    omegaconf = pytest.importorskip("omegaconf")
    rl_dataset = pytest.importorskip("verl.utils.dataset.rl_dataset")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    records = [_record(video_id="v0", masks_rle=(None, None, None), mask_existence=(0, 0, 0)),
               _record(video_id="v1", object_ids=(1, 2), type_id=None)]
    path = write_parquet(records, tmp_path / "train.parquet")
    # filter_overlong_prompts=False: no tokenizer is needed (tokenizer=None is never touched)
    config = omegaconf.OmegaConf.create(
        {"prompt_key": "prompt", "filter_overlong_prompts": False, "cache_dir": str(tmp_path / "verl_cache")}
    )
    ds = rl_dataset.RLHFDataset(path, tokenizer=None, config=config)
    assert len(ds) == 2
    for i, rec in enumerate(records):
        item = ds[i]
        assert item["agent_name"] == "videoseg_o3" and item["data_source"] == "ds"
        assert item["index"] == i
        assert item["extra_info"]["videoseg"] == rec.to_json()
        assert record_from_extra_info(item["extra_info"]) == rec
        assert item["raw_prompt"][1]["content"] == SEG_COT_TEMPORAL_TEMPLATE.format(
            question=rec.expression, total_frames=rec.num_frames)


def test_record_replace_revalidates():
    rec = _record()
    with pytest.raises(ValueError, match="num_frames is 4"):
        dataclasses.replace(rec, num_frames=4)
    assert json.loads(rec.to_json())["version"] == 1
