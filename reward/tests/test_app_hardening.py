# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The HTTP service under hostile input, slow requests, disconnects, overload and unauthenticated callers.

Every server here listens on 127.0.0.1 only. Each test names the defect it guards against.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch
from _loopback import LoopbackServer
from videoseg_reward.app import ServiceSettings, build_app, main, redact_paths
from videoseg_reward.client import RewardClient
from videoseg_reward.masks import encode_masks
from videoseg_reward.schemas import Prompts
from videoseg_reward.scorer import MAX_VERSION_AHEAD, Sam2Scorer

FRAMES = [0, 3, 5]
TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory, video, video_tools):
    """A video root with a good clip, a long clip, broken videos and a folder whose frame escapes the root."""
    root = tmp_path_factory.mktemp("hostile_root")
    video_tools.write_frames(root / "clip", video)
    video_tools.write_frames(root / "long", video_tools.make_video(40))
    outside = tmp_path_factory.mktemp("outside")
    video_tools.write_frames(outside / "secret", video[:1])
    escape = video_tools.write_frames(root / "escape", video[:3])
    os.remove(escape / "00001.png")
    os.symlink(outside / "secret" / "00000.png", escape / "00001.png")  # a frame file pointing outside the root
    bad = root / "bad"
    bad.mkdir()
    good_mp4 = _write_mp4(bad / "good.mp4", video)
    data = good_mp4.read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (bad / "header_only.mp4").write_bytes(data[:100])
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "text.mp4").write_text("this is not a video\n" * 20)
    (bad / "frames").mkdir()
    (bad / "frames" / "00000.png").write_text("not a png")
    return root


def _write_mp4(path, frames):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def scorer(sam2_checkpoint, hostile_root):
    return Sam2Scorer(sam2_checkpoint, device="cpu", video_roots=[hostile_root])


@pytest.fixture(scope="module")
def server(scorer, hostile_root):
    settings = ServiceSettings(video_roots=(str(hostile_root),), max_body_bytes=1 << 20, max_frames=6,
                               max_video_frames=100, max_prompts=16)
    with LoopbackServer(build_app(scorer, settings)) as srv:
        yield srv


def _body(path, **extra):
    body = {"video": {"path": str(path)}, "prompts": {"type": "box", "boxes": [[8, 16, 40, 40]]}, "mode": "image",
            "keyframe": 3, "frame_indices": FRAMES}
    return {**body, **extra}


def _post(url, body, path="/segment", **kw):
    return httpx.post(f"{url}{path}", content=json.dumps(body), timeout=kw.pop("timeout", 60),
                      headers={"content-type": "application/json", **kw.pop("headers", {})}, **kw)


def _assert_no_server_path(detail, *roots):
    for root in roots:
        assert str(root) not in detail and os.path.realpath(root) not in detail, detail
    assert "/tmp" not in detail, detail


# ---------------------------------------------------------------------------------------------------------------
# 1-3: paths, sizes, broken files
# ---------------------------------------------------------------------------------------------------------------


def test_symlinked_frame_file_outside_the_roots_is_refused(server, hostile_root):
    # defect: only the folder was checked; its frame 00001.png is a symlink to a file outside every root
    r = _post(server.url, _body("escape", keyframe=0, frame_indices=[0, 1]))
    assert r.status_code == 403, r.text
    assert "frame file '00001.png' resolves outside the allowed roots" in r.json()["detail"]
    _assert_no_server_path(r.json()["detail"], hostile_root)


