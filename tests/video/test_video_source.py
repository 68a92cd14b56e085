# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tests of `VideoSource`: video files (decord, PyAV fallback), frame folders, errors, thread safety, pickling."""

import pickle
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from videoseg_o3_verl.video import VideoSource
from videoseg_o3_verl.video import source as source_module

NUM_FRAMES, WIDTH, HEIGHT = 16, 64, 48
TOLERANCE = 12  # max per-channel error of the mean colour after lossy H.264 (crf 10) + YUV 4:2:0 round trip


def colour(i: int) -> tuple[int, int, int]:
    """Distinct solid colour of frame i (neighbouring frames differ by >= 15 in every channel)."""
    return ((i * 37) % 256, (i * 91 + 50) % 256, (255 - i * 15) % 256)


def mean_colour(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64).reshape(-1, 3).mean(axis=0)


def assert_frame(img: Image.Image, i: int) -> None:
    assert img.mode == "RGB" and img.size == (WIDTH, HEIGHT)
    err = np.abs(mean_colour(img) - np.array(colour(i)))
    assert err.max() <= TOLERANCE, f"frame {i}: mean {mean_colour(img)} vs expected {colour(i)}"


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    """A 16-frame 64x48 H.264 mp4, a truncated copy, a garbage .mp4 and a .txt."""
    av = pytest.importorskip("av")
    root = tmp_path_factory.mktemp("videos")
    path = root / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "10"}
        for i in range(NUM_FRAMES):
            frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            frame[:] = colour(i)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])  # the moov atom is at the end: cut off
    (root / "garbage.mp4").write_bytes(b"\x00\x01not a video" * 300)
    (root / "notes.txt").write_text("hello")
    return root


@pytest.fixture
def frame_folder(tmp_path):
    """Folder with frames 00000.jpg, 00005.jpg, 00010.png (colours 0, 1, 2) plus a non-image file."""
    for i, name in enumerate(["00000.jpg", "00005.jpg", "00010.png"]):
        Image.new("RGB", (WIDTH, HEIGHT), colour(i)).save(tmp_path / name, quality=95)
    (tmp_path / "meta.json").write_text("{}")
    return tmp_path


def test_video_source_file_len_size_and_frames(video_dir):
    src = VideoSource.open(video_dir / "clip.mp4")
    assert len(src) == NUM_FRAMES
    assert src.size == (WIDTH, HEIGHT)
    assert src.path == str(video_dir / "clip.mp4")
    assert src.backend_name == "decord"
    for i in (0, 1, 7, 15):
        assert_frame(src.get_frame(i), i)


def test_video_source_get_frames_keeps_order_and_repeats(video_dir):
    src = VideoSource.open(video_dir / "clip.mp4")
    indices = [9, 2, 9, np.int64(0)]  # unsorted, repeated, numpy int
    frames = src.get_frames(indices)
    assert len(frames) == 4
    for img, i in zip(frames, [9, 2, 9, 0], strict=True):
        assert_frame(img, i)
    assert frames[0] is not frames[2]  # repeats are independent images
    assert src.get_frames([]) == []


