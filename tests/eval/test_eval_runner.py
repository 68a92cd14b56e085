# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`run_eval` and `videoseg-o3 eval`: result files, resume, error rows, submission, report, recipe."""

from __future__ import annotations

import argparse
import dataclasses
import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from videoseg_reward.masks import decode_rle_list

from videoseg_o3_verl.cli import main
from videoseg_o3_verl.data.parquet import read_parquet_records, write_parquet
from videoseg_o3_verl.eval.predict import evaluate_record
from videoseg_o3_verl.eval.runner import JOURNAL, EvalConfig, config_from_cli, run_eval

SELECT = ('<think>Step 1 Step 2 Step 3 Action</think><select><VTG>{"start": 1, "end": 4, "keyframe": 2}</VTG>, '
          "<RefSeg>[SEG]</RefSeg></select>")
ANSWER = '<think>ok</think><answer><VTG>{"start": 0, "end": 7, "keyframe": 5}</VTG>, <RefSeg>[SEG]</RefSeg></answer>'


def _mapper(models, seen):
    def run(config, records):
        for record in records:
            seen.append((record.video_id, record.expression_id))
            yield {"video": record.video_id, "expression_id": record.expression_id,
                   **evaluate_record(models, record, config.dataset)}
    return run


def _config(tiny_paths, data, out, **kw):
    model, sam2 = tiny_paths
    return EvalConfig(model=model, sam2=sam2, data=data, output_dir=str(out), **kw)


def test_run_eval_files_resume_and_error_rows(scripted, tiny_paths, synthetic_parquet, tmp_path):
    models = scripted([SELECT, ANSWER])
    records = read_parquet_records(synthetic_parquet)[:3]
    bad = dataclasses.replace(records[1], video_path=str(tmp_path / "missing_video"))
    data = write_parquet([records[0], bad, records[2]], tmp_path / "data.parquet")
    out = tmp_path / "out"
    seen: list = []
    metrics = run_eval(_config(tiny_paths, data, out, limit=2, report_videos=1), mapper=_mapper(models, seen))
    assert len(seen) == 2 and metrics["num_errors"] == 1 and metrics["num_scored"] == 1
    assert "missing_video" in metrics["errors"][0] and bad.name in metrics["errors"][0]
    with pytest.raises(FileExistsError, match="--resume"):
        run_eval(_config(tiny_paths, data, out), mapper=_mapper(models, seen))
    with pytest.raises(ValueError, match="released_inputs: True -> False"):  # rows of two protocols never mix
        run_eval(_config(tiny_paths, data, out, resume=True, released_inputs=False), mapper=_mapper(models, seen))
    seen.clear()
    metrics = run_eval(_config(tiny_paths, data, out, resume=True, submit=True), mapper=_mapper(models, seen))
    assert seen == [(records[2].video_id, records[2].expression_id)]  # finished expressions are skipped
    assert metrics["num_evaluated"] == 3 and metrics["num_errors"] == 1 and metrics["num_scored"] == 2
    assert len((out / JOURNAL).read_text().splitlines()) == 3

    results = json.loads((out / "results.json").read_text())
    entry = results[records[0].video_id][records[0].expression_id]
    assert set(entry) >= {"prediction_masks", "text_prediction", "num_rounds", "keyframe_index", "frames"}
    assert entry["num_rounds"] == 2 and entry["keyframe_index"] == 2 and entry["text_prediction"].startswith(
        "<think>ok</think><answer>")
    assert decode_rle_list(entry["prediction_masks"]).shape == (8, 64, 96)
    assert entry["frames"] == list(records[0].frame_ids)
    assert "error" in results[bad.video_id][bad.expression_id]
    # the table is the benchmark scorer's over the scored rows, in percent
    rows = [json.loads(line)["score"] for line in (out / JOURNAL).read_text().splitlines()]
    j = [r["J"] for r in rows if r]
    assert metrics["table"]["J"] == pytest.approx(round(100 * float(np.mean(j)), 2))
    assert json.loads((out / "metrics.json").read_text()) == metrics

    log = [json.loads(line) for line in (out / "conversations.jsonl").read_text().splitlines()]
    assert [t["kind"] for t in log[0]["turns"]] == ["select", "answer"]
    assert log[0]["turns"][0]["shown_low_res"] == [1, 2, 3, 4] and log[0]["turns"][0]["shown_keyframe"] == 2
    assert log[1]["error"] and log[0]["expression"] == records[0].expression

    page = (out / "report.html").read_text()
    assert records[0].expression in page and "&lt;select&gt;" in page and "frame 2 (keyframe)" in page
    assert page.count("<img") >= 8 + 8 + 5 + 4  # turn 0 frames, turn 1 frames, overlays

    png = out / "Annotations" / records[0].video_id / records[0].expression_id / f"{records[0].frame_ids[2]}.png"
    values = np.asarray(Image.open(png))
    assert set(np.unique(values)) <= {0, 255}
    assert np.array_equal(values > 0, decode_rle_list(entry["prediction_masks"])[2])
    names = zipfile.ZipFile(out / "submission.zip").namelist()
    assert len(names) == 3 * 8 and f"Annotations/{bad.video_id}/{bad.expression_id}/{bad.frame_ids[0]}.png" in names