def test_huge_mask_prompts_are_refused_before_decoding(server):
    # 16 mask prompts of 8192 x 8192 (a body under 1 kB) used to allocate ~1 GB each before the size check
    huge = {"size": [8192, 8192], "counts": [8192 * 8192]}
    t0 = time.monotonic()
    r = _post(server.url, _body("clip", prompts={"type": "mask", "masks": [huge] * 16}))
    assert r.status_code == 422
    assert r.json()["detail"] == "prompts.masks[0]: RLE size [8192, 8192] does not match the expected size [64, 80]"
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize(("change", "detail"), [
    ({"video": {"path": "clip", "frame_ids": ["00000"] * 101}}, "video.frame_ids: 101 frames; the limit is 100"),
    ({"frame_indices": list(range(7))}, "frame_indices: 7 frames; the limit is 6"),
    ({"frame_indices": [0], "keyframe": 0, "video": {"path": "clip", "frame_ids": ["x"] * 5000}},
     "video.frame_ids: 5000 frames; the limit is 100"),
])
def test_frame_limits_cannot_be_bypassed(server, change, detail):
    # defect: 1 M frame_ids with frame_indices=[0] passed the frame limit and were stat'ed one by one
    r = _post(server.url, {**_body("clip"), **change})
    assert r.status_code == 422 and r.json()["detail"] == detail


def test_parsing_and_probing_run_off_the_event_loop(scorer, hostile_root, monkeypatch):
    # defect: probing a video blocked the event loop, so /health stalled behind a slow request
    slow_probe = scorer.probe

    def probe(video):
        time.sleep(2.0)
        return slow_probe(video)

    settings = ServiceSettings(video_roots=(str(hostile_root),))
    with LoopbackServer(build_app(scorer, settings)) as srv, ThreadPoolExecutor(1) as pool:
        monkeypatch.setattr(scorer, "probe", probe)
        pending = pool.submit(_post, srv.url, _body("clip"))
        time.sleep(0.3)
        t0 = time.monotonic()
        assert httpx.get(f"{srv.url}/health", timeout=10).status_code == 200
        assert time.monotonic() - t0 < 1.0
        assert pending.result().status_code == 200


@pytest.mark.parametrize(("path", "detail"), [
    ("bad/truncated.mp4", "video file 'truncated.mp4' could not be decoded"),
    ("bad/header_only.mp4", "video file 'header_only.mp4' could not be decoded"),
    ("bad/empty.mp4", "video file 'empty.mp4' is empty"),
    ("bad/text.mp4", "video file 'text.mp4' could not be decoded"),
    ("bad/frames", "frame file '00000.png' could not be"),
    ("x" * 300, "video.path: a path component is 300 bytes long; the limit is 255"),
    ("a/" * 2100, "video.path: 4200 bytes long; the limit is 4096"),
    ("clip\udc80", "video.path: is not valid UTF-8 (contains a lone surrogate)"),
    ("clip\x00", "video.path: contains a NUL character"),
])
def test_broken_videos_and_bad_paths_give_clear_4xx(server, hostile_root, path, detail):
    # defect: these answered 500, and the lone surrogate crashed the error handler itself
    r = _post(server.url, _body(path, keyframe=0, frame_indices=[0]))
    assert r.status_code == 422, r.text
    assert detail in r.json()["detail"]
    _assert_no_server_path(r.json()["detail"], hostile_root)


def test_good_mp4_is_served(server, video):
    r = _post(server.url, _body("bad/good.mp4"))
    assert r.status_code == 200 and r.json()["frame_indices"] == FRAMES


def test_error_details_never_leak_absolute_server_paths(server, hostile_root):
    # defect: 404/422 details echoed resolved server paths
    for path in (hostile_root / "missing", hostile_root / "clip" / "nothing", f"{hostile_root}/bad/empty.mp4"):
        r = _post(server.url, _body(path, keyframe=0, frame_indices=[0]))
        assert r.status_code in (404, 422), r.text
        _assert_no_server_path(r.json()["detail"], hostile_root)
    r = _post(server.url, _body(hostile_root / "missing"))
    assert r.json()["detail"] == "video path does not exist: <video-root>/missing"


