# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Minimal frame loading for the reward service: a frames folder or a video file -> uint8 RGB arrays.

The service cannot use the plugin's video module (``videoseg_reward`` never imports ``videoseg_o3_verl``), so
this is a small self-contained reader:

* a **folder** of image files (``.jpg .jpeg .png .bmp .webp``): frame ``i`` is the ``i``-th file in name
  order, or, when ``frame_ids`` is given (the ``frames`` list of ReVOS/MeViS annotations, file stems such as
  ``"00005"``), the file of the ``i``-th id;
* a **video file**: decoded with decord, or PyAV when decord is missing.

:func:`resolve_under_roots` is the path guard used by the HTTP app: anything that resolves (symlinks and
``..`` included) outside the configured roots raises :class:`PathNotAllowedError` (a ``PermissionError``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""File suffixes (lower case) that count as frames in a frames folder."""


class PathNotAllowedError(PermissionError):
    """A video path resolves outside every configured root (the HTTP app maps it to 403)."""


def _is_under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_under_roots(path: str | os.PathLike, roots: Sequence[str | os.PathLike] | None) -> Path:
    """Resolve ``path`` (symlinks and ``..`` included) and check it lies under one of ``roots``.

    A relative path is tried against each root in order. ``roots=None`` disables the check (library use);
    an empty list allows nothing.

    Raises:
        PathNotAllowedError: the resolved path is outside every root (checked before existence, so the
            answer does not reveal whether a file outside the roots exists).
        FileNotFoundError: the path is allowed but does not exist.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp()); (root / "v").mkdir()
        >>> resolve_under_roots(root / "x" / ".." / "v", [root]) == (root / "v").resolve()
        True
        >>> try:
        ...     resolve_under_roots(root / ".." / "v", [root])
        ... except PathNotAllowedError:
        ...     print("403")
        403
    """
    raw = Path(os.fspath(path))
    if roots is None:
        resolved = raw.resolve()
        if not resolved.exists():
            raise FileNotFoundError(f"video path does not exist: {raw}")
        return resolved
    resolved_roots = [Path(os.fspath(r)).resolve() for r in roots]
    candidates = [raw.resolve()] if raw.is_absolute() else [(r / raw).resolve() for r in resolved_roots]
    allowed = [c for c in candidates if any(_is_under(c, r) for r in resolved_roots)]
    if not allowed:
        raise PathNotAllowedError(f"video path {str(raw)!r} is outside the allowed roots "
                                  f"({len(resolved_roots)} configured)")
    for candidate in allowed:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"video path does not exist: {raw}")


def list_frame_files(folder: str | os.PathLike, frame_ids: Sequence[str] | None = None) -> list[Path]:
    """Image files of a frames folder, in frame order.

    Args:
        folder: directory holding one image per frame.
        frame_ids: optional file names or stems (``"00005"`` matches ``00005.jpg``); frame ``i`` is the file
            of ``frame_ids[i]``. Ids must be plain names (no ``/`` or ``..``).

    Raises:
        FileNotFoundError: no image files, or an id has no matching file.
        ValueError: an id is not a plain file name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"frames folder does not exist: {folder}")
    if frame_ids is None:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise FileNotFoundError(f"frames folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        return files
    files = []
    for fid in frame_ids:
        if not isinstance(fid, str) or not fid or "/" in fid or "\\" in fid or fid in (".", ".."):
            raise ValueError(f"frame id {fid!r} in {folder} is not a plain file name")
        direct = folder / fid
        if direct.suffix.lower() in IMAGE_EXTENSIONS and direct.is_file():
            files.append(direct)
            continue
        match = next((folder / f"{fid}{ext}" for ext in IMAGE_EXTENSIONS if (folder / f"{fid}{ext}").is_file()),
                     None)
        if match is None:
            raise FileNotFoundError(f"frame id {fid!r} has no image file in {folder}")
        files.append(match)
    return files


def count_frames(path: str | os.PathLike, frame_ids: Sequence[str] | None = None) -> int:
    """Number of frames of a frames folder (or of its ``frame_ids``) or of a video file."""
    path = Path(path)
    if path.is_dir():
        return len(list_frame_files(path, frame_ids))
    if frame_ids is not None:
        raise ValueError(f"frame_ids are only meaningful for a frames folder, got a file: {path}")
    return _video_length(path)


def read_frames(path: str | os.PathLike, indices: Sequence[int] | None = None,
                frame_ids: Sequence[str] | None = None) -> np.ndarray:
    """Read frames as ``[T, H, W, 3]`` uint8 RGB.

    Args:
        path: a frames folder or a video file.
        indices: frame positions to read (in this order); ``None`` reads all.
        frame_ids: see :func:`list_frame_files` (folders only).

    Raises:
        IndexError: an index is out of range (message names the path and the length).
        ValueError: frames of different sizes, or an unreadable file.
    """
    path = Path(path)
    if path.is_dir():
        files = list_frame_files(path, frame_ids)
        idx = _check_indices(indices, len(files), path)
        return _stack([_read_image(files[i]) for i in idx], path)
    if not path.is_file():
        raise FileNotFoundError(f"video path does not exist: {path}")
    if frame_ids is not None:
        raise ValueError(f"frame_ids are only meaningful for a frames folder, got a file: {path}")
    return _read_video(path, indices)


def video_cache_key(path: str | os.PathLike, frame_ids: Sequence[str] | None = None) -> str:
    """Stable key of a video on disk: resolved path + mtime + size (+ a digest of ``frame_ids``)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"path:{path}:{stat.st_mtime_ns}:{stat.st_size}"
    if frame_ids is not None:
        key += ":" + hashlib.sha1("\0".join(frame_ids).encode()).hexdigest()[:16]
    return key


def array_cache_key(frames: np.ndarray) -> str:
    """Key of an in-memory video: shape + sha1 of its bytes."""
    arr = np.ascontiguousarray(frames)
    return f"array:{arr.shape}:{hashlib.sha1(arr.data).hexdigest()}"


def _check_indices(indices: Sequence[int] | None, length: int, path: Path) -> list[int]:
    if indices is None:
        return list(range(length))
    out = [int(i) for i in indices]
    bad = [i for i in out if not 0 <= i < length]
    if bad:
        raise IndexError(f"frame indices {bad[:5]} out of range for {path} with {length} frames")
    return out


def _stack(frames: list[np.ndarray], path: Path) -> np.ndarray:
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"frames of {path} have different sizes: {sorted(shapes)}")
    if not frames:
        return np.zeros((0, 0, 0, 3), np.uint8)
    return np.stack(frames).astype(np.uint8, copy=False)


def _read_image(file: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(file) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except OSError as err:
        raise ValueError(f"frame file {file} could not be decoded: {err}") from err


def _video_length(path: Path) -> int:
    try:
        import decord
    except ImportError:
        decord = None
    if decord is not None:
        return len(decord.VideoReader(str(path), num_threads=1))
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for _ in container.decode(stream))


def _read_video(path: Path, indices: Sequence[int] | None) -> np.ndarray:
    try:
        import decord
    except ImportError:
        decord = None
    if decord is not None:
        reader = decord.VideoReader(str(path), num_threads=1)
        idx = _check_indices(indices, len(reader), path)
        if not idx:
            return np.zeros((0, 0, 0, 3), np.uint8)
        return reader.get_batch(idx).asnumpy().astype(np.uint8, copy=False)
    import av

    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    idx = _check_indices(indices, len(decoded), path)
    return _stack([decoded[i] for i in idx], path)
