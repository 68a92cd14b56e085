# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Random access to the frames of a video file (decord, PyAV fallback) or of a folder of JPEG/PNG frames.

`VideoSource.open(path, frame_ids=None)` validates the path and reads the frame count; decoder handles are
opened lazily on first frame access, re-opened after unpickling (so a source can be shipped to a Ray worker),
and guarded by a lock so that concurrent asyncio tasks running in threads do not share a decoder unsafely.
Frame index i is the 0-based position in temporal order (for RVOS datasets: the position in the record's
`frames` list, docs/method.md §2).
"""

from __future__ import annotations

import operator
import os
import threading
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
"""Frame file extensions recognised in a frame folder (matched case-insensitively)."""

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts", ".gif",
)  # fmt: skip
"""Video file extensions accepted by `VideoSource.open` (matched case-insensitively)."""


def _as_index(index: object) -> int:
    if isinstance(index, bool | np.bool_):
        raise TypeError(f"frame index must be an int, got bool {index!r}")
    try:
        return operator.index(index)  # accepts int and numpy integers
    except TypeError:
        raise TypeError(f"frame index must be an int, got {index!r} ({type(index).__name__})") from None


class _FolderBackend:
    """Frames stored as one image file per frame."""

    name = "images"

    def __init__(self, files: list[str]):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def size(self) -> tuple[int, int]:
        return self._load(0).size

    def _load(self, i: int) -> Image.Image:
        path = self.files[i]
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(f"frame {i} file not found: {path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise ValueError(f"cannot decode frame {i} image file {path}: {err}") from err

    def get_frames(self, indices: list[int]) -> list[Image.Image]:
        return [self._load(i) for i in indices]

    def close(self) -> None:
        pass


class _DecordBackend:
    """Video file decoded with decord (frame-accurate random access)."""

    name = "decord"

    def __init__(self, path: str):
        import decord

        self.path = path
        self._reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        self._len = len(self._reader)
        if self._len < 1:
            raise ValueError(f"video file {path} has no frames")
        first = self._reader[0].asnumpy()  # [H, W, 3] uint8
        self._size = (int(first.shape[1]), int(first.shape[0]))

    def __len__(self) -> int:
        return self._len

    def size(self) -> tuple[int, int]:
        return self._size

    def get_frames(self, indices: list[int]) -> list[Image.Image]:
        batch = self._reader.get_batch(indices).asnumpy()  # [N, H, W, 3] uint8
        return [Image.fromarray(frame) for frame in batch]

    def close(self) -> None:
        self._reader = None


class _PyAVBackend:
    """Video file decoded with PyAV by sequential decoding (fallback; slower for late frames)."""

    name = "pyav"

    def __init__(self, path: str):
        import av

        self.path = path
        self._av = av
        with av.open(path) as container:
            if not container.streams.video:
                raise ValueError(f"file {path} has no video stream")
            stream = container.streams.video[0]
            self._size = (int(stream.codec_context.width), int(stream.codec_context.height))
            count = int(stream.frames or 0)
            if count <= 0:
                # Container does not store the frame count: count the video packets (one frame each).
                count = sum(1 for packet in container.demux(stream) if packet.size > 0)
        if count < 1:
            raise ValueError(f"video file {path} has no frames")
        self._len = count

    def __len__(self) -> int:
        return self._len

    def size(self) -> tuple[int, int]:
        return self._size

    def get_frames(self, indices: list[int]) -> list[Image.Image]:
        wanted = set(indices)
        last = max(indices)
        found: dict[int, Image.Image] = {}
        with self._av.open(self.path) as container:
            stream = container.streams.video[0]
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    found[i] = frame.to_image().convert("RGB")
                if i >= last:
                    break
        missing = sorted(wanted - found.keys())
        if missing:
            raise ValueError(
                f"video file {self.path} ended before frame {missing[0]} (header says {self._len} frames)"
            )
        return [found[i] for i in indices]

    def close(self) -> None:
        pass


def _open_video_backend(path: str):
    """Open `path` with decord, falling back to PyAV; raise ValueError naming the file if both fail."""
    errors = []
    try:
        import decord  # noqa: F401
    except ImportError as err:
        errors.append(f"decord not importable ({err})")
    else:
        from decord._ffi.base import DECORDError

        try:
            return _DecordBackend(path)
        except (DECORDError, RuntimeError, ValueError) as err:
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            errors.append(f"decord: {first_line}")
    try:
        import av
    except ImportError as err:
        errors.append(f"PyAV not importable ({err})")
    else:
        try:
            return _PyAVBackend(path)
        except (av.FFmpegError, ValueError, OSError, IndexError) as err:
            errors.append(f"PyAV: {err}")
    raise ValueError(f"cannot decode video file {path}: " + "; ".join(errors))


def _resolve_frame_ids(folder: str, frame_ids: Sequence[str]) -> list[str]:
    names = set(os.listdir(folder))
    files = []
    for frame_id in frame_ids:
        if not isinstance(frame_id, str):
            raise TypeError(f"frame id must be a str, got {frame_id!r} ({type(frame_id).__name__})")
        if frame_id in names and frame_id.lower().endswith(IMAGE_EXTENSIONS):
            files.append(os.path.join(folder, frame_id))
            continue
        for ext in (*IMAGE_EXTENSIONS, *(e.upper() for e in IMAGE_EXTENSIONS)):
            if frame_id + ext in names or os.path.isfile(os.path.join(folder, frame_id + ext)):
                files.append(os.path.join(folder, frame_id + ext))
                break
        else:
            raise FileNotFoundError(
                f"frame id {frame_id!r}: no file {os.path.join(folder, frame_id + '.jpg')} "
                f"(also tried {', '.join(IMAGE_EXTENSIONS[1:])})"
            )
    return files


class VideoSource:
    """Frames of one video, by 0-based index in temporal order.

    Use `VideoSource.open(path, frame_ids=None)`; do not call the constructor directly.

    Attributes:
        path: the file or folder the frames come from.
        frame_files: for a frame folder, the image file of each frame in order; None for a video file.
    """

    def __init__(self, path: str, frame_files: list[str] | None, num_frames: int, backend=None):
        self.path = path
        self.frame_files = frame_files
        self._num_frames = num_frames
        self._backend = backend
        self._size: tuple[int, int] | None = backend.size() if backend is not None else None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike, frame_ids: Sequence[str] | None = None) -> VideoSource:
        """Open a video file or a folder of frames.

        Args:
            path: a video file (decord, PyAV fallback) or a folder of .jpg/.jpeg/.png frames.
            frame_ids: for a folder, the frame file stems in temporal order (RVOS `frames` lists, e.g.
                ["00000", "00005"]); each resolves to `<id>.jpg` (or .jpeg/.png). None = all image files of
                the folder sorted by name.

        Raises:
            FileNotFoundError: the path does not exist, the folder has no frames, or a frame id has no file.
            ValueError: unsupported or undecodable file, empty `frame_ids`, or `frame_ids` given for a file.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"video path not found: {path}")
        if os.path.isdir(path):
            if frame_ids is None:
                names = sorted(
                    n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")
                )
                if not names:
                    raise FileNotFoundError(f"no frame files ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
                files = [os.path.join(path, n) for n in names]
            else:
                if isinstance(frame_ids, str):
                    raise TypeError(f"frame_ids must be a sequence of str, got the str {frame_ids!r}")
                frame_ids = list(frame_ids)
                if not frame_ids:
                    raise ValueError(f"frame_ids is empty for folder {path}; expected at least one frame id")
                files = _resolve_frame_ids(path, frame_ids)
            return cls(path, files, len(files))
        if frame_ids is not None:
            raise ValueError(f"frame_ids only apply to a folder of frames, but {path} is a file")
        ext = os.path.splitext(path)[1].lower()
        if ext not in VIDEO_EXTENSIONS:
            raise ValueError(
                f"unsupported file type {ext or '(none)'!r} for {path}; expected a video file "
                f"({', '.join(VIDEO_EXTENSIONS)}) or a folder of frames"
            )
        backend = _open_video_backend(path)
        return cls(path, None, len(backend), backend)

    def _get_backend(self):
        # Caller holds self._lock.
        if self._backend is None:
            if self.frame_files is not None:
                self._backend = _FolderBackend(self.frame_files)
            else:
                self._backend = _open_video_backend(self.path)
        return self._backend

    @property
    def backend_name(self) -> str:
        """"images", "decord" or "pyav" (opens the decoder if needed)."""
        with self._lock:
            return self._get_backend().name

    def __len__(self) -> int:
        return self._num_frames

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of frame 0."""
        if self._size is None:
            with self._lock:
                self._size = self._get_backend().size()
        return self._size

    def _check(self, index: object) -> int:
        i = _as_index(index)
        if not 0 <= i < self._num_frames:
            raise IndexError(f"frame index {i} out of range for {self.path} with {self._num_frames} frames")
        return i

    def get_frame(self, index: int) -> Image.Image:
        """Frame `index` as an RGB PIL image.

        Raises:
            IndexError: index < 0 or >= len(self).
        """
        return self.get_frames([index])[0]

    def get_frames(self, indices: Iterable[int]) -> list[Image.Image]:
        """Frames at `indices` (any order, repeats allowed) as RGB PIL images, decoded in one batch.

        Raises:
            IndexError: an index < 0 or >= len(self).
        """
        checked = [self._check(i) for i in indices]
        if not checked:
            return []
        unique = sorted(set(checked))
        with self._lock:
            frames = self._get_backend().get_frames(unique)
        by_index = dict(zip(unique, frames, strict=True))
        # Repeated indices get independent copies so callers may mutate them.
        out, seen = [], set()
        for i in checked:
            out.append(by_index[i] if i not in seen else by_index[i].copy())
            seen.add(i)
        return out

    def close(self) -> None:
        """Drop the decoder handle (it is re-opened on the next access)."""
        with self._lock:
            if self._backend is not None:
                self._backend.close()
            self._backend = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_backend"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        kind = "folder" if self.frame_files is not None else "file"
        return f"VideoSource({kind}={self.path!r}, num_frames={self._num_frames})"
