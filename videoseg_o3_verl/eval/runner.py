# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`videoseg-o3 eval`: evaluate a policy on a parquet of RVOS records and write the result files.

Work is split per expression (`predict.evaluate_record`, a pure function of (models, record)) and runs in this
process or on a Ray actor pool (one policy replica per actor, one GPU each when the cluster has GPUs). Every
finished expression is appended to `predictions.jsonl` at once, so an interrupted run continues with `--resume`
(finished expressions are skipped). At the end the files of the run are (re)built from that journal:

- `results.json`: `{video: {expression_id: {"prediction_masks": [RLE per frame], "text_prediction",
  "num_rounds", "keyframe_index", "frames", ...}}}` (error rows: `{"error": ..., "frames": [...]}`);
- `metrics.json`: the dataset table in percent (`videoseg_reward.benchmarks.score`), plus counts, and the mean of
  each per-episode metric (`videoseg_o3_verl.eval.episode_metrics`) with its seeded 95 % bootstrap interval;
- `conversations.jsonl`: per expression, the query and every turn (text, action, frames shown next);
- `report.html`: for a sample of videos, the turns, the frames shown, the selections and the final overlays;
- with `submit`: `Annotations/<video>/<expression>/<frame>.png` (0/255) and `submission.zip`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from videoseg_o3_verl.data.parquet import read_parquet_records
from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.env import EnvConfig
from videoseg_o3_verl.env.config import MODES
from videoseg_o3_verl.eval.fixed_guess import FIXED_GUESS_MASKS

logger = logging.getLogger(__name__)

JOURNAL = "predictions.jsonl"
"""One JSON line per finished expression (the resume journal)."""

RESUME_KEYS = ("model", "seg_head", "sam2", "data", "dataset", "dtype", "released_inputs", "fixed_guess",
               "env_protocol", "env", "reward_parity")
"""Settings a resumed run must share with the run that wrote the journal (else rows would mix two evaluations)."""


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run (the CLI flags and the `recipes/eval_*.yaml` keys)."""

    model: str
    """HF Qwen-VL directory: a training checkpoint's `actor/huggingface`, a converted released checkpoint, or the
    tiny model."""
    sam2: str
    """SAM2 checkpoint (`.pt`) for the frame encoder and the propagation."""
    data: str
    """Parquet of RVOS records (`videoseg-o3 data`)."""
    output_dir: str
    """Where the result files go."""
    seg_head: str | None = None
    """Seg head directory; default: found next to `model`, else built from `sam2` with a seeded projection."""
    dataset: str | None = None
    """Benchmark whose metrics and table are computed (`revos`, `mevis`, `refdavis`, `refsav`, `reasonvos`,
    `longrvos`, `groundmore`, ...); default: the records' dataset."""
    limit: int | None = None
    """Evaluate only the first N expressions."""
    backend: Literal["hf", "vllm"] = "hf"
    """Generation backend: "hf" (Hugging Face `generate`, CPU or GPU) or "vllm" (a vLLM engine in this process,
    needs vLLM installed; the [SEG] hidden state still comes from one HF forward pass)."""
    resume: bool = False
    """Skip expressions already in the journal of `output_dir`."""
    submit: bool = False
    """Also write the server submission (PNG masks, zipped)."""
    num_workers: int = 0
    """0: evaluate in this process; N > 0: a Ray actor pool of N policy replicas; -1: one per GPU of the cluster."""
    device: str | None = None
    """Device of the in-process worker ("cpu", "cuda"); default cuda when available. Ray actors use their GPU."""
    dtype: str = "float32"
    """Policy weights dtype ("float32", "bfloat16")."""
    released_inputs: bool = True
    """Feed the inputs exactly as the released eval did (`EnvConfig.eval(released_inputs=...)`)."""
    report_videos: int = 4
    """Videos shown in `report.html`."""
    fixed_guess: str | None = None
    """Evaluate the fixed-guess baseline instead of a model: its constant mask, "empty" or "full"
    (`videoseg_o3_verl.eval.fixed_guess`); `model` is then not read."""
    env_protocol: Literal["eval", "train"] = "eval"
    """Environment preset: "eval" (the paper's inference protocol, `EnvConfig.eval`) or "train" (the RL rollout's
    observations, `EnvConfig.train`: the learning demo evaluates its policies on what they were trained on)."""
    env: dict[str, Any] = field(default_factory=dict)
    """`EnvConfig` overrides on top of the preset (e.g. `recipes/demo_env.yaml` through a defaults entry)."""
    reward_parity: bool = True
    """Parity of the format and reward terms of the per-episode metrics: the training recipe's
    `videoseg_o3.rewards.parity`."""
    n_boot: int = 2000
    """Bootstrap resamples of the 95 % intervals of the per-episode metrics in metrics.json."""
    progress: bool = True
    """Show a progress bar (tqdm) on the console."""
    batch_size: int = 1
    """Expressions whose turns the in-process HF worker generates together (left-padded batches, the same tokens
    as one at a time); 1 = one expression at a time. Ray workers and vLLM take one expression per call."""

    def __post_init__(self) -> None:
        if self.backend not in ("hf", "vllm"):
            raise ValueError(f"[eval] backend must be 'hf' or 'vllm', got {self.backend!r}")
        if self.backend == "vllm" and self.num_workers != 0:
            raise ValueError(f"[eval] backend 'vllm' runs one engine in this process: set num_workers to 0 (got "
                             f"{self.num_workers}), or use backend 'hf' for a Ray pool of replicas")
        if self.fixed_guess is not None and self.fixed_guess not in FIXED_GUESS_MASKS:
            raise ValueError(f"[eval] fixed_guess must be one of {FIXED_GUESS_MASKS} or null, got {self.fixed_guess!r}")
        if self.env_protocol not in MODES:
            raise ValueError(f"[eval] env_protocol must be one of {MODES}, got {self.env_protocol!r}")
        for key in ("n_boot", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"[eval] {key} must be an int >= 1, got {value!r}")
        self.environment()  # bad env overrides fail here, naming the key
        paths = ("sam2", "data", "output_dir") if self.fixed_guess else ("model", "sam2", "data", "output_dir")
        for key in paths:
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ValueError(f"[eval] {key} must be a non-empty path, got {getattr(self, key)!r}")
        if not self.fixed_guess and not os.path.isdir(self.model):
            raise FileNotFoundError(f"[eval] model: {self.model} is not a directory")
        if not os.path.isfile(self.sam2):
            raise FileNotFoundError(f"[eval] sam2: checkpoint {self.sam2} does not exist")
        if not os.path.isfile(self.data):
            raise FileNotFoundError(f"[eval] data: parquet {self.data} does not exist")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"[eval] limit must be >= 1, got {self.limit}")
        if self.num_workers < -1:
            raise ValueError(f"[eval] num_workers must be -1, 0 or a positive count, got {self.num_workers}")
        if self.report_videos < 0:
            raise ValueError(f"[eval] report_videos must be >= 0, got {self.report_videos}")
        if self.backend == "vllm":
            from videoseg_o3_verl.eval.vllm_policy import require_vllm

            require_vllm()  # before any file is written or model loaded

    def environment(self) -> EnvConfig:
        """The episode's `EnvConfig`: the `env_protocol` preset with the `env` overrides."""
        if not isinstance(self.env, dict):
            raise TypeError(f"[eval] env must be a mapping of EnvConfig overrides, got {type(self.env).__name__}")
        try:
            if self.env_protocol == "train":
                return EnvConfig.train(**self.env)
            return EnvConfig.eval(released_inputs=self.released_inputs, **self.env)
        except TypeError as err:
            raise ValueError(f"[eval] env: {err} (known keys: EnvConfig fields)") from None


