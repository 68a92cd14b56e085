# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The SAM2 service as a Ray actor (`Sam2ServiceActor`) and its reliable client wrapper (`Sam2Service`).

Needs the ``ray`` extra. The actor is async (``max_concurrency`` > 1): concurrent ``submit`` calls are
grouped by a :class:`~videoseg_reward.batching.MicroBatcher` and run on one worker thread holding a
:class:`~videoseg_reward.scorer.Sam2Scorer`.

Reliability (:class:`Sam2Service`, safe to share between threads):

* Every request has a ``request_id``; the actor never computes an id twice (in-flight joins, completed ids
  answer from a cache), so retrying after a timeout or a lost reply is safe.
* If the actor dies (crash, SIGKILL, ``ray.kill``), in-flight calls fail with ``RayActorError``. One caller
  thread recovers (the others wait for it): it waits until Ray's restart (``max_restarts``) or a recreated
  named actor answers a ping, then re-pushes the last decoder weights once (a restarted actor reloads the
  checkpoint, version 0), and only then are the failed requests resubmitted. A request's retry budget
  (``max_retries``) is charged once per crash it lived through, never for a resubmission to a dead actor.
  A request that still fails raises :class:`Sam2ServiceError` naming its id: nothing is dropped silently.
  (The completed-ids cache lives in the actor process, so a request that was computed but whose reply was
  lost in a crash is computed again by the new actor.)
* The last pushed weights are kept twice: in the handle, and in a small named keeper actor
  (``<name>.weights``) so a handle in another process (the trainer scores, the engine pushes) restores them
  too. :meth:`Sam2Service.connect` returns one handle per actor name and process, so a caller that asks for
  the service at every step still reuses the handle that holds the weights.
* Every call has a time limit (``call_timeout_s``): a hung actor raises :class:`Sam2ServiceError` after
  ``max_retries + 1`` rounds instead of blocking forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
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


class StaleWeightsError(RuntimeError):
    """The actor's decoder weights are older than the caller's last push (it restarted): recover, then resubmit."""


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

    async def submit(self, request: SegmentRequest, min_version: int = 0) -> Any:
        """Run one request (``segment`` or ``score`` by ``request.is_score``), batched with concurrent ones.

        Raises :class:`StaleWeightsError` when the decoder weights are older than ``min_version`` (a restarted
        actor that has not been given its weights back yet), so no answer is computed with the wrong weights.
        """
        if not isinstance(request, SegmentRequest):
            raise TypeError(f"expected a SegmentRequest, got {type(request).__name__}")
        if self.scorer.version < min_version:
            raise StaleWeightsError(f"decoder weights are at version {self.scorer.version}, the caller expects "
                                    f"{min_version} (actor restarted?)")
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


@ray.remote(num_cpus=0, max_restarts=0)
class _WeightsKeeper:
    """Holds the last pushed decoder weights outside the SAM2 actor, so they survive its crashes."""

    def __init__(self):
        self.weights: tuple[dict[str, Any], int] | None = None

    def put(self, state_dict: dict[str, Any], version: int) -> None:
        if self.weights is None or version > self.weights[1]:
            self.weights = (state_dict, version)

    def get(self) -> tuple[dict[str, Any], int] | None:
        return self.weights


def _default_num_gpus() -> float:
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