def test_cli_eval_on_synthetic_with_tiny_models(tiny_paths, synthetic_parquet, tmp_path):
    model, sam2 = tiny_paths
    out = tmp_path / "cli"
    code = main(["eval", "--model", model, "--sam2", sam2, "--data", synthetic_parquet, "--output-dir", str(out),
                 "--limit", "2", "--device", "cpu"])
    assert code == 0
    for name in ("results.json", "metrics.json", "conversations.jsonl", "report.html", JOURNAL):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_evaluated"] == 2 and metrics["dataset"] == "synthetic"
    assert set(metrics["table"]) >= {"J", "F", "J&F"}
    results = json.loads((out / "results.json").read_text())
    assert sum(len(v) for v in results.values()) == 2


def test_recipe_and_flags_make_the_config(tiny_paths, synthetic_parquet, tmp_path):
    model, sam2 = tiny_paths
    args = argparse.Namespace(config_name="eval_tiny_cpu", config_path=None, overrides=["eval.limit=1"],
                              model=model, sam2=sam2, data=synthetic_parquet, output_dir=str(tmp_path), seg_head=None,
                              dataset=None, limit=None, backend=None, resume=None, submit=True, num_workers=None,
                              device=None, dtype=None, clean_inputs=True)
    config = config_from_cli(args)
    assert (config.limit, config.submit, config.released_inputs, config.device) == (1, True, False, "cpu")
    with pytest.raises(SystemExit, match="--model"):
        config_from_cli(argparse.Namespace(**{**vars(args), "model": None}))
    with pytest.raises(ValueError, match="unknown key"):
        config_from_cli(argparse.Namespace(**{**vars(args), "overrides": ["+eval.bogus=1"]}))
    with pytest.raises(FileNotFoundError, match="sam2"):
        EvalConfig(model=model, sam2=str(tmp_path / "x.pt"), data=synthetic_parquet, output_dir=str(tmp_path))


@pytest.mark.parametrize(("name", "workers", "dtype"),
                         [("eval_tiny_cpu", 0, "float32"), ("eval_qwen3vl", -1, "bfloat16")])
def test_eval_recipes_compose_to_valid_configs(name, workers, dtype, tiny_paths, synthetic_parquet, tmp_path):
    model, sam2 = tiny_paths
    args = argparse.Namespace(config_name=name, config_path=None, overrides=[], model=model, sam2=sam2,
                              data=synthetic_parquet, output_dir=str(tmp_path), seg_head=None, dataset=None,
                              limit=None, backend=None, resume=None, submit=None, num_workers=None, device=None,
                              dtype=None, clean_inputs=None)
    config = config_from_cli(args)
    assert (config.num_workers, config.dtype, config.released_inputs, config.backend) == (workers, dtype, True, "hf")


def test_backend_vllm_without_vllm_names_the_fix(tiny_paths, synthetic_parquet, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)  # vLLM not importable, whatever the venv
    model, sam2 = tiny_paths
    args = ["eval", "--model", model, "--sam2", sam2, "--data", synthetic_parquet, "--output-dir",
            str(tmp_path / "out"), "--limit", "1", "--backend", "vllm", "--device", "cpu"]
    with pytest.raises(ImportError, match=r"--backend vllm needs vLLM.*setup_vllm_venv\.sh.*--backend hf"):
        main(args)
    assert not (tmp_path / "out" / JOURNAL).exists()
    with pytest.raises(ValueError, match="backend 'vllm' runs one engine in this process: set num_workers to 0"):
        _config(tiny_paths, synthetic_parquet, tmp_path / "w", backend="vllm", num_workers=2)
