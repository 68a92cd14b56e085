# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Request batching and idempotency for the SAM2 service (no Ray here; :mod:`videoseg_reward.actor` wraps it).

* :class:`MicroBatcher` collects requests from concurrent callers for ``window_s`` (or until ``max_batch``
  are pending) and hands them to a processing function as one batch, on a single worker thread, so the
  event loop stays free to accept the next requests while a batch runs.
* Every request carries a ``request_id``. A request whose id is already in flight joins that computation;
  a request whose id has completed gets the cached outcome (result or exception) from
  :class:`CompletedCache`. So a retry after a lost reply never computes twice (within one process: the
  cache does not survive an actor restart).
* A caller that stops waiting (its ``submit`` is cancelled: a timeout or a client disconnect) withdraws its
  request: a queued request is dropped, a running one is flagged so the scorer stops at the next frame
  (:meth:`MicroBatcher.is_cancelled`). Joined callers keep the computation alive until the last one leaves.
  ``max_queue`` bounds the requests queued or running (:class:`QueueFullError` beyond, HTTP 503).
* :func:`process_batch` runs a batch on a :class:`~videoseg_reward.scorer.Sam2Scorer`: requests on the same
  video are grouped and the union of their frames is encoded once (batched) before the requests run;
  image-mode requests with embedding or box prompts on the same video are decoded together as one
  multi-object call (one mask-decoder pass per frame for the whole group) and split again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """More requests are queued or running than the batcher's ``max_queue`` (the HTTP app answers 503)."""


class RequestCancelled(RuntimeError):
    """Every caller of a request stopped waiting before it ran to the end (never cached as an outcome)."""


def _approx_nbytes(value: Any) -> int:
    """Rough size of a cached outcome (mask arrays dominate; everything else counts 1 KiB)."""
    total = 1024
    for attr in ("masks", "keyframe_masks"):
        arr = getattr(value, attr, None)
        total += int(getattr(arr, "nbytes", 0))
    return total


class CompletedCache:
    """LRU map ``request_id -> (ok, value)`` bounded by entry count and approximate bytes.

    Args:
        capacity: most entries kept.
        max_bytes: most approximate bytes kept (mask arrays of :class:`SegmentResult` values).
    """

    def __init__(self, capacity: int = 256, max_bytes: int = 1 << 30):
        if capacity < 1 or max_bytes < 1:
            raise ValueError(f"capacity and max_bytes must be >= 1, got {capacity} and {max_bytes}")
        self.capacity, self.max_bytes = capacity, max_bytes
        self._items: OrderedDict[str, tuple[bool, Any, int]] = OrderedDict()
        self._bytes = 0

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, request_id: str) -> tuple[bool, Any]:
        """``(ok, value)``: ``ok`` False means ``value`` is the exception the request raised."""
        ok, value, _ = self._items[request_id]
        self._items.move_to_end(request_id)
        return ok, value

    def put(self, request_id: str, ok: bool, value: Any) -> None:
        """Store an outcome, evicting the oldest entries beyond the limits (the newest is always kept)."""
        if request_id in self._items:
            self._bytes -= self._items.pop(request_id)[2]
        size = _approx_nbytes(value) if ok else 1024
        self._items[request_id] = (ok, value, size)
        self._bytes += size
        while len(self._items) > 1 and (len(self._items) > self.capacity or self._bytes > self.max_bytes):
            self._bytes -= self._items.popitem(last=False)[1][2]