class Sam2Service:
    """Client wrapper of a named :data:`Sam2ServiceActor`: creates/gets it, retries, re-pushes weights.

    Use :meth:`get_or_create` (driver) or :meth:`connect` (any process, the actor must exist). Both return the
    process's single handle for the actor name. Blocking and thread-safe (call from a driver, worker threads or
    a Ray task, not from inside an async actor's event loop).

    Args:
        name, namespace: the named actor.
        actor_kwargs, actor_options: how to create it when absent (``checkpoint`` in ``actor_kwargs``).
        max_retries: crashes (or call timeouts) a request may live through before it fails.
        retry_backoff_s: pause between liveness probes while the actor restarts.
        call_timeout_s: time limit of one round of calls (and of each control call).
        recovery_timeout_s: how long to wait for a crashed actor to answer again.
    """

    _registry: dict[tuple[str, str], Sam2Service] = {}
    _registry_lock = threading.Lock()

    def __init__(self, name: str, *, namespace: str = DEFAULT_NAMESPACE, actor_kwargs: Mapping[str, Any] | None = None,
                 actor_options: Mapping[str, Any] | None = None, max_retries: int = 2, retry_backoff_s: float = 0.5,
                 call_timeout_s: float = 600.0, recovery_timeout_s: float = 300.0):
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not call_timeout_s > 0 or not recovery_timeout_s > 0:
            raise ValueError(f"call_timeout_s and recovery_timeout_s must be > 0, got {call_timeout_s} and "
                             f"{recovery_timeout_s}")
        self.name, self.namespace = name, namespace
        self.actor_kwargs = dict(actor_kwargs or {})
        self.actor_options = dict(actor_options or {})
        self.max_retries, self.retry_backoff_s = max_retries, retry_backoff_s
        self.call_timeout_s, self.recovery_timeout_s = call_timeout_s, recovery_timeout_s
        self._handle = None
        self._created: list[Any] = []  # handles of actors this object created (kept alive, see _refresh_handle)
        self._keeper_handle = None
        self._last_weights: tuple[dict[str, Any], int] | None = None
        self._generation = 0  # bumped by every completed recovery
        self._lock = threading.Lock()  # the handle
        self._recover_lock = threading.Lock()  # one recovery (and one weight re-push) at a time
        self.counters = {"recoveries": 0, "weight_repushes": 0, "resubmitted": 0}
        """Client-side counters: completed recoveries, weight re-pushes, resubmitted requests."""

    @classmethod
    def connect(cls, name: str, *, namespace: str = DEFAULT_NAMESPACE, **kwargs: Any) -> Sam2Service:
        """This process's handle of the existing actor ``name`` (created on first use, then reused, so it keeps
        the last pushed weights). ``kwargs`` go to the constructor on first use only."""
        with cls._registry_lock:
            service = cls._registry.get((namespace, name))
            if service is None:
                service = cls._registry[(namespace, name)] = cls(name, namespace=namespace, **kwargs)
        return service

    @classmethod
    def get_or_create(cls, name: str, checkpoint: str | os.PathLike | None = None, *, config: str | None = None,
                      image_size: int | None = None, device: str = "auto", video_roots: Sequence[str] | None = None,
                      feature_cache_frames: int = 64, batch_window_ms: float = 5.0, max_batch: int = 16,
                      completed_capacity: int = 256, namespace: str = DEFAULT_NAMESPACE, num_gpus: float | None = None,
                      num_cpus: float | None = None, max_restarts: int = 3, max_retries: int = 2,
                      retry_backoff_s: float = 0.5, call_timeout_s: float = 600.0,
                      recovery_timeout_s: float = 300.0) -> Sam2Service:
        """Connect to the named actor, creating it (``checkpoint`` required then) if it does not exist.

        Returns this process's handle for ``name`` when there already is one (see :meth:`connect`).
        Resources default to ``num_gpus=1`` when the Ray cluster has a GPU, else ``num_cpus=1``.
        ``max_restarts`` is Ray's automatic restart budget; ``max_retries`` bounds the crashes a request may
        live through.
        """
        gpus = _default_num_gpus() if num_gpus is None else float(num_gpus)
        options = {"num_gpus": gpus, "num_cpus": num_cpus if num_cpus is not None else (0 if gpus else 1),
                   "max_restarts": max_restarts, "max_task_retries": 0}
        kwargs = {"config": config, "image_size": image_size, "device": device,
                  "video_roots": list(video_roots) if video_roots is not None else None,
                  "feature_cache_frames": feature_cache_frames, "batch_window_ms": batch_window_ms,
                  "max_batch": max_batch, "completed_capacity": completed_capacity}
        service = cls.connect(name, namespace=namespace,
                              actor_kwargs={"checkpoint": os.fspath(checkpoint) if checkpoint else None, **kwargs},
                              actor_options=options, max_retries=max_retries, retry_backoff_s=retry_backoff_s,
                              call_timeout_s=call_timeout_s, recovery_timeout_s=recovery_timeout_s)
        service.handle()
        return service

    # ----------------------------------------------------------------------------------------------------------

    def handle(self) -> Any:
        """The actor handle (looked up by name, or created when absent and a checkpoint is known)."""
        with self._lock:
            if self._handle is None:
                self._handle = self._lookup_or_create()
            return self._handle

    def _refresh_handle(self) -> None:
        """Look the actor up again: the same actor while Ray restarts it, a new one once its name is free.

        The old handle is only replaced, never dropped first: a non-detached actor whose handles all go away is
        garbage-collected by Ray, which would turn a restart into a permanent death.
        """
        try:
            fresh = self._lookup_or_create()
        except ValueError:
            return
        with self._lock:
            if self._handle is None or fresh._actor_id != self._handle._actor_id:  # a new actor, not a restart
                self._handle = fresh

    def _lookup_or_create(self) -> Any:
        try:
            return ray.get_actor(self.name, namespace=self.namespace)
        except ValueError:
            if not self.actor_kwargs.get("checkpoint"):
                raise ValueError(f"no SAM2 service actor named {self.name!r} in namespace {self.namespace!r}, "
                                 "and no checkpoint to create one") from None
            kwargs = dict(self.actor_kwargs)
            handle = Sam2ServiceActor.options(name=self.name, namespace=self.namespace, get_if_exists=True,
                                              **self.actor_options).remote(kwargs.pop("checkpoint"), **kwargs)
            self._created.append(handle)  # the owner's handle: while it lives, Ray restarts the actor, never GCs it
            return handle

    def _keeper(self) -> Any:
        """The weights keeper actor (created on first push; its handle is kept so Ray does not collect it)."""
        if self._keeper_handle is None:
            self._keeper_handle = _WeightsKeeper.options(name=f"{self.name}.weights", namespace=self.namespace,
                                                         get_if_exists=True).remote()
        return self._keeper_handle

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
        """Submit all requests at once (the actor batches them) and wait, riding out actor crashes.

        Args:
            requests: :class:`SegmentRequest` objects (distinct ``request_id`` each).
            return_exceptions: put exceptions in the list instead of raising the first one.

        Returns:
            One result per request, in order: :class:`SegmentResult` for ``segment``, a dict for ``score``.

        Raises:
            Sam2ServiceError: a request lived through more than ``max_retries`` crashes or call timeouts, or the
                actor did not come back within ``recovery_timeout_s``.
            ValueError/TypeError/...: the request itself was invalid (raised by the scorer; not retried).
        """
        ids = [r.request_id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("run(): request ids must be distinct within one call")
        outcomes: dict[int, tuple[bool, Any]] = {}
        attempts = dict.fromkeys(range(len(requests)), 0)
        pending = list(range(len(requests)))
        stale_rounds = 0
        while pending:
            generation = self._generation
            try:
                handle = self.handle()
                with self._recover_lock:  # one re-push even when many threads find a restarted actor
                    min_version = self._restore_weights(handle)
            except (RayActorError, GetTimeoutError) as err:  # the actor died before we could submit
                self._recover(generation, err)
                continue
            refs = {i: handle.submit.remote(requests[i], min_version) for i in pending}
            deadline = time.monotonic() + self.call_timeout_s
            retry, crash = [], None
            for i, ref in refs.items():
                try:
                    outcomes[i] = (True, ray.get(ref, timeout=max(deadline - time.monotonic(), 0.0)))
                    continue
                except StaleWeightsError as err:  # restarted under us: part of the crash, not a new attempt
                    crash, stale_rounds = crash or err, stale_rounds + 1
                    if stale_rounds > 10 * (self.max_retries + 1):
                        outcomes[i] = (False, Sam2ServiceError(requests[i].request_id, attempts[i] + 1, err))
                    else:
                        retry.append(i)
                    continue
                except (RayActorError, GetTimeoutError) as err:
                    failure = err
                    crash = crash or (err if isinstance(err, RayActorError) else None)
                except Exception as err:  # noqa: BLE001 - the request's own error (e.g. ValueError), not retried
                    outcomes[i] = (False, err)
                    continue
                attempts[i] += 1  # one crash (or one timed-out round) lived through
                if attempts[i] > self.max_retries:
                    outcomes[i] = (False, Sam2ServiceError(requests[i].request_id, attempts[i], failure))
                else:
                    retry.append(i)
            if crash is not None:
                try:
                    self._recover(generation, crash)
                except Sam2ServiceError as err:
                    for i in retry:
                        outcomes[i] = (False, Sam2ServiceError(requests[i].request_id, attempts[i], err.cause))
                    retry = []
            if retry:
                self.counters["resubmitted"] += len(retry)
                logger.warning("SAM2 service: resubmitting %d request(s) after %s", len(retry),
                               type(crash).__name__ if crash else "a call timeout")
            pending = retry
        results = []
        for i in range(len(requests)):
            ok, value = outcomes[i]
            if not ok and not return_exceptions:
                raise value
            results.append(value)
        return results

    def _recover(self, generation: int, cause: BaseException) -> None:
        """After a crash seen in ``generation``: wait until the actor answers again and restore its weights.

        Exactly one thread does the work per crash; threads that saw the same crash wait for it and return.
        """
        with self._recover_lock:
            if self._generation != generation:
                return  # another thread already recovered from this crash
            deadline = time.monotonic() + self.recovery_timeout_s
            while True:
                try:
                    handle = self.handle()
                    ray.get(handle.ping.remote(), timeout=max(min(self.call_timeout_s, deadline - time.monotonic()),
                                                              0.0))
                    self._restore_weights(handle)
                    break
                except (RayActorError, GetTimeoutError, ValueError) as err:
                    if time.monotonic() > deadline:
                        raise Sam2ServiceError("(recovery)", 1, err) from cause
                    time.sleep(self.retry_backoff_s)
                    self._refresh_handle()
            self._generation += 1
            self.counters["recoveries"] += 1
            logger.warning("SAM2 service actor %s is back after %s", self.name, type(cause).__name__)

    def update_decoder_weights(self, state_dict: Mapping[str, Any], version: int) -> int:
        """Push decoder weights; they are kept (here and in the keeper actor) to re-push after a restart.

        Returns the new version.
        """
        sd = {k: v.detach().cpu() if hasattr(v, "detach") else v for k, v in state_dict.items()}
        with self._recover_lock:  # never interleaved with a recovery's re-push
            new_version = ray.get(self.handle().update_decoder_weights.remote(sd, version),
                                  timeout=self.call_timeout_s)
            self._last_weights = (sd, new_version)
            ray.get(self._keeper().put.remote(sd, new_version), timeout=self.call_timeout_s)
        return new_version

    def version(self) -> int:
        """The actor's decoder-weights version."""
        return ray.get(self.handle().version.remote(), timeout=self.call_timeout_s)

    def stats(self) -> dict[str, Any]:
        """The actor's counters (see :meth:`_Sam2ServiceActorImpl.stats`)."""
        return ray.get(self.handle().stats.remote(), timeout=self.call_timeout_s)

    def shutdown(self) -> None:
        """Kill the actor (and its weights keeper) for good; a later call creates a new one if a checkpoint is
        known."""
        with self._lock:
            handle, self._handle = self._handle, None
        for name in (self.name, f"{self.name}.weights"):
            try:
                actor = handle if (name == self.name and handle is not None) else \
                    ray.get_actor(name, namespace=self.namespace)
            except ValueError:
                continue
            ray.kill(actor, no_restart=True)
        self._last_weights = None
        self._created.clear()
        self._keeper_handle = None
        with Sam2Service._registry_lock:
            if Sam2Service._registry.get((self.namespace, self.name)) is self:
                del Sam2Service._registry[(self.namespace, self.name)]

    def _restore_weights(self, handle: Any) -> int:
        """After a restart the actor is back at version 0: push the last weights (ours or the keeper's) again.
        Returns the version the actor must have (0 when no weights were ever pushed).

        Safe to call from several threads: the push is skipped when the actor already has that version, and a
        concurrent push of a newer version is not an error.
        """
        weights = self._last_weights
        if weights is None:
            try:
                keeper = ray.get_actor(f"{self.name}.weights", namespace=self.namespace)
            except ValueError:
                return 0  # nothing was ever pushed
            weights = ray.get(keeper.get.remote(), timeout=self.call_timeout_s)
            if weights is None:
                return 0
        sd, version = weights
        if ray.get(handle.version.remote(), timeout=self.call_timeout_s) >= version:
            return version
        logger.warning("SAM2 service actor %s lost its decoder weights (restart?); re-pushing version %d",
                       self.name, version)
        try:
            ray.get(handle.update_decoder_weights.remote(sd, version), timeout=self.call_timeout_s)
            self.counters["weight_repushes"] += 1
        except ValueError:
            if ray.get(handle.version.remote(), timeout=self.call_timeout_s) < version:
                raise  # not a race with another push: a real error
        return version