def record_key(record: RVOSRecord) -> tuple[str, str]:
    return record.video_id, record.expression_id


def select_records(records: list[RVOSRecord], limit: int | None) -> list[RVOSRecord]:
    """The first `limit` records (all when None)."""
    return records[:limit] if limit is not None else records


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Entries of a journal; a truncated last line (an interrupted write) is dropped."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("%s: dropping an unreadable line (interrupted write?)", path)
    return entries


class EvalWorker:
    """Holds the models of one replica; `evaluate` maps a record (JSON) to a journal entry."""

    def __init__(self, config: EvalConfig, device: str | None = None) -> None:
        _quiet()
        from videoseg_o3_verl.eval.fixed_guess import FixedGuessModels
        from videoseg_o3_verl.eval.predict import load_models

        self.dataset = config.dataset
        if config.fixed_guess:
            self.models = FixedGuessModels(config.fixed_guess, config.environment(), config.reward_parity)
        else:
            self.models = load_models(config.model, config.sam2, seg_head_dir=config.seg_head, device=device,
                                      dtype=config.dtype, env=config.environment(), backend=config.backend,
                                      reward_parity=config.reward_parity)

    def evaluate(self, record_json: str) -> dict[str, Any]:
        return self.evaluate_batch([RVOSRecord.from_json(record_json)])[0]

    def evaluate_batch(self, records: list[RVOSRecord]) -> list[dict[str, Any]]:
        """Journal entries of several records, their turns generated together (`predict.evaluate_records`)."""
        from videoseg_o3_verl.eval.predict import evaluate_records

        entries = evaluate_records(self.models, records, self.dataset)
        return [{"video": r.video_id, "expression_id": r.expression_id, **e} for r, e in zip(records, entries)]


def _quiet() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def _local_map(config: EvalConfig, records: list[RVOSRecord]) -> Iterator[dict[str, Any]]:
    worker = EvalWorker(config, device=config.device)
    for start in range(0, len(records), config.batch_size):
        yield from worker.evaluate_batch(records[start:start + config.batch_size])