def test_redact_paths():
    assert redact_paths("video path /data/v/a.mp4 bad", ["/data/v"]) == "video path <video-root>/a.mp4 bad"
    assert redact_paths("read /etc/passwd: no", []) == "read <path>: no"
    assert redact_paths("size [8, 8] 1/2", []) == "size [8, 8] 1/2"
    assert redact_paths("bad \udc80", []) == "bad \\udc80"


# ---------------------------------------------------------------------------------------------------------------
# 4: timeouts, disconnects, queue limit
# ---------------------------------------------------------------------------------------------------------------


def _slow_body(i=0):
    # propagation over 40 uncached frames: about 10 s on the tiny CPU model
    return {**_body("long", mode="propagate", keyframe=0, frame_indices=None), "request_id": f"slow-{i}"}


@pytest.fixture()
def fresh_scorer(sam2_checkpoint, hostile_root):
    # no feature cache (every slow request is slow), one frame per encoder pass (a stop is at most one frame away)
    return Sam2Scorer(sam2_checkpoint, device="cpu", video_roots=[hostile_root], feature_cache_frames=0,
                      encoder_batch_size=1)


def test_timed_out_request_releases_the_model(fresh_scorer, hostile_root):
    # defect: a 504'd request kept running and holding the scorer, so later requests timed out in a cascade
    settings = ServiceSettings(video_roots=(str(hostile_root),), max_frames=64, request_timeout_s=2.0)
    with LoopbackServer(build_app(fresh_scorer, settings)) as srv:
        t0 = time.monotonic()
        r = _post(srv.url, _slow_body())
        assert r.status_code == 504 and "time limit of 2 s" in r.json()["detail"]
        assert time.monotonic() - t0 < 4
        # the slow request stops at its next frame (encoder chunk) instead of holding the model for ~8 s more
        assert fresh_scorer._lock.acquire(timeout=5)
        fresh_scorer._lock.release()
        r = _post(srv.url, _body("clip"))
        assert r.status_code == 200, r.text               # no cascade of 504s


def test_client_disconnect_withdraws_the_request(fresh_scorer, hostile_root):
    settings = ServiceSettings(video_roots=(str(hostile_root),), max_frames=64, request_timeout_s=60)
    app = build_app(fresh_scorer, settings)
    with LoopbackServer(app) as srv:
        with pytest.raises(httpx.ReadTimeout):           # the client gives up and closes its connection
            _post(srv.url, _slow_body(), timeout=0.8)
        deadline = time.monotonic() + 5
        while app.state.batcher.stats["cancelled"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.batcher.stats["cancelled"] == 1
        assert fresh_scorer._lock.acquire(timeout=5)      # the abandoned propagation no longer holds the model
        fresh_scorer._lock.release()
        assert _post(srv.url, _body("clip")).status_code == 200
        assert app.state.batcher.depth == 0


def test_queue_limit_answers_503(fresh_scorer, hostile_root):
    settings = ServiceSettings(video_roots=(str(hostile_root),), max_frames=64, max_queue=1, request_timeout_s=2)
    with LoopbackServer(build_app(fresh_scorer, settings)) as srv, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_post, srv.url, _slow_body())
        time.sleep(0.5)
        r = _post(srv.url, _body("clip"))
        assert r.status_code == 503 and "the limit is 1" in r.json()["detail"]
        assert r.headers["retry-after"] == "1"
        assert slow.result().status_code == 504


# ---------------------------------------------------------------------------------------------------------------
# 5: token, Host, content type
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(scorer, hostile_root):
    settings = ServiceSettings(video_roots=(str(hostile_root),), token=TOKEN, allow_decoder_updates=True,
                               allowed_hosts=("reward.internal",))
    with LoopbackServer(build_app(scorer, settings)) as srv:
        yield srv


