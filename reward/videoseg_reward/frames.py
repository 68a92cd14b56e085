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


class VideoDecodeError(ValueError):
    """A video or frame file exists but cannot be decoded (corrupt, truncated, empty, not a video)."""


MAX_PATH_CHARS = 4096
"""Longest video path accepted (the usual ``PATH_MAX``); each component must also fit ``NAME_MAX`` (255 bytes)."""


def check_path_text(path: str, name: str = "video.path") -> str:
    """Reject path strings no file system call should see: empty, NUL bytes, lone surrogates (not UTF-8),
    longer than :data:`MAX_PATH_CHARS`, or with a component over 255 bytes (``ENAMETOOLONG``).

    Raises:
        ValueError: naming the problem (never echoing the path itself, which may not be printable).
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"{name}: expected a non-empty string")
    if "\0" in path:
        raise ValueError(f"{name}: contains a NUL character")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name}: is not valid UTF-8 (contains a lone surrogate)") from None
    if len(encoded) > MAX_PATH_CHARS:
        raise ValueError(f"{name}: {len(encoded)} bytes long; the limit is {MAX_PATH_CHARS}")
    longest = max(len(part) for part in encoded.split(b"/"))
    if longest > 255:
        raise ValueError(f"{name}: a path component is {longest} bytes long; the limit is 255")
    return path


def check_file_under_roots(file: Path, roots: Sequence[str | os.PathLike] | None) -> Path:
    """Resolve one file that is about to be opened (symlinks included) and check it lies under ``roots``.

    A frame file inside an allowed folder may be a symlink to a file elsewhere: the folder check alone does not
    cover it. ``roots=None`` only resolves.
    """
    resolved = Path(file).resolve()
    if roots is not None and not any(_is_under(resolved, Path(os.fspath(r)).resolve()) for r in roots):
        raise PathNotAllowedError(f"frame file {Path(file).name!r} resolves outside the allowed roots")
    return resolved


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
    raw = Path(check_path_text(os.fspath(path)))
    try:
        return _resolve_under_roots(raw, roots)
    except OSError as err:
        if isinstance(err, (FileNotFoundError, PermissionError)):
            raise
        raise ValueError(f"video path cannot be resolved: {err.strerror or type(err).__name__}") from None


def _resolve_under_roots(raw: Path, roots: Sequence[str | os.PathLike] | None) -> Path:
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


MAX_VIDEO_FRAMES = 100_000
"""Default bound on the frames of one video (a folder listing or ``frame_ids``): larger inputs are refused
before any file is touched."""


def list_frame_files(folder: str | os.PathLike, frame_ids: Sequence[str] | None = None,
                     roots: Sequence[str | os.PathLike] | None = None,
                     max_frames: int = MAX_VIDEO_FRAMES) -> list[Path]:
    """Image files of a frames folder, in frame order, each resolved and checked against ``roots``.

    Args:
        folder: directory holding one image per frame.
        frame_ids: optional file names or stems (``"00005"`` matches ``00005.jpg``); frame ``i`` is the file
            of ``frame_ids[i]``. Ids must be plain names (no ``/`` or ``..``).
        roots: allowed roots every file must resolve under (a frame may be a symlink); ``None`` = no check.
        max_frames: most frames accepted (``ValueError`` above, checked before any file is looked at).

    Raises:
        FileNotFoundError: no image files, or an id has no matching file.
        PathNotAllowedError: a frame file resolves outside ``roots``.
        ValueError: an id is not a plain file name, or too many frames.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"frames folder does not exist: {folder.name!r}")
    if frame_ids is not None and len(frame_ids) > max_frames:
        raise ValueError(f"video.frame_ids: {len(frame_ids)} frames; the limit is {max_frames}")
    if frame_ids is None:
        files = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                    files.append(folder / entry.name)
                    if len(files) > max_frames:
                        raise ValueError(f"frames folder {folder.name!r} holds more than {max_frames} frames")
        files = sorted(f for f in files if f.is_file())
        if not files:
            raise FileNotFoundError(f"frames folder {folder.name!r} holds no image files "
                                    f"({', '.join(IMAGE_EXTENSIONS)})")
        return [check_file_under_roots(f, roots) for f in files]
    files = []
    for fid in frame_ids:
        if not isinstance(fid, str) or not fid or "/" in fid or "\\" in fid or fid in (".", ".."):
            raise ValueError(f"frame id {fid!r} in {folder.name!r} is not a plain file name")
        direct = folder / fid
        if direct.suffix.lower() in IMAGE_EXTENSIONS and direct.is_file():
            files.append(direct)
            continue
        match = next((folder / f"{fid}{ext}" for ext in IMAGE_EXTENSIONS if (folder / f"{fid}{ext}").is_file()),
                     None)
        if match is None:
            raise FileNotFoundError(f"frame id {fid!r} has no image file in {folder.name!r}")
        files.append(match)
    return [check_file_under_roots(f, roots) for f in files]


def count_frames(path: str | os.PathLike, frame_ids: Sequence[str] | None = None,
                 roots: Sequence[str | os.PathLike] | None = None, max_frames: int = MAX_VIDEO_FRAMES) -> int:
    """Number of frames of a frames folder (or of its ``frame_ids``) or of a video file."""
    return probe_video(path, frame_ids, roots, max_frames)[0]


