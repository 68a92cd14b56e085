# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Bit-packed engine behind :mod:`videoseg_reward.metrics`: per-frame region counts, DAVIS boundary maps and
boundary matches within the disk tolerance, computed on packed bytes instead of full-resolution bool images.

Layout ("bands"). A frame of height ``H`` is cut into 8 horizontal bands of ``band = ceil(H / 8)`` rows; packed
byte ``(j, x)`` holds pixel ``(b * band + j, x)`` in bit ``b``. Moving the image by one column moves the bytes by
one, moving it by one row moves them by one packed row (``stride`` bytes), so every binary image operation is
ONE numpy operation on ``H * W / 8`` bytes. Each packed row is followed by zero padding columns (a horizontal
shift never reaches the next row) and each band is extended by ``halo`` rows above and below that repeat the
neighbouring bands' rows (the same bytes shifted by one bit), so a vertical shift of up to ``halo`` rows never
has to cross bits. Frames are stacked in one flat array; halos and padding keep them apart, and every shift is a
1-D slice of it. Frames are processed in chunks small enough for the CPU cache.

Boundary map (the toolkit's ``seg2bmap``): with ``x = c ^ right``, a pixel differs from one of its right, lower
and lower-right neighbours iff ``x | x_below | (c ^ below)`` (four byte-array operations); the toolkit's last-row,
last-column and corner rules are applied afterwards.

Match count ``|B_src ∩ dilate(B_dst, disk)|``. Row ``dy`` of the disk is the run ``[-w, w]`` with ``w`` its
half-width there (:func:`disk_rows`). The horizontal runs are grown from one width to the next by doubling
one-sided shifts (``X | X shifted by k``); the rows sharing a width are consecutive, so each run is stretched over
them once and ORed in twice (above and below the centre): 21 byte-array ORs for radius 8 instead of 196 shifted
copies. Everything is exact bit arithmetic; the tests compare it with a plain per-frame implementation of the toolkit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_BITS = 8
_CHUNK_BYTES = 400_000
"""Frames per chunk are chosen so that one packed chunk is about this large (measured best on 480x854 frames)."""


class FrameCounts(NamedTuple):
    """Per-frame pixel counts, each ``[T] int64``."""

    inter: np.ndarray
    """``|P ∩ G|``."""
    union: np.ndarray
    """``|P ∪ G|``."""
    n_pred: np.ndarray
    """``|B_P|``: boundary pixels of the prediction (0 when no tolerance was given)."""
    n_gt: np.ndarray
    """``|B_G|``."""
    match_pred: np.ndarray
    """``|B_P ∩ dilate(B_G, disk)|``."""
    match_gt: np.ndarray
    """``|B_G ∩ dilate(B_P, disk)|``."""


class _Layout(NamedTuple):
    """Packed layout of a chunk: ``frames x rows x stride`` bytes, ``rows = halo + band + halo``."""

    frames: int
    height: int
    width: int
    band: int
    halo: int
    stride: int

    @property
    def rows(self) -> int:
        return self.band + 2 * self.halo

    @property
    def size(self) -> int:
        return self.frames * self.rows * self.stride

    def interior(self, flat: np.ndarray, shift: int = 0) -> np.ndarray:
        """``[frames, band * stride]`` view of the band rows of each frame (without halos) of ``flat``, whose
        element ``i`` stands for position ``i + shift`` of the layout."""
        start = self.halo * self.stride - shift
        frame = self.rows * self.stride
        if start < 0 or start + (self.frames - 1) * frame + self.band * self.stride > flat.size:
            raise AssertionError(f"band rows shifted by {shift} fall outside the packed array")  # guards as_strided
        return np.lib.stride_tricks.as_strided(
            flat[start:], shape=(self.frames, self.band * self.stride), strides=(frame * flat.itemsize, flat.itemsize),
            writeable=False)


def _layout(frames: int, height: int, width: int, halo: int) -> _Layout:
    # Padding of 2 * halo >= 2r + 2 columns: a dilation reads r columns left and right of a pixel plus one column
    # for the right neighbour; the stride is a multiple of 8 so that rows can be counted as uint64 words.
    stride = -(-(width + 2 * halo) // 8) * 8
    return _Layout(frames, height, width, -(-height // _BITS), halo, stride)


def disk_rows(footprint: np.ndarray) -> list[tuple[int, int, int]]:
    """The rows of a centred, row-convex footprint grouped by half-width: ``(w, lo, hi)`` means the rows
    ``lo <= |dy| <= hi`` are the runs ``[-w, w]``; ``w`` ascending.

    Example:
        >>> disk_rows(np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))   # the radius-1 disk
        [(0, 1, 1), (1, 0, 0)]
    """
    r = footprint.shape[0] // 2
    half = [(int(np.count_nonzero(footprint[r + dy])) - 1) // 2 for dy in range(r + 1)]
    return [(w, half.index(w), r - half[::-1].index(w)) for w in sorted(set(half))]


# ------------------------------------------------------------------------------------------------------------
# Packing
# ------------------------------------------------------------------------------------------------------------


def _pack(mask: np.ndarray, lay: _Layout, out: np.ndarray, scratch: np.ndarray) -> None:
    """Write ``mask`` ``[frames, H, W] bool`` into the packed chunk ``out`` ``[frames, rows, stride] uint8``.

    Band rows are assembled in ``scratch`` (``>= frames * band * W`` bytes) by Horner's rule with byte additions
    (``acc = 2 acc + band_b``, top band first; uint8 additions vectorise where uint8 shifts do not), then copied
    into place; halo rows are shifted copies of band rows; padding columns stay 0.
    """
    h, w, band, halo = lay.height, lay.width, lay.band, lay.halo
    src = mask.reshape(lay.frames, h * w).view(np.uint8)
    acc = scratch[: lay.frames * band * w].reshape(lay.frames, band * w)
    starts = range(0, h * w, band * w)
    top = starts[-1]
    acc[:, : h * w - top] = src[:, top:]  # the top band, possibly shorter than the others
    acc[:, h * w - top :] = 0
    for start in reversed(starts[:-1]):
        np.add(acc, acc, out=acc)
        np.add(acc, src[:, start : start + band * w], out=acc)
    out[:, halo : halo + band, :w] = acc.reshape(lay.frames, band, w)
    out[:, halo : halo + band, w:] = 0
    _fill_halos(out, lay)


def _fill_halos(out: np.ndarray, lay: _Layout) -> None:
    """Halo row ``j`` (``j < 0`` or ``j >= band``) of bit ``b`` is pixel row ``b * band + j`` = band row
    ``j - m * band`` of bit ``b + m`` with ``m = floor(j / band)``: a shift by ``m`` bits of a band row."""
    band, halo = lay.band, lay.halo
    for lo, hi in ((-halo, 0), (band, band + halo)):
        j = lo
        while j < hi:
            m = j // band
            end = min(hi, (m + 1) * band)
            dst = out[:, halo + j : halo + end]
            src = out[:, halo + j - m * band : halo + end - m * band]
            if abs(m) >= _BITS:
                dst[...] = 0
            elif m == -1:  # x << 1 as x + x: uint8 additions vectorise, uint8 left shifts do not
                np.add(src, src, out=dst)
            elif m < 0:
                np.left_shift(src, -m, out=dst)
            else:
                np.right_shift(src, m, out=dst)
            j = end


def _unpack(packed: np.ndarray, lay: _Layout) -> np.ndarray:
    """Inverse of :func:`_pack`: ``[frames, rows, stride] uint8`` → ``[frames, H, W] bool``."""
    out = np.empty((lay.frames, lay.height, lay.width), dtype=bool)
    rows = packed[:, lay.halo : lay.halo + lay.band, : lay.width]
    for b, y0 in enumerate(range(0, lay.height, lay.band)):
        y1 = min(y0 + lay.band, lay.height)
        out[:, y0:y1] = (rows[:, : y1 - y0] >> b) & 1
    return out


# ------------------------------------------------------------------------------------------------------------
# Counting
# ------------------------------------------------------------------------------------------------------------


def _swar_popcount(words: np.ndarray) -> np.ndarray:
    """Bits set per uint64 word (the classic SWAR sum), for NumPy < 2.0 which has no ``np.bitwise_count``."""
    w = words - ((words >> np.uint64(1)) & np.uint64(0x5555555555555555))
    w = (w & np.uint64(0x3333333333333333)) + ((w >> np.uint64(2)) & np.uint64(0x3333333333333333))
    w = (w + (w >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (w * np.uint64(0x0101010101010101)) >> np.uint64(56)


_bitwise_count = getattr(np, "bitwise_count", _swar_popcount)


def _count_frames(rows: np.ndarray) -> np.ndarray:
    """Set bits per frame of ``[frames, k] uint8`` (``k`` a multiple of 8): ``[frames] int64``."""
    words = rows.view(np.uint64)
    return _bitwise_count(words).sum(axis=1, dtype=np.uint32).astype(np.int64)  # a frame has < 2³² pixels


# ------------------------------------------------------------------------------------------------------------
# Boundary maps and dilation
# ------------------------------------------------------------------------------------------------------------


def _boundary(c: np.ndarray, lay: _Layout, last_column: bool, out: np.ndarray, tmp: np.ndarray) -> None:
    """DAVIS boundary map of the packed chunk ``c`` (flat) into ``out`` (flat); ``tmp`` is scratch of the same size.

    ``last_column``: the chunk's last column is the image's last column (the toolkit's last-column rule applies).
    """
    n, s = lay.size, lay.stride
    # c ^ right | c ^ below | c ^ below-right = x | y | x_below with x = c ^ right, y = c ^ below, because
    # c ^ below-right = y ^ x_below and y | (y ^ z) = y | z.
    m = n - 1 - s
    x, y = tmp[: n - 1], out[:m]
    np.bitwise_xor(c[:-1], c[1:], out=x)
    np.bitwise_xor(c[:m], c[s : s + m], out=y)
    np.bitwise_or(y, x[:m], out=y)
    np.bitwise_or(y, x[s : s + m], out=y)
    out[m:] = 0  # the last packed row of the chunk: bottom halo, never read

    b3, c3 = out.reshape(lay.frames, lay.rows, s), c.reshape(lay.frames, lay.rows, s)
    b3[:, :, s - 1] = 0  # the padding column just left of the next row (its right neighbour is that row's x = 0)
    x_last = lay.width - 1
    if last_column:  # the toolkit's last column: only the pixel below counts
        np.bitwise_xor(c3[:, :-1, x_last], c3[:, 1:, x_last], out=b3[:, :-1, x_last])
    for bit in range(_BITS):
        keep = np.uint8(0xFF ^ (1 << bit))
        j = lay.height - 1 - bit * lay.band  # the image's last row: only the pixel to the right counts
        if -lay.halo <= j < lay.band + lay.halo:
            row = c3[:, lay.halo + j]
            right = np.zeros_like(row)
            right[:, :-1] = row[:, 1:]
            b3[:, lay.halo + j] = (b3[:, lay.halo + j] & keep) | ((row ^ right) & ~keep)
            if last_column:  # the bottom-right corner is never a boundary pixel
                b3[:, lay.halo + j, x_last] &= keep
        j = -1 - bit * lay.band  # the row above the image (only set by the generic rule)
        if -lay.halo <= j:
            b3[:, lay.halo + j] &= keep


def _extend(x: np.ndarray, length: int, have: int, want: int, step: int, owned: bool, buf: np.ndarray):
    """Grow the one-sided offsets of ``x[:length]`` from ``{0..have}·step`` to ``{0..want}·step`` by doubling
    (``x | x[k:]``); the first write goes to ``buf`` unless ``x`` already lies there (``owned``).

    Returns ``(array, length)``; element ``i`` keeps standing for position ``i``.
    """
    while have < want:
        k = min(have + 1, want - have)
        length -= k * step
        target = x if owned else buf
        np.bitwise_or(x[:length], x[k * step : k * step + length], out=target[:length])
        x, owned, have = target, True, have + k
    return x, length


def _dilate(src: np.ndarray, rows: list[tuple[int, int, int]], stride: int,
            bufs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, int]:
    """Dilation of the packed boundary ``src`` (flat) by the footprint described by ``rows`` (:func:`disk_rows`):
    ``(q, shift)`` with ``q[i] = OR_{(dy, dx) in footprint} src[i + shift + dy * stride + dx]``.

    The horizontal runs ``[0, 2w]`` are grown from one width to the next (one doubling chain); each run is then
    stretched over its ``hi - lo + 1`` consecutive rows and ORed into the result at rows ``+lo`` and ``-hi``.
    Every array ``x`` carries a ``shift``: its element ``i`` stands for pixel position ``i + shift``.
    """
    level_buf, run_buf, out_buf = bufs
    level, level_len, level_width, level_owned = src, src.size, 0, False
    q, q_len, q_shift, q_owned = None, 0, 0, False
    for w, lo, hi in rows:
        level, level_len = _extend(level, level_len, 2 * level_width, 2 * w, 1, level_owned, level_buf)
        level_owned, level_width = level_owned or w > level_width, w
        run, run_len = _extend(level, level_len, 0, hi - lo, stride, False, run_buf)  # rows [0, hi - lo]
        for shift in sorted({w - lo * stride, w + hi * stride}):  # placed at rows [lo, hi] and [-hi, -lo]
            if q is None:
                q, q_len, q_shift = run, run_len, shift
                continue
            if shift > q_shift:  # align both on the larger shift
                q, q_len, q_shift = q[shift - q_shift :], q_len - (shift - q_shift), shift
            lag = q_shift - shift
            q_len = min(q_len, run_len - lag)
            target = q if q_owned else out_buf
            np.bitwise_or(q[:q_len], run[lag : lag + q_len], out=target[:q_len])
            q, q_owned = target, True
    return q[:q_len], q_shift


# ------------------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------------------


def boundary_maps(mask: np.ndarray) -> np.ndarray:
    """DAVIS boundary maps of ``[T, H, W] bool`` masks as ``[T, H, W] bool`` (see ``metrics.seg2bmap``)."""
    t, h, w = mask.shape
    lay = _layout(t, h, w, halo=1)
    packed = np.zeros(lay.size, dtype=np.uint8)
    _pack(mask, lay, packed.reshape(t, lay.rows, lay.stride), np.empty(lay.size, dtype=np.uint8))
    bmap = np.empty_like(packed)
    _boundary(packed, lay, True, bmap, np.empty_like(packed))
    return _unpack(bmap.reshape(t, lay.rows, lay.stride), lay)


def frame_counts(pred: np.ndarray, gt: np.ndarray, footprint: np.ndarray | None) -> FrameCounts:
    """Per-frame counts of two ``[T, H, W] bool`` stacks; boundary counts only if a ``footprint`` (the tolerance
    disk, ``[2r+1, 2r+1] bool``) is given, else they are 0."""
    t, h, w = pred.shape
    radius = 0 if footprint is None else footprint.shape[0] // 2
    full = _layout(1, h, w, halo=0 if footprint is None else radius + 1)
    per_chunk = max(1, _CHUNK_BYTES // (full.rows * full.stride))
    work = [np.zeros(min(per_chunk, t) * full.rows * full.stride, dtype=np.uint8) for _ in range(7)]
    counts = np.zeros((6, t), dtype=np.int64)
    rows = None if footprint is None else disk_rows(footprint)
    for t0 in range(0, t, per_chunk):
        t1 = min(t0 + per_chunk, t)
        counts[:, t0:t1] = _chunk_counts(pred[t0:t1], gt[t0:t1], full._replace(frames=t1 - t0), rows, work)
    return FrameCounts(*counts)


def _chunk_counts(pred: np.ndarray, gt: np.ndarray, lay: _Layout, footprint_rows: list[tuple[int, int, int]] | None,
                  work: list[np.ndarray]) -> np.ndarray:
    """``[6, frames]`` counts (the :class:`FrameCounts` fields) of one chunk."""
    counts = np.zeros((6, lay.frames), dtype=np.int64)
    packed = [work[0][: lay.size], work[1][: lay.size]]
    for mask, flat in zip((pred, gt), packed):
        _pack(mask, lay, flat.reshape(lay.frames, lay.rows, lay.stride), work[6])
    pred_rows, gt_rows = lay.interior(packed[0]), lay.interior(packed[1])
    rows = work[6][: lay.frames * lay.band * lay.stride].reshape(lay.frames, lay.band * lay.stride)
    counts[0] = _count_frames(np.bitwise_and(pred_rows, gt_rows, out=rows))
    counts[1] = _count_frames(np.bitwise_or(pred_rows, gt_rows, out=rows))
    if footprint_rows is None or not counts[1].any():
        return counts

    # Crop the columns to those holding a pixel of either mask, plus the one on their left (a background pixel
    # there is a boundary pixel when its right neighbour is set); nothing outside can be a boundary pixel.
    words = np.bitwise_or.reduce(rows.view(np.uint64).reshape(-1, lay.stride // 8), axis=0)
    used = np.flatnonzero(words.view(np.uint8)[: lay.width])
    x0, x1 = max(int(used[0]) - 1, 0), int(used[-1]) + 1
    crop = _layout(lay.frames, lay.height, x1 - x0, lay.halo)
    if crop.stride < lay.stride:
        cropped = [work[2][: crop.size], work[3][: crop.size]]
        for src, dst in zip(packed, cropped):
            dst3 = dst.reshape(crop.frames, crop.rows, crop.stride)
            dst3[:, :, : crop.width] = src.reshape(lay.frames, lay.rows, lay.stride)[:, :, x0:x1]
            dst3[:, :, crop.width :] = 0
        packed, scratch = cropped, work[:2]
    else:
        crop, scratch = lay, work[2:4]

    bounds = [work[4][: crop.size], work[5][: crop.size]]
    for c, b in zip(packed, bounds):
        _boundary(c, crop, x1 == lay.width, b, scratch[0][: crop.size])
    counts[2] = _count_frames(crop.interior(bounds[0]))
    counts[3] = _count_frames(crop.interior(bounds[1]))
    bufs = (scratch[0][: crop.size], scratch[1][: crop.size], packed[0])
    for k, (src, dst) in enumerate(((bounds[0], bounds[1]), (bounds[1], bounds[0]))):
        if counts[2 + k].any() and counts[3 - k].any():
            dilated, shift = _dilate(dst, footprint_rows, crop.stride, bufs)
            both = bufs[0][: crop.frames * crop.band * crop.stride].reshape(crop.frames, -1)  # free again
            np.bitwise_and(crop.interior(src), crop.interior(dilated, shift), out=both)
            counts[4 + k] = _count_frames(both)
    return counts