def _ray_map(config: EvalConfig, records: list[RVOSRecord]) -> Iterator[dict[str, Any]]:
    import ray
    from ray.util import ActorPool

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    count = config.num_workers if config.num_workers > 0 else max(gpus, 1)
    actor = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1)(EvalWorker)
    pool = ActorPool([actor.remote(config) for _ in range(count)])
    logger.info("evaluating with %d Ray worker(s) (%d GPU(s) in the cluster)", count, gpus)
    yield from pool.map_unordered(lambda a, r: a.evaluate.remote(r.to_json()), records)


def _check_resume(path: Path, config: EvalConfig, resuming: bool) -> None:
    if not resuming or not path.is_file():
        return
    before = json.loads(path.read_text())
    changed = [k for k in RESUME_KEYS if before.get(k) != getattr(config, k)]
    if changed:
        raise ValueError(f"[eval] --resume with different settings than the run in {path.parent}: "
                         + ", ".join(f"{k}: {before.get(k)!r} -> {getattr(config, k)!r}" for k in changed))


def _progress(total: int, enabled: bool = True) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="expr", desc="eval", dynamic_ncols=True, disable=not enabled)


def run_eval(config: EvalConfig, *, mapper: Callable[[EvalConfig, list[RVOSRecord]], Iterable[dict]] | None = None
             ) -> dict[str, Any]:
    """Evaluate, then write the run's files (module docstring). Returns the content of `metrics.json`."""
    from videoseg_o3_verl.eval.outputs import write_outputs

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    journal = out / JOURNAL
    records = select_records(read_parquet_records(config.data), config.limit)
    done = read_journal(journal)
    if done and not config.resume:
        raise FileExistsError(f"[eval] {journal} holds {len(done)} finished expression(s) of an earlier run: pass "
                              "--resume to continue it, or choose another --output-dir")
    _check_resume(out / "eval_config.json", config, bool(done))
    wanted = {record_key(r) for r in records}
    finished = {(e["video"], e["expression_id"]) for e in done} & wanted
    pending = [r for r in records if record_key(r) not in finished]
    logger.info("%d expression(s): %d finished earlier, %d to evaluate", len(records), len(finished), len(pending))
    (out / "eval_config.json").write_text(json.dumps(asdict(config), indent=2))
    if pending:
        mapper = mapper or (_ray_map if config.num_workers != 0 else _local_map)
        with journal.open("a", encoding="utf-8") as sink, _progress(len(pending), config.progress) as bar:
            for entry in mapper(config, pending):
                sink.write(json.dumps(entry) + "\n")
                sink.flush()
                bar.update(1)
    entries = {(e["video"], e["expression_id"]): e for e in read_journal(journal)}
    ordered = [entries[record_key(r)] for r in records if record_key(r) in entries]
    return write_outputs(out, records, ordered, dataset=config.dataset or records[0].dataset,
                         submit=config.submit, report_videos=config.report_videos, n_boot=config.n_boot)


_FLAG_KEYS = {"model": "model", "seg_head": "seg_head", "sam2": "sam2", "data": "data", "output_dir": "output_dir",
              "dataset": "dataset", "limit": "limit", "backend": "backend", "resume": "resume", "submit": "submit",
              "num_workers": "num_workers", "device": "device", "dtype": "dtype", "fixed_guess": "fixed_guess"}


def config_from_cli(args: Any) -> EvalConfig:
    """EvalConfig from an eval recipe's `eval:` section (with overrides), then the CLI flags that were given."""
    values: dict[str, Any] = {}
    if args.config_name:
        from omegaconf import OmegaConf

        from videoseg_o3_verl.launch import compose_recipe

        cfg = compose_recipe(args.config_name, list(args.overrides), args.config_path)
        if "eval" not in cfg:
            raise ValueError(f"[eval] recipe {args.config_name!r} has no 'eval:' section")
        section = OmegaConf.to_container(cfg.eval, resolve=True, throw_on_missing=False)
        values = {k: v for k, v in section.items() if v is not None and v != "???"}  # ???: set by a flag
        unknown = sorted(set(values) - {f for f in EvalConfig.__dataclass_fields__})
        if unknown:
            raise ValueError(f"[eval] unknown key(s) in recipe {args.config_name!r}: {unknown}; known: "
                             f"{sorted(EvalConfig.__dataclass_fields__)}")
    elif args.overrides:
        raise ValueError(f"[eval] overrides {args.overrides} need --config-name")
    for flag, key in _FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            values[key] = value
    if getattr(args, "clean_inputs", None):
        values["released_inputs"] = False
    needed = ("sam2", "data", "output_dir") if values.get("fixed_guess") else ("model", "sam2", "data", "output_dir")
    missing = [k for k in needed if not values.get(k)]
    if missing:
        raise SystemExit(f"videoseg-o3 eval: missing {', '.join('--' + k.replace('_', '-') for k in missing)} "
                         "(or set eval.<key> in the recipe)")
    values.setdefault("model", "")
    return EvalConfig(**values)