def probe_video(path: str | os.PathLike, frame_ids: Sequence[str] | None = None,
                roots: Sequence[str | os.PathLike] | None = None,
                max_frames: int = MAX_VIDEO_FRAMES) -> tuple[int, int, int]:
    """``(num_frames, height, width)`` of a frames folder or video file, from headers only (no pixel decoding).

    Raises:
        VideoDecodeError: the first frame or the video container cannot be read.
        ValueError: more than ``max_frames`` frames, or ``frame_ids`` given for a video file.
    """
    path = Path(path)
    if path.is_dir():
        files = list_frame_files(path, frame_ids, roots, max_frames)
        height, width = _image_size(files[0])
        return len(files), height, width
    if frame_ids is not None:
        raise ValueError(f"video.frame_ids: only meaningful for a frames folder, got the file {path.name!r}")
    num_frames, height, width = _video_probe(check_file_under_roots(path, roots))
    if num_frames > max_frames:
        raise ValueError(f"video {path.name!r} has {num_frames} frames; the limit is {max_frames}")
    return num_frames, height, width


def read_frames(path: str | os.PathLike, indices: Sequence[int] | None = None,
                frame_ids: Sequence[str] | None = None, roots: Sequence[str | os.PathLike] | None = None,
                max_frames: int = MAX_VIDEO_FRAMES) -> np.ndarray:
    """Read frames as ``[T, H, W, 3]`` uint8 RGB.

    Args:
        path: a frames folder or a video file.
        indices: frame positions to read (in this order); ``None`` reads all.
        frame_ids: see :func:`list_frame_files` (folders only).
        roots, max_frames: see :func:`list_frame_files`; every file opened is checked against ``roots``.

    Raises:
        IndexError: an index is out of range (message names the path and the length).
        ValueError: frames of different sizes, or an unreadable file.
    """
    path = Path(path)
    if path.is_dir():
        files = list_frame_files(path, frame_ids, roots, max_frames)
        idx = _check_indices(indices, len(files), path)
        return _stack([_read_image(files[i]) for i in idx], path)
    if not path.is_file():
        raise FileNotFoundError(f"video path does not exist: {path.name!r}")
    if frame_ids is not None:
        raise ValueError(f"video.frame_ids: only meaningful for a frames folder, got the file {path.name!r}")
    return _read_video(check_file_under_roots(path, roots), indices)


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
        raise IndexError(f"frame indices {bad[:5]} out of range for {path.name!r} with {length} frames")
    return out


def _stack(frames: list[np.ndarray], path: Path) -> np.ndarray:
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"frames of {path.name!r} have different sizes: {sorted(shapes)}")
    if not frames:
        return np.zeros((0, 0, 0, 3), np.uint8)
    return np.stack(frames).astype(np.uint8, copy=False)


def _read_image(file: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(file) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as err:  # PIL raises all three for broken files
        raise VideoDecodeError(f"frame file {file.name!r} could not be decoded ({type(err).__name__})") from None


def _image_size(file: Path) -> tuple[int, int]:
    """``(height, width)`` from the image header (nothing is decoded)."""
    from PIL import Image

    try:
        with Image.open(file) as img:
            width, height = img.size
    except (OSError, ValueError, SyntaxError) as err:
        raise VideoDecodeError(f"frame file {file.name!r} could not be read ({type(err).__name__})") from None
    return int(height), int(width)


def _decord():
    try:
        import decord
    except ImportError:
        return None
    return decord


def _video_probe(path: Path) -> tuple[int, int, int]:
    """``(num_frames, height, width)`` of a video file; every decoder error becomes :class:`VideoDecodeError`."""
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"video file {path.name!r} is empty")
    try:
        decord = _decord()
        if decord is not None:
            reader = decord.VideoReader(str(path), num_threads=1)
            height, width = reader[0].shape[:2] if len(reader) else (0, 0)
            return len(reader), int(height), int(width)
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"file {path.name!r} has no video stream")
            stream = container.streams.video[0]
            num = int(stream.frames) or sum(1 for _ in container.decode(stream))
            return num, int(stream.height), int(stream.width)
    except VideoDecodeError:
        raise
    except Exception as err:  # noqa: BLE001 - decoders raise many types (DECORDError, av.error.*, RuntimeError)
        raise VideoDecodeError(f"video file {path.name!r} could not be decoded ({type(err).__name__}: "
                               "corrupt, truncated or not a video)") from None


def _read_video(path: Path, indices: Sequence[int] | None) -> np.ndarray:
    num_frames = _video_probe(path)[0]
    if num_frames == 0:
        raise VideoDecodeError(f"video file {path.name!r} holds no frames")
    idx = _check_indices(indices, num_frames, path)
    try:
        decord = _decord()
        if decord is not None:
            reader = decord.VideoReader(str(path), num_threads=1)
            return reader.get_batch(idx).asnumpy().astype(np.uint8, copy=False)
        import av

        wanted, frames = set(idx), {}
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(container.streams.video[0])):
                if i in wanted:
                    frames[i] = frame.to_ndarray(format="rgb24")
                if len(frames) == len(wanted):
                    break
    except Exception as err:  # noqa: BLE001 - see _video_probe
        raise VideoDecodeError(f"video file {path.name!r} could not be decoded ({type(err).__name__})") from None
    missing = [i for i in idx if i not in frames]
    if missing:
        raise VideoDecodeError(f"video file {path.name!r} ends before frame {missing[0]} (truncated?)")
    return _stack([frames[i] for i in idx], path)
