# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The HTTP app over a real socket on 127.0.0.1 (uvicorn in a background thread) and `RewardClient`."""

from __future__ import annotations

import os

import httpx
import numpy as np
import pytest
import uvicorn
from _loopback import LoopbackServer
from videoseg_reward import __version__
from videoseg_reward.app import ServiceSettings, build_app, main
from videoseg_reward.client import RewardClient, RewardServiceError
from videoseg_reward.masks import encode_mask, encode_masks
from videoseg_reward.schemas import Prompts
from videoseg_reward.scorer import Sam2Scorer

FRAMES = [0, 3, 5]
KEYFRAME = 3


@pytest.fixture(scope="module")
def server(shared_scorer, video_root):
    settings = ServiceSettings(video_roots=(str(video_root),), max_body_bytes=256 * 1024, max_frames=6,
                               max_prompts=3)
    srv = LoopbackServer(build_app(shared_scorer, settings))
    yield srv
    srv.close()


@pytest.fixture()
def client(server):
    with RewardClient(server.url, timeout=60) as c:
        yield c


def _embeddings(n=2):
    return Prompts.from_embeddings(np.random.default_rng(3).normal(size=(n, 256)).astype(np.float32))


def _segment_body(path, **extra):
    body = {"video": {"path": str(path)}, "prompts": {"type": "box", "boxes": [[8, 16, 40, 40]]}, "mode": "image",
            "keyframe": KEYFRAME, "frame_indices": FRAMES}
    return {**body, **extra}


def test_app_health_and_version(client, shared_scorer):
    assert client.health() == {"status": "ok", "device": "cpu"}
    assert client.version() == {"package": __version__, "model_version": shared_scorer.version, "image_size": 256,
                                "queue_depth": 0}


def test_app_segment_matches_scorer(client, shared_scorer, video_root):
    prompts = _embeddings()
    remote = client.segment(video_root / "clip", prompts, "propagate", KEYFRAME, FRAMES, inject_per_frame=True)
    local = shared_scorer.segment(video_root / "clip", prompts, "propagate", KEYFRAME, FRAMES, inject_per_frame=True)
    assert remote.masks.shape == (2, len(FRAMES), 64, 80)
    np.testing.assert_array_equal(remote.masks, local.masks)
    np.testing.assert_array_equal(remote.keyframe_masks, local.keyframe_masks)
    assert (remote.frame_indices, remote.keyframe, remote.model_version) == (tuple(FRAMES), KEYFRAME, 0)


def test_app_score_matches_scorer(client, shared_scorer, video_root, gt_masks):
    prompts = Prompts.from_masks(gt_masks[KEYFRAME][None])
    gt = gt_masks[FRAMES]
    remote = client.score(video_root / "clip", prompts, "image", KEYFRAME, gt, FRAMES, request_id="r-1")
    local = shared_scorer.score(video_root / "clip", prompts, "image", KEYFRAME, gt, FRAMES)
    assert remote.pop("request_id") == "r-1"
    assert remote == local                      # floats survive JSON exactly
    assert remote["keyframe_iou"] > 0.95        # the mask prompt is the keyframe answer


def test_app_rejects_oversize_body_with_413(server):
    big = b"{" + b" " * 300_000 + b"}"          # 300 kB > 256 KiB limit
    r = httpx.post(f"{server.url}/segment", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "exceeds the limit" in r.json()["detail"]
    # without Content-Length (chunked upload) the limit is enforced while streaming
    r = httpx.post(f"{server.url}/score", content=iter([b" " * 100_000] * 3),
                   headers={"content-type": "application/json"})
    assert r.status_code == 413 and "exceeds the limit" in r.json()["detail"]


def test_app_rejects_paths_outside_roots_with_403(server, video_root, tmp_path):
    outside = tmp_path / "outside_clip"
    outside.mkdir()
    link = video_root / "escape_link"
    if not link.exists():
        os.symlink(outside, link)
    for path in (outside, video_root / ".." / outside.name, "../" + outside.name, link, "/etc"):
        r = httpx.post(f"{server.url}/segment", json=_segment_body(path))
        assert r.status_code == 403, path
        assert "outside the allowed roots" in r.json()["detail"]
    r = httpx.post(f"{server.url}/segment", json=_segment_body(video_root / "missing"))
    assert r.status_code == 404 and "does not exist" in r.json()["detail"]


@pytest.mark.parametrize(("change", "status", "detail"), [
    ({"gt_masks": [{"size": [64, 80], "counts": "4h"}] * 3}, 422, "gt_masks[0]: 'counts' string is truncated"),
    ({"gt_masks": [{"size": [64, 80], "counts": [5, 5]}] * 3}, 422, "runs cover 10 pixels"),
    ({"gt_masks": [{"size": [64, 81], "counts": [64 * 81]}] * 3}, 422, "does not match the expected size [64, 80]"),
    ({"gt_masks": [{"counts": "0"}] * 3}, 422, "needs both 'size' and 'counts'"),
    ({"gt_masks": [None, None]}, 422, "gt_masks: expected a list of 3 per-frame RLEs"),  # 2 frames for 3
    ({"gt_masks": [{"size": [64, 80], "counts": [5120]}] * 1000}, 422, "got 1000"),  # rejected before decoding
    ({"prompts": {"type": "mask", "masks": [{"size": [64, 80], "counts": "x"}]}}, 422, "prompts.masks[0]"),
    ({"prompts": {"type": "mask", "masks": [encode_mask(np.ones((8, 8)))]}}, 422,
     "prompts.masks[0]: RLE size [8, 8] does not match the expected size [64, 80]"),
    ({"mode": "video"}, 422, "mode: expected one of ['image', 'propagate', 'propagate_language']"),
    ({"keyframe": 99}, 422, "keyframe"),
    ({"frame_indices": None}, 422, "request covers 8 frames; the limit is 6"),
    ({"prompts": {"type": "box", "boxes": [[0, 0, 5, 5]] * 4}}, 422, "4 prompts in one request; the limit is 3"),
    ({"video": {"path": "clip", "frame_ids": ["../../etc"]}}, 422, "plain file name"),
])
def test_app_rejects_malformed_requests_with_clear_4xx(server, video_root, gt_masks, change, status, detail):
    body = {**_segment_body(video_root / "clip"), "gt_masks": encode_masks(gt_masks[FRAMES]), **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = httpx.post(f"{server.url}/score", json=body)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000])
