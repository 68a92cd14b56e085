# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The SAM2 service as a Ray actor (`Sam2ServiceActor`) and its reliable client wrapper (`Sam2Service`).

Needs the ``ray`` extra. The actor is async (``max_concurrency`` > 1): concurrent ``submit`` calls are
grouped by a :class:`~videoseg_reward.batching.MicroBatcher` and run on one worker thread holding a
:class:`~videoseg_reward.scorer.Sam2Scorer`.

Reliability (:class:`Sam2Service`):

* Every request has a ``request_id``; the actor never computes an id twice (in-flight joins, completed ids
  answer from a cache), so retrying after a timeout or a lost reply is safe.
* If the actor dies (crash, ``ray.kill``), in-flight calls fail with ``RayActorError``; the wrapper waits
  for Ray's restart (``max_restarts``) or recreates the named actor, re-pushes the last decoder weights it
  sent (a restarted actor reloads the checkpoint, version 0), and retries each failed request up to
  ``max_retries`` times. A request that still fails raises :class:`Sam2ServiceError` naming its id: nothing
  is dropped silently. (The completed-ids cache lives in the actor process, so a request that was computed
  but whose reply was lost in a crash is computed again by the new actor.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from videoseg_reward.batching import CompletedCache, MicroBatcher, process_batch
from videoseg_reward.schemas import Prompts, SegmentRequest, SegmentResult, as_prompts

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "videoseg_reward"
"""Ray namespace of named service actors."""


class Sam2ServiceError(RuntimeError):
    """A request failed for a service reason (actor died, timed out) after exhausting its retries."""

    def __init__(self, request_id: str, attempts: int, cause: BaseException):
        super().__init__(f"SAM2 service request {request_id} failed after {attempts} attempt(s): "
                         f"{type(cause).__name__}: {cause}")
        self.request_id, self.attempts, self.cause = request_id, attempts, cause


class _Sam2ServiceActorImpl:
    """Actor body: a scorer + micro-batcher. Construct through :class:`Sam2Service` (or ``Sam2ServiceActor``)."""

    def __init__(self, checkpoint: str, *, config: str | None = None, image_size: int | None = None,
                 device: str = "auto", video_roots: Sequence[str] | None = None, feature_cache_frames: int = 64,
                 batch_window_ms: float = 5.0, max_batch: int = 16, completed_capacity: int = 256):
        from videoseg_reward.scorer import Sam2Scorer

        self.scorer = Sam2Scorer(checkpoint, config=config, image_size=image_size, device=device,
                                 video_roots=video_roots, feature_cache_frames=feature_cache_frames)
        self.batcher = MicroBatcher(lambda reqs: process_batch(self.scorer, reqs), window_s=batch_window_ms / 1e3,
                                    max_batch=max_batch, completed=CompletedCache(completed_capacity))

    async def submit(self, request: SegmentRequest) -> Any:
        """Run one request (``segment`` or ``score`` by ``request.is_score``), batched with concurrent ones."""
        if not isinstance(request, SegmentRequest):
            raise TypeError(f"expected a SegmentRequest, got {type(request).__name__}")
        return await self.batcher.submit(request)

    async def update_decoder_weights(self, state_dict: Mapping[str, Any], version: int) -> int:
        """See :meth:`Sam2Scorer.update_decoder_weights` (runs between batches)."""
        return await self.batcher.run_exclusive(lambda: self.scorer.update_decoder_weights(state_dict, version))

    async def version(self) -> int:
        """Current decoder-weights version."""
        return self.scorer.version

    async def stats(self) -> dict[str, Any]:
        """Batcher and scorer counters, plus the actor's process id."""
        return {**self.batcher.stats, **{f"scorer_{k}": v for k, v in self.scorer.stats.items()},
                "completed_cached": len(self.batcher.completed), "pid": os.getpid()}

    async def ping(self) -> int:
        """Liveness check; returns the process id."""
        await asyncio.sleep(0)
        return os.getpid()


Sam2ServiceActor = ray.remote(max_concurrency=64)(_Sam2ServiceActorImpl)
"""The Ray actor class (``ray.remote`` applied; resources are set per instance by :class:`Sam2Service`)."""


def _default_num_gpus() -> float:
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


class Sam2Service:
    """Client wrapper of a named :data:`Sam2ServiceActor`: creates/gets it, retries, re-pushes weights.

    Use :meth:`get_or_create`. Blocking methods (call from a driver or a Ray task, not from inside an async
    actor's event loop).
    """

    def __init__(self, name: str, *, namespace: str = DEFAULT_NAMESPACE, actor_kwargs: Mapping[str, Any] | None = None,
                 actor_options: Mapping[str, Any] | None = None, max_retries: int = 2, retry_backoff_s: float = 0.5,
                 call_timeout_s: float | None = None):
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.name, self.namespace = name, namespace
        self.actor_kwargs = dict(actor_kwargs or {})
        self.actor_options = dict(actor_options or {})
        self.max_retries, self.retry_backoff_s, self.call_timeout_s = max_retries, retry_backoff_s, call_timeout_s
        self._handle = None
        self._last_weights: tuple[dict[str, Any], int] | None = None

    @classmethod
    def get_or_create(cls, name: str, checkpoint: str | os.PathLike | None = None, *, config: str | None = None,
                      image_size: int | None = None, device: str = "auto", video_roots: Sequence[str] | None = None,
                      feature_cache_frames: int = 64, batch_window_ms: float = 5.0, max_batch: int = 16,
                      completed_capacity: int = 256, namespace: str = DEFAULT_NAMESPACE, num_gpus: float | None = None,
                      num_cpus: float | None = None, max_restarts: int = 3, max_retries: int = 2,
                      retry_backoff_s: float = 0.5, call_timeout_s: float | None = None) -> Sam2Service:
        """Connect to the named actor, creating it (``checkpoint`` required then) if it does not exist.

        Resources default to ``num_gpus=1`` when the Ray cluster has a GPU, else ``num_cpus=1``.
        ``max_restarts`` is Ray's automatic restart budget; ``max_retries`` bounds the retries of each request.
        """
        gpus = _default_num_gpus() if num_gpus is None else float(num_gpus)
        options = {"num_gpus": gpus, "num_cpus": num_cpus if num_cpus is not None else (0 if gpus else 1),
                   "max_restarts": max_restarts, "max_task_retries": 0}
        kwargs = {"config": config, "image_size": image_size, "device": device,
                  "video_roots": list(video_roots) if video_roots is not None else None,
                  "feature_cache_frames": feature_cache_frames, "batch_window_ms": batch_window_ms,
                  "max_batch": max_batch, "completed_capacity": completed_capacity}
        service = cls(name, namespace=namespace, actor_kwargs={"checkpoint": os.fspath(checkpoint) if checkpoint
                                                               else None, **kwargs},
                      actor_options=options, max_retries=max_retries, retry_backoff_s=retry_backoff_s,
                      call_timeout_s=call_timeout_s)
        service.handle()
        return service

    # ----------------------------------------------------------------------------------------------------------

    def handle(self) -> Any:
        """The actor handle (looked up by name, or created when absent and a checkpoint is known)."""
        if self._handle is not None:
            return self._handle
        try:
            self._handle = ray.get_actor(self.name, namespace=self.namespace)
        except ValueError:
            if not self.actor_kwargs.get("checkpoint"):
                raise ValueError(f"no SAM2 service actor named {self.name!r} in namespace {self.namespace!r}, "
                                 "and no checkpoint to create one") from None
            kwargs = dict(self.actor_kwargs)
            self._handle = Sam2ServiceActor.options(name=self.name, namespace=self.namespace, get_if_exists=True,
                                                    **self.actor_options).remote(kwargs.pop("checkpoint"), **kwargs)
        return self._handle

    def segment(self, video: Any, prompts: Prompts | Mapping, mode: str, keyframe: int,
                frame_indices: Sequence[int] | None = None, *, inject_per_frame: bool = False,
                request_id: str | None = None) -> SegmentResult:
        """Blocking :meth:`Sam2Scorer.segment` through the actor (with retries)."""
        return self.run([self.make_request(video, prompts, mode, keyframe, frame_indices,
                                           inject_per_frame=inject_per_frame, request_id=request_id)])[0]

    def score(self, video: Any, prompts: Prompts | Mapping, mode: str, keyframe: int, gt_masks: Any,
              frame_indices: Sequence[int] | None = None, *, gt_keyframe: Any = None, inject_per_frame: bool = False,
              request_id: str | None = None) -> dict[str, Any]:
        """Blocking :meth:`Sam2Scorer.score` through the actor (with retries)."""
        return self.run([self.make_request(video, prompts, mode, keyframe, frame_indices, gt_masks=gt_masks,
                                           gt_keyframe=gt_keyframe, inject_per_frame=inject_per_frame,
                                           request_id=request_id)])[0]

    @staticmethod
    def make_request(video: Any, prompts: Prompts | Mapping, mode: str, keyframe: int,
                     frame_indices: Sequence[int] | None = None, *, gt_masks: Any = None, gt_keyframe: Any = None,
                     inject_per_frame: bool = False, request_id: str | None = None) -> SegmentRequest:
        """Build a :class:`SegmentRequest` (``gt_masks`` set -> a ``score`` request)."""
        extra = {"request_id": request_id} if request_id is not None else {}
        return SegmentRequest(video=video, prompts=as_prompts(prompts), mode=mode, keyframe=int(keyframe),
                              frame_indices=tuple(int(i) for i in frame_indices) if frame_indices is not None
                              else None, inject_per_frame=inject_per_frame, gt_masks=gt_masks,
                              gt_keyframe=gt_keyframe, **extra)

    def run(self, requests: Sequence[SegmentRequest], *, return_exceptions: bool = False) -> list[Any]:
        """Submit all requests at once (the actor batches them) and wait, retrying service failures.

        Args:
            requests: :class:`SegmentRequest` objects (distinct ``request_id`` each).
            return_exceptions: put exceptions in the list instead of raising the first one.

        Returns:
            One result per request, in order: :class:`SegmentResult` for ``segment``, a dict for ``score``.

        Raises:
            Sam2ServiceError: a request failed ``max_retries + 1`` times for service reasons.
            ValueError/TypeError/...: the request itself was invalid (raised by the scorer; not retried).
        """
        ids = [r.request_id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("run(): request ids must be distinct within one call")
        outcomes: dict[int, tuple[bool, Any]] = {}
        attempts = dict.fromkeys(range(len(requests)), 0)
        pending = list(range(len(requests)))
        while pending:
            handle = self.handle()
            self._restore_weights(handle)
            refs = {i: handle.submit.remote(requests[i]) for i in pending}
            retry, lost = [], False
            for i, ref in refs.items():
                attempts[i] += 1
                try:
                    outcomes[i] = (True, ray.get(ref, timeout=self.call_timeout_s))
                except (RayActorError, GetTimeoutError) as err:
                    lost = lost or isinstance(err, RayActorError)
                    if attempts[i] > self.max_retries:
                        outcomes[i] = (False, Sam2ServiceError(requests[i].request_id, attempts[i], err))
                    else:
                        logger.warning("SAM2 service request %s failed (%s), retrying", requests[i].request_id,
                                       type(err).__name__)
                        retry.append(i)
                except Exception as err:  # noqa: BLE001 - the request's own error (e.g. ValueError), not retried
                    outcomes[i] = (False, err)
            pending = retry
            if lost:
                self._handle = None  # look the actor up again (restarted, or recreated if it is gone)
            if pending:
                time.sleep(self.retry_backoff_s)
        results = []
        for i in range(len(requests)):
            ok, value = outcomes[i]
            if not ok and not return_exceptions:
                raise value
            results.append(value)
        return results

    def update_decoder_weights(self, state_dict: Mapping[str, Any], version: int) -> int:
        """Push decoder weights (kept here to re-push after an actor restart); returns the new version."""
        sd = {k: v.detach().cpu() if hasattr(v, "detach") else v for k, v in state_dict.items()}
        new_version = ray.get(self.handle().update_decoder_weights.remote(sd, version))
        self._last_weights = (sd, new_version)
        return new_version

    def version(self) -> int:
        """The actor's decoder-weights version."""
        return ray.get(self.handle().version.remote())

    def stats(self) -> dict[str, Any]:
        """The actor's counters (see :meth:`_Sam2ServiceActorImpl.stats`)."""
        return ray.get(self.handle().stats.remote())

    def shutdown(self) -> None:
        """Kill the actor for good (no restart); a later call creates a new one if a checkpoint is known."""
        if self._handle is None:
            try:
                self._handle = ray.get_actor(self.name, namespace=self.namespace)
            except ValueError:
                return
        ray.kill(self._handle, no_restart=True)
        self._handle = None

    def _restore_weights(self, handle: Any) -> None:
        """After a restart the actor is back at version 0: push the last weights again."""
        if self._last_weights is None:
            return
        sd, version = self._last_weights
        try:
            if ray.get(handle.version.remote(), timeout=self.call_timeout_s) < version:
                logger.warning("SAM2 service actor %s lost its decoder weights (restart?); re-pushing version %d",
                               self.name, version)
                ray.get(handle.update_decoder_weights.remote(sd, version), timeout=self.call_timeout_s)
        except (RayActorError, GetTimeoutError) as err:
            logger.warning("could not check/restore decoder weights on %s: %s", self.name, err)