class MicroBatcher:
    """Group concurrent ``submit`` calls into batches processed on one worker thread.

    Args:
        process: ``list[request] -> list[result | Exception]`` (same length and order); runs on the worker
            thread; an exception for one item is delivered to that item's caller only.
        key: request -> request id (idempotency key).
        window_s: how long the first request of a batch waits for company.
        max_batch: most requests per batch.
        completed: the cache of finished outcomes (a new :class:`CompletedCache` by default).
        max_queue: most distinct requests queued or running at once (``None`` = unbounded); a new request
            beyond it raises :class:`QueueFullError` at once.
    """

    def __init__(self, process: Callable[[list[Any]], list[Any]], *, key: Callable[[Any], str] = lambda r: r.request_id,
                 window_s: float = 0.005, max_batch: int = 16, completed: CompletedCache | None = None,
                 max_queue: int | None = None):
        if window_s < 0 or max_batch < 1 or (max_queue is not None and max_queue < 1):
            raise ValueError(f"window_s must be >= 0 and max_batch, max_queue >= 1, got {window_s}, {max_batch} "
                             f"and {max_queue}")
        self.process, self.key, self.window_s, self.max_batch = process, key, window_s, max_batch
        self.max_queue = max_queue
        self.completed = completed or CompletedCache()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam2-batch")
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._inflight: dict[str, asyncio.Future] = {}
        self._waiters: dict[str, int] = {}
        self._cancelled: set[str] = set()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self.stats = {"submitted": 0, "batches": 0, "computed": 0, "max_batch_size": 0, "cache_hits": 0,
                      "joined_inflight": 0, "started": 0, "cancelled": 0, "rejected_full": 0}

    @property
    def depth(self) -> int:
        """Distinct requests queued or running."""
        return len(self._inflight)

    def is_cancelled(self, request_id: str) -> bool:
        """True once every caller of ``request_id`` has stopped waiting (thread-safe read; poll it while working)."""
        return request_id in self._cancelled

    async def submit(self, request: Any) -> Any:
        """Process ``request`` (batched with concurrent ones) and return its result or raise its exception.

        Cancelling the awaiting task withdraws the request once no other caller waits for the same id.

        Raises:
            QueueFullError: ``max_queue`` requests are already queued or running.
        """
        self.stats["submitted"] += 1
        rid = self.key(request)
        if rid in self.completed:
            self.stats["cache_hits"] += 1
            return self._unwrap(*self.completed.get(rid))
        future = self._inflight.get(rid)
        if future is not None:
            self.stats["joined_inflight"] += 1
        else:
            if self.max_queue is not None and len(self._inflight) >= self.max_queue:
                self.stats["rejected_full"] += 1
                raise QueueFullError(f"{len(self._inflight)} requests are queued or running; the limit is "
                                     f"{self.max_queue}")
            future = asyncio.get_running_loop().create_future()
            self._inflight[rid] = future
            self._pending.append((request, future))
            self._ensure_worker()
            self._wakeup.set()
        self._waiters[rid] = self._waiters.get(rid, 0) + 1
        try:
            ok, value = await asyncio.shield(future)
        except asyncio.CancelledError:
            self._withdraw(rid, future)
            raise
        finally:
            left = self._waiters.get(rid, 1) - 1
            if left > 0:
                self._waiters[rid] = left
            else:
                self._waiters.pop(rid, None)
        return self._unwrap(ok, value)

    def _withdraw(self, rid: str, future: asyncio.Future) -> None:
        """The last caller of ``rid`` left: drop it from the queue, or flag it so the running batch stops it."""
        if self._waiters.get(rid, 0) > 1 or future.done():
            return
        self.stats["cancelled"] += 1
        queued = [i for i, (r, _) in enumerate(self._pending) if self.key(r) == rid]
        if queued:
            del self._pending[queued[0]]
            self._inflight.pop(rid, None)
            future.set_result((False, RequestCancelled(f"request {rid} was withdrawn before it ran")))
        else:
            self._cancelled.add(rid)

    async def run_exclusive(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the worker thread, between batches (e.g. a weight update)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    @staticmethod
    def _unwrap(ok: bool, value: Any) -> Any:
        if ok:
            return value
        raise value

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.window_s and len(self._pending) < self.max_batch:
                await asyncio.sleep(self.window_s)
            while self._pending:
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                self.stats["batches"] += 1
                self.stats["started"] += len(batch)
                self.stats["max_batch_size"] = max(self.stats["max_batch_size"], len(batch))
                requests = [r for r, _ in batch]
                try:
                    outcomes = await loop.run_in_executor(self.executor, self._process_safe, requests)
                except asyncio.CancelledError:
                    for request, future in batch:
                        self._inflight.pop(self.key(request), None)
                        if not future.done():
                            future.set_exception(RuntimeError("batch cancelled (service shutting down)"))
                    raise
                for (request, future), (ok, value) in zip(batch, outcomes, strict=True):
                    rid = self.key(request)
                    if not isinstance(value, RequestCancelled) and rid not in self._cancelled:
                        self.completed.put(rid, ok, value)
                    self._cancelled.discard(rid)
                    self._inflight.pop(rid, None)
                    if not future.done():
                        future.set_result((ok, value))

    def _process_safe(self, requests: list[Any]) -> list[tuple[bool, Any]]:
        """Run ``process`` and turn its outputs into ``(ok, value)`` pairs; a crash fails the whole batch."""
        try:
            results = self.process(requests)
            if len(results) != len(requests):
                raise RuntimeError(f"batch processor returned {len(results)} results for {len(requests)} requests")
        except Exception as err:  # noqa: BLE001 - delivered to every caller of the batch
            logger.exception("SAM2 batch of %d requests failed", len(requests))
            return [(False, err)] * len(requests)
        self.stats["computed"] += len(requests)
        return [(not isinstance(r, BaseException), r) for r in results]


def _needed_frames(request: Any) -> list[int] | None:
    """Frames a request touches (``None`` = the whole video)."""
    if request.frame_indices is None:
        return None
    return sorted({int(i) for i in request.frame_indices} | {int(request.keyframe)})


MERGEABLE_PROMPTS = ("embedding", "box")
"""Prompt kinds whose image-mode requests on one video are decoded together (every frame is decoded on its own
with the same prompt, so one multi-object call gives each request its own masks; only float rounding differs, which
can flip a pixel whose logit is within ~1e-6 of 0)."""


def process_batch(scorer: Any, requests: Sequence[Any], *, merge: bool = True,
                  should_stop: Callable[[Any], bool] | None = None) -> list[Any]:
    """Run ``segment``/``score`` requests on a :class:`~videoseg_reward.scorer.Sam2Scorer`.

    Requests are grouped by video; each group's frames are encoded together first (one batched pass when they
    fit in the feature cache). With ``merge``, image-mode requests with :data:`MERGEABLE_PROMPTS` of a group run
    as one multi-object ``segment`` over the union of their frames and are split again; the others run one by
    one and hit the cache. ``should_stop(request)`` is polled between frames (a cancelled request stops).
    Returns one result or exception per request, in order.
    """
    results: list[Any] = [None] * len(requests)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, request in enumerate(requests):
        try:
            groups[scorer.video_key(request.video)].append(i)
        except Exception as err:  # noqa: BLE001 - the request's own outcome
            results[i] = err
    for idxs in groups.values():
        wanted = [_needed_frames(requests[i]) for i in idxs]
        if len(idxs) > 1 and all(w is not None for w in wanted):
            frames = sorted(set().union(*wanted))
            if len(frames) <= scorer.feature_cache_frames:
                try:
                    scorer.prefetch(requests[idxs[0]].video, frames,
                                    should_stop=_all_stopped([requests[i] for i in idxs], should_stop))
                except Exception as err:  # noqa: BLE001 - each request below reports its own error precisely
                    logger.debug("prefetch skipped: %s", err)
        mergeable = [i for i in idxs if merge and _mergeable(requests[i])]
        if len(mergeable) > 1:
            for i, outcome in zip(mergeable, _run_merged(scorer, [requests[i] for i in mergeable], should_stop),
                                  strict=True):
                results[i] = outcome
        for i in idxs:
            if results[i] is None:
                results[i] = _run_one(scorer, requests[i], should_stop)
    return results


def _mergeable(request: Any) -> bool:
    return request.mode == "image" and request.prompts.kind in MERGEABLE_PROMPTS and not request.inject_per_frame


def _all_stopped(requests: Sequence[Any], should_stop: Callable[[Any], bool] | None) -> Callable[[], bool] | None:
    if should_stop is None:
        return None
    return lambda: all(should_stop(r) for r in requests)


def _run_merged(scorer: Any, requests: Sequence[Any], should_stop: Callable[[Any], bool] | None) -> list[Any]:
    """Image-mode requests of one video as one multi-object call; ``None`` for a request to run on its own."""
    from videoseg_reward.masks import score_masks
    from videoseg_reward.schemas import Prompts, SegmentResult, check_frame_indices

    num_frames = scorer.probe(requests[0].video)[0]
    valid, outcomes = [], [None] * len(requests)
    for j, r in enumerate(requests):
        try:
            check_frame_indices(r.frame_indices, num_frames)
            if isinstance(r.keyframe, bool) or not 0 <= int(r.keyframe) < num_frames:
                raise ValueError("keyframe out of range")
            valid.append(j)
        except (ValueError, TypeError):
            pass  # runs alone and gets its own precise error
    kinds = {requests[j].prompts.kind for j in valid}
    if len(valid) < 2 or len(kinds) != 1:
        return outcomes
    group = [requests[j] for j in valid]
    if any(r.frame_indices is None for r in group):
        union = None
    else:
        union = sorted(set().union(*({int(i) for i in r.frame_indices} | {int(r.keyframe)} for r in group)))
    field = "embeddings" if kinds == {"embedding"} else "boxes"
    stacked = np.concatenate([getattr(r.prompts, field) for r in group])
    prompts = Prompts("embedding", embeddings=stacked) if field == "embeddings" else Prompts("box", boxes=stacked)
    try:
        merged = scorer.segment(group[0].video, prompts, "image", int(group[0].keyframe), union,
                                should_stop=_all_stopped(group, should_stop))
    except Exception as err:  # noqa: BLE001 - each request then runs alone for its own precise outcome
        logger.debug("merged image-mode call failed (%s); running the requests one by one", err)
        return outcomes
    position = {f: k for k, f in enumerate(merged.frame_indices)}
    start = 0
    for j, r in zip(valid, group, strict=True):
        n = r.prompts.num_objects
        own = merged.masks[start:start + n]
        start += n
        frames = tuple(int(i) for i in r.frame_indices) if r.frame_indices is not None else tuple(range(num_frames))
        result = SegmentResult(masks=own[:, [position[f] for f in frames]],
                               keyframe_masks=own[:, position[int(r.keyframe)]], frame_indices=frames,
                               keyframe=int(r.keyframe), mode="image", model_version=merged.model_version)
        try:
            outcomes[j] = score_masks(result, r.gt_masks, r.gt_keyframe) if r.is_score else result
        except Exception as err:  # noqa: BLE001 - this request's own outcome (e.g. malformed GT)
            outcomes[j] = err
    return outcomes


def _run_one(scorer: Any, request: Any, should_stop: Callable[[Any], bool] | None = None) -> Any:
    stop = (lambda: should_stop(request)) if should_stop is not None else None
    try:
        if request.is_score:
            return scorer.score(request.video, request.prompts, request.mode, request.keyframe, request.gt_masks,
                                request.frame_indices, gt_keyframe=request.gt_keyframe,
                                inject_per_frame=request.inject_per_frame, should_stop=stop)
        return scorer.segment(request.video, request.prompts, request.mode, request.keyframe, request.frame_indices,
                              inject_per_frame=request.inject_per_frame, should_stop=stop)
    except Exception as err:  # noqa: BLE001 - returned to (and raised for) this request's caller
        return err