def test_app_rejects_invalid_json_with_400(server, body):
    # broken syntax, bytes that are not UTF-8, and nesting deep enough to exhaust the parser's recursion
    r = httpx.post(f"{server.url}/segment", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]


def test_client_raises_with_server_status_and_detail(client, video_root):
    with pytest.raises(RewardServiceError) as info:
        client.segment(video_root / "clip", _embeddings(1), "image", 42, FRAMES)
    assert info.value.status == 422 and "keyframe" in info.value.detail and "POST /segment" in str(info.value)


def test_app_decoder_weights_disabled_by_default(client, shared_scorer):
    with pytest.raises(RewardServiceError) as info:
        client.update_decoder_weights(shared_scorer.decoder_state_dict(), 1)
    assert info.value.status == 403 and "disabled" in info.value.detail


def test_app_decoder_weights_update_and_validation(sam2_checkpoint, video_root):
    scorer = Sam2Scorer(sam2_checkpoint, device="cpu", video_roots=[video_root])
    srv = LoopbackServer(build_app(scorer, ServiceSettings(video_roots=(str(video_root),), allow_decoder_updates=True)))
    try:
        with RewardClient(srv.url) as client:
            weights = scorer.decoder_state_dict()
            before = client.segment("clip", _embeddings(1), "image", KEYFRAME, FRAMES)
            changed = {k: v * 2 for k, v in weights.items() if "output_upscaling" in k}
            assert client.update_decoder_weights(changed, 3) == 3
            assert client.version()["model_version"] == 3
            after = client.segment("clip", _embeddings(1), "image", KEYFRAME, FRAMES)
            assert after.model_version == 3 and not np.array_equal(before.masks, after.masks)
            for sd, version, detail in [(changed, 3, "not newer"), ({"image_encoder.x": np.zeros(1)}, 4, "only keys")]:
                with pytest.raises(RewardServiceError) as info:
                    client.update_decoder_weights(sd, version)
                assert info.value.status == 422 and detail in info.value.detail
        r = httpx.post(f"{srv.url}/decoder_weights", params={"version": 9}, content=b"garbage",
                       headers={"content-type": "application/octet-stream"})
        assert r.status_code == 422 and "not a torch.save'd state dict" in r.json()["detail"]
    finally:
        srv.close()


def test_app_request_timeout_gives_504(shared_scorer, video_root):
    settings = ServiceSettings(video_roots=(str(video_root),), request_timeout_s=1e-4)
    srv = LoopbackServer(build_app(shared_scorer, settings))
    try:
        r = httpx.post(f"{srv.url}/segment", json=_segment_body("clip", mode="propagate", frame_indices=None))
        assert r.status_code == 504 and "time limit" in r.json()["detail"]
    finally:
        srv.close()


def test_main_starts_uvicorn_on_loopback(monkeypatch, sam2_checkpoint, video_root):
    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    assert main(["--checkpoint", str(sam2_checkpoint), "--video-root", str(video_root), "--port", "8123",
                 "--max-body-mb", "0.5", "--device", "cpu"]) == 0
    assert (calls["host"], calls["port"]) == ("127.0.0.1", 8123)
    assert {"/segment", "/score", "/health", "/version", "/decoder_weights"} <= {r.path for r in calls["app"].routes}
    with pytest.raises(SystemExit):                               # --video-root is required
        main(["--checkpoint", str(sam2_checkpoint)])