def test_video_source_pyav_fallback_when_decord_missing(video_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` raise ImportError
    src = VideoSource.open(video_dir / "clip.mp4")
    assert src.backend_name == "pyav"
    assert len(src) == NUM_FRAMES and src.size == (WIDTH, HEIGHT)
    for img, i in zip(src.get_frames([15, 0, 6]), [15, 0, 6], strict=True):
        assert_frame(img, i)


def test_video_source_pyav_fallback_when_decord_fails_to_open(video_dir, monkeypatch):
    from decord._ffi.base import DECORDError

    def fail(self, path):
        raise DECORDError(f"cannot open {path}")

    monkeypatch.setattr(source_module._DecordBackend, "__init__", fail)
    src = VideoSource.open(video_dir / "clip.mp4")
    assert src.backend_name == "pyav"
    assert_frame(src.get_frame(11), 11)


def test_video_source_folder_all_images_sorted_by_name(frame_folder):
    src = VideoSource.open(frame_folder)
    assert len(src) == 3  # meta.json is ignored
    assert src.size == (WIDTH, HEIGHT)
    assert src.backend_name == "images"
    assert [p.rsplit("/", 1)[-1] for p in src.frame_files] == ["00000.jpg", "00005.jpg", "00010.png"]
    for i in range(3):
        assert_frame(src.get_frame(i), i)


def test_video_source_folder_frame_ids_in_given_order(frame_folder):
    # RVOS records list frame stems without extension; index = position in this list.
    src = VideoSource.open(frame_folder, frame_ids=["00010", "00000"])
    assert len(src) == 2
    assert_frame(src.get_frame(0), 2)  # "00010" is the png with colour(2)
    assert_frame(src.get_frame(1), 0)


@pytest.mark.parametrize(
    "make_path, kwargs, error, match",
    [
        (lambda root, vids: root / "nope.mp4", {}, FileNotFoundError, "nope.mp4"),
        (lambda root, vids: root / "empty", {}, FileNotFoundError, "no frame files"),
        (lambda root, vids: root / "frames", {"frame_ids": ["00000", "00007"]}, FileNotFoundError, "00007.jpg"),
        (lambda root, vids: root / "frames", {"frame_ids": []}, ValueError, "frame_ids is empty"),
        (lambda root, vids: vids / "truncated.mp4", {}, ValueError, "truncated.mp4"),
        (lambda root, vids: vids / "garbage.mp4", {}, ValueError, "garbage.mp4"),
        (lambda root, vids: vids / "notes.txt", {}, ValueError, "notes.txt"),
        (lambda root, vids: vids / "clip.mp4", {"frame_ids": ["0"]}, ValueError, "only apply to a folder"),
    ],
)
def test_video_source_open_errors_name_the_file(tmp_path, video_dir, make_path, kwargs, error, match):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no frames here")
    (tmp_path / "frames").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "frames" / "00000.jpg")
    with pytest.raises(error, match=match):
        VideoSource.open(make_path(tmp_path, video_dir), **kwargs)


def test_video_source_corrupt_frame_image_raises_value_error(tmp_path):
    (tmp_path / "00000.jpg").write_bytes(b"not a jpeg")
    src = VideoSource.open(tmp_path)  # lazy: the image is read on access
    with pytest.raises(ValueError, match="00000.jpg"):
        src.get_frame(0)


@pytest.mark.parametrize("index", [-1, NUM_FRAMES, 1000])
def test_video_source_index_out_of_range_names_index_and_length(video_dir, index):
    src = VideoSource.open(video_dir / "clip.mp4")
    with pytest.raises(IndexError, match=rf"frame index {index} .* {NUM_FRAMES} frames"):
        src.get_frame(index)
    with pytest.raises(IndexError, match=str(index)):
        src.get_frames([0, index])


@pytest.mark.parametrize("index", [1.0, "1", True])
def test_video_source_non_int_index_is_type_error(frame_folder, index):
    with pytest.raises(TypeError, match="frame index"):
        VideoSource.open(frame_folder).get_frame(index)


def test_video_source_concurrent_threads_get_their_own_frames(video_dir):
    src = VideoSource.open(video_dir / "clip.mp4")
    requests = [[i, (i + 5) % NUM_FRAMES] for i in range(NUM_FRAMES)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(src.get_frames, requests))
    for req, frames in zip(requests, results, strict=True):
        for i, img in zip(req, frames, strict=True):
            assert_frame(img, i)


def test_video_source_pickle_round_trip_reopens_lazily(video_dir):
    src = VideoSource.open(video_dir / "clip.mp4")
    src.get_frame(0)  # decoder is open now
    clone = pickle.loads(pickle.dumps(src))
    assert clone._backend is None  # handle dropped in transit, re-opened on first access
    assert len(clone) == NUM_FRAMES and clone.size == (WIDTH, HEIGHT)
    assert_frame(clone.get_frame(13), 13)