def test_bearer_token_on_every_endpoint_but_health(secured):
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{secured.url}/health").status_code == 200
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
        r = httpx.get(f"{secured.url}/version", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert _post(secured.url, _body("clip"), headers=headers).status_code == 401
        assert _post(secured.url, _body("clip"), path="/score", headers=headers).status_code == 401
        r = httpx.post(f"{secured.url}/decoder_weights?version=5", content=b"x",
                       headers={**headers, "content-type": "application/octet-stream"})
        assert r.status_code == 401
    assert httpx.get(f"{secured.url}/version", headers=auth).status_code == 200
    assert _post(secured.url, _body("clip"), headers=auth).status_code == 200
    with RewardClient(secured.url, token=TOKEN) as client:
        assert client.segment("clip", Prompts.from_boxes([[8, 16, 40, 40]]), "image", 3, FRAMES).masks.shape[1] == 3


def test_client_reads_the_token_file_from_the_environment(secured, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setenv("VIDEOSEG_REWARD_TOKEN_FILE", str(token_file))
    with RewardClient(secured.url) as client:
        assert client.version()["image_size"] == 256


def test_host_header_must_name_the_bound_host(secured, server):
    # DNS rebinding: a browser page on evil.example resolving to 127.0.0.1 sends "Host: evil.example"
    auth = {"authorization": f"Bearer {TOKEN}"}
    r = httpx.get(f"{server.url}/version", headers={"host": "evil.example"})
    assert r.status_code == 400 and "Host header not allowed" in r.json()["detail"]
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        assert httpx.get(f"{server.url}/version", headers={"host": host}).status_code == 200
    assert httpx.get(f"{secured.url}/version", headers={**auth, "host": "reward.internal:80"}).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_json_endpoints_require_application_json(server, content_type):
    # a browser can send a "simple" text/plain POST without a CORS preflight
    headers = {"content-type": content_type} if content_type else {}
    r = httpx.post(f"{server.url}/segment", content=json.dumps(_body("clip")).encode(), headers=headers)
    assert r.status_code == 415 and "Content-Type must be application/json" in r.json()["detail"]


def test_cli_token_file_and_allowed_hosts(monkeypatch, sam2_checkpoint, hostile_root, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    calls = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.update(app=app, **kw))
    monkeypatch.setenv("VIDEOSEG_REWARD_TOKEN_FILE", str(token_file))
    assert main(["--checkpoint", str(sam2_checkpoint), "--video-root", str(hostile_root), "--device", "cpu",
                 "--allowed-host", "reward.internal", "--max-queue", "3", "--max-batch", "1"]) == 0
    with LoopbackServer(calls["app"]) as srv:
        assert httpx.get(f"{srv.url}/version").status_code == 401
        assert httpx.get(f"{srv.url}/version", headers={"authorization": f"Bearer {TOKEN}",
                                                         "host": "reward.internal"}).status_code == 200
    token_file.write_text("")
    with pytest.raises(SystemExit):                       # an empty token file is an error, not "no auth"
        main(["--checkpoint", str(sam2_checkpoint), "--video-root", str(hostile_root), "--device", "cpu"])


# ---------------------------------------------------------------------------------------------------------------
# 6: decoder weights
# ---------------------------------------------------------------------------------------------------------------


def _weights_bytes(state_dict):
    import io

    buf = io.BytesIO()
    torch.save(state_dict, buf)
    return buf.getvalue()


def test_decoder_weights_reject_nan_far_versions_and_wrong_content_type(sam2_checkpoint, hostile_root):
    scorer = Sam2Scorer(sam2_checkpoint, device="cpu", video_roots=[hostile_root])
    key = next(k for k in scorer.decoder_state_dict() if "output_upscaling" in k)
    good = {key: scorer.decoder_state_dict()[key] * 2}
    settings = ServiceSettings(video_roots=(str(hostile_root),), allow_decoder_updates=True)
    octet = {"content-type": "application/octet-stream"}
    with LoopbackServer(build_app(scorer, settings)) as srv:
        url = f"{srv.url}/decoder_weights"
        for bad_value in (float("nan"), float("inf")):
            poisoned = {key: good[key].clone().fill_(bad_value)}
            r = httpx.post(url, params={"version": 2}, content=_weights_bytes(poisoned), headers=octet)
            assert r.status_code == 422 and "contains NaN or infinite values" in r.json()["detail"]
        for version, detail in [(10**30, "expected an integer in [1, "), (-1, "expected an integer in [1, "),
                                ("abc", "expected an integer"),
                                (time.time_ns() // 1_000_000 + 10 * MAX_VERSION_AHEAD, "is too far ahead")]:
            r = httpx.post(url, params={"version": version}, content=_weights_bytes(good), headers=octet)
            assert r.status_code == 422 and detail in r.json()["detail"], r.text
        r = httpx.post(url, params={"version": 2}, content=_weights_bytes(good),
                       headers={"content-type": "application/json"})
        assert r.status_code == 415
        assert scorer.version == 0                        # nothing above changed the weights
        r = httpx.post(url, params={"version": 2}, content=_weights_bytes(good), headers=octet)
        assert r.status_code == 200 and r.json() == {"model_version": 2} and scorer.version == 2
        now_ms = time.time_ns() // 1_000_000                 # millisecond-timestamp versions are accepted too
        r = httpx.post(url, params={"version": now_ms}, content=_weights_bytes(good), headers=octet)
        assert r.status_code == 200 and scorer.version == now_ms


# ---------------------------------------------------------------------------------------------------------------
# 9: micro-batching
# ---------------------------------------------------------------------------------------------------------------


def test_concurrent_requests_are_batched_and_match_unbatched(scorer, hostile_root, gt_masks):
    settings = ServiceSettings(video_roots=(str(hostile_root),), batch_window_ms=200, max_batch=16)
    app = build_app(scorer, settings)
    rng = np.random.default_rng(5)
    prompts = [Prompts.from_embeddings(rng.normal(size=(1 + i % 2, 256)).astype(np.float32)) for i in range(8)]
    frames = [FRAMES, [1, 2], [0, 3, 5], [7]] * 2
    keyframes = [3, 2, 5, 7] * 2
    with LoopbackServer(app) as srv, RewardClient(srv.url) as client, ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client.segment, "clip", p, "image", k, f) for p, k, f in zip(prompts, keyframes,
                                                                                            frames, strict=True)]
        results = [f.result() for f in futures]
        score = client.score("clip", prompts[0], "image", 3, gt_masks[FRAMES], FRAMES)
    stats = app.state.batcher.stats
    assert stats["max_batch_size"] > 1 and stats["batches"] < 9
    for p, k, f, res in zip(prompts, keyframes, frames, results, strict=True):
        alone = scorer.segment(hostile_root / "clip", p, "image", k, f)
        # one multi-object decoder pass: equal to the single-request answer up to float rounding at logits ~ 0
        assert int((res.masks != alone.masks).sum()) <= 2 and res.masks.shape == alone.masks.shape
        assert int((res.keyframe_masks != alone.keyframe_masks).sum()) <= 2
        assert res.frame_indices == tuple(f) and res.keyframe == k
    assert score["J"] == pytest.approx(scorer.score(hostile_root / "clip", prompts[0], "image", 3, gt_masks[FRAMES],
                                                    FRAMES)["J"], abs=1e-3)


def test_gt_of_the_wrong_size_in_a_batch_fails_alone(scorer, hostile_root, gt_masks):
    settings = ServiceSettings(video_roots=(str(hostile_root),), batch_window_ms=200)
    with LoopbackServer(build_app(scorer, settings)) as srv, ThreadPoolExecutor(2) as pool:
        good = {**_body("clip"), "gt_masks": encode_masks(gt_masks[FRAMES])}
        bad = {**_body("clip"), "gt_masks": encode_masks(np.zeros((3, 8, 8), bool))}
        ok, err = pool.map(lambda b: _post(srv.url, b, path="/score"), [good, bad])
    assert ok.status_code == 200 and err.status_code == 422
    assert "does not match the expected size [64, 80]" in err.json()["detail"]

