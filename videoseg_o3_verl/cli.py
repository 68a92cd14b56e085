# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The ``videoseg-o3`` command: one subcommand per verb, each a thin wrapper over a library function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class Subcommand:
    """Base of a CLI verb: ``add(subparsers)`` declares arguments, ``run(args)`` does the work."""

    name = ""
    help = ""

    def add(self, subparsers) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(self.name, help=self.help, description=self.help)
        parser.set_defaults(handler=self.run)
        return parser

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


class BuildTiny(Subcommand):
    name = "build-tiny"
    help = "Build (or find in the cache) the tiny random Qwen-VL and SAM2 checkpoints; prints their paths."

    def add(self, subparsers):
        parser = super().add(subparsers)
        parser.add_argument("--kind", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen3_vl"])
        parser.add_argument("--cache-dir", default=None, help="Cache root (default $VIDEOSEG_O3_CACHE or ~/.cache)")
        return parser

    def run(self, args):
        from .model.tiny import tiny_qwen_vl, tiny_sam2

        print(f"qwen_vl: {tiny_qwen_vl(args.kind, root=args.cache_dir)}")
        print(f"sam2:    {tiny_sam2(root=args.cache_dir)}")
        return 0


class Smoke(Subcommand):
    name = "smoke"
    help = "Plain GRPO for 2 steps through verl's trainer on CPU (tiny Qwen-VL, image+video prompts)."

    def add(self, subparsers):
        parser = super().add(subparsers)
        parser.add_argument("--output-dir", default="outputs/smoke")
        parser.add_argument("--kind", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen3_vl"])
        parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.total_training_steps=3")
        return parser

    def run(self, args):
        from .launch import compose_recipe, run_trainer
        from .model.tiny import tiny_qwen_vl
        from .smoke import build_smoke_dataset

        out = Path(args.output_dir).resolve()
        train, val = build_smoke_dataset(out / "data")
        overrides = [f"actor_rollout_ref.model.path={tiny_qwen_vl(args.kind)}", f"data.train_files={train}",
                     f"data.val_files={val}", f"trainer.default_local_dir={out / 'checkpoints'}", *args.overrides]
        run_trainer(compose_recipe("tiny_cpu_grpo", overrides))
        return 0


class Train(Subcommand):
    name = "train"
    help = "Train with a recipe: videoseg-o3 train --config-name NAME [hydra overrides] [--cfg job]."

    def add(self, subparsers):
        parser = super().add(subparsers)
        parser.add_argument("--config-name", required=True, help="Recipe name (file in recipes/ without .yaml)")
        parser.add_argument("--config-path", default=None, help="Directory of recipes (default: shipped recipes)")
        parser.add_argument("--cfg", choices=["job"], default=None, help="Print the resolved config and exit")
        parser.add_argument("overrides", nargs="*", help="Hydra overrides")
        return parser

    def run(self, args):
        from .launch import compose_recipe, resolved_yaml, run_trainer

        cfg = compose_recipe(args.config_name, args.overrides, args.config_path)
        if args.cfg == "job":
            print(resolved_yaml(cfg))
            return 0
        run_trainer(cfg)
        return 0


class Demo(Subcommand):
    name = "demo"
    help = ("The learning demo on CPU: synthetic RVOS → VTS-CoT → SFT → seg head → VideoSEG-O3 RL → held-out eval "
            "of a fixed guess, SFT and RL → summary.json and report.html (--quick: the one-minute plumbing run).")
    SIZES = {"--seed": "seed of the data and the trainers", "--n-train": "synthetic training videos",
             "--n-eval": "held-out samples per policy", "--sft-steps": "SFT optimizer steps",
             "--head-steps": "seg-head steps on the frozen SFT policy (0: none)", "--rl-steps": "RL training steps",
             "--threads": "torch threads of the SFT, seg-head and eval stages"}

    def add(self, subparsers):
        from .demo.config import DemoConfig

        parser = super().add(subparsers)
        parser.add_argument("--output-dir", default=DemoConfig.output_dir)
        parser.add_argument("--quick", action="store_true",
                            help="the plumbing run instead: a few RL steps of a random model, some replies scripted")
        for flag, text in self.SIZES.items():
            default = getattr(DemoConfig, flag[2:].replace("-", "_"))
            shown = ("every core" if flag == "--threads" else "the recipe's") if default is None else "%(default)s"
            parser.add_argument(flag, type=int, default=default, help=f"{text} (default: {shown})")
        parser.add_argument("--steps", type=int, default=3, help="--quick: RL steps")
        parser.add_argument("--rollout", choices=("hf", "vllm"), default="hf",
                            help="--quick: the plugin's HF generate, or verl's vLLM (needs vLLM installed)")
        parser.add_argument("overrides", nargs="*", help="--quick: Hydra overrides for the tiny_cpu recipe")
        return parser

    def run(self, args):
        # an import error is a bug to report, never a reason to run something else
        from .demo import DemoConfig, run_demo, run_quick_demo

        if args.quick:
            return run_quick_demo(output_dir=args.output_dir, steps=args.steps, overrides=args.overrides,
                                  rollout=args.rollout)
        if args.overrides:
            raise SystemExit(f"videoseg-o3 demo: Hydra overrides {args.overrides} apply to --quick only")
        sizes = {key: getattr(args, key) for key in (flag[2:].replace("-", "_") for flag in self.SIZES)}
        return run_demo(DemoConfig(output_dir=args.output_dir, **sizes))


class Eval(Subcommand):
    name = "eval"
    help = ("Evaluate a policy on a benchmark parquet with the paper's inference protocol: results.json, "
            "metrics.json, conversations.jsonl, report.html (and --submit PNGs).")

    def add(self, subparsers):
        parser = super().add(subparsers)
        parser.add_argument("--config-name", default=None, help="Eval recipe (recipes/eval_*.yaml); flags win")
        parser.add_argument("--config-path", default=None, help="Directory of recipes (default: shipped recipes)")
        parser.add_argument("--model", help="HF Qwen-VL directory (training checkpoint, converted release, tiny)")
        parser.add_argument("--seg-head", default=None, help="Seg head directory (default: found next to --model)")
        parser.add_argument("--sam2", help="SAM2 checkpoint (.pt)")
        parser.add_argument("--data", help="Parquet of RVOS records (videoseg-o3 data)")
        parser.add_argument("--output-dir", help="Where the result files go")
        parser.add_argument("--dataset", default=None, help="Benchmark name of the table (default: from the data)")
        parser.add_argument("--limit", type=int, default=None, help="Only the first N expressions")
        parser.add_argument("--backend", choices=["hf", "vllm"], default=None,
                            help="Generation backend: hf (default) or vllm (needs vLLM; one engine in this process)")
        parser.add_argument("--resume", action="store_true", default=None, help="Skip finished expressions")
        parser.add_argument("--submit", action="store_true", default=None,
                            help="Also write Annotations/<video>/<expression>/<frame>.png and submission.zip")
        parser.add_argument("--num-workers", type=int, default=None,
                            help="0: in this process (default); N: Ray actor pool; -1: one per GPU of the cluster")
        parser.add_argument("--device", default=None, help="Device of the in-process worker (default: cuda if any)")
        parser.add_argument("--dtype", default=None, help="Policy dtype: float32 (default) or bfloat16")
        parser.add_argument("--clean-inputs", action="store_true", default=None,
                            help="Plain index lists / bare expression / smart_resize instead of the released inputs")
        parser.add_argument("--fixed-guess", choices=["empty", "full"], default=None,
                            help="Evaluate the fixed-guess baseline (middle keyframe, whole video, this constant "
                                 "mask) instead of --model")
        parser.add_argument("overrides", nargs="*", help="Recipe overrides, e.g. eval.limit=10")
        return parser

    def run(self, args):
        from .eval.runner import config_from_cli, run_eval

        metrics = run_eval(config_from_cli(args))
        print(json_line(metrics.get("table", {})))
        if metrics["num_errors"]:
            print(f"{metrics['num_errors']} expression(s) failed; see metrics.json 'errors'", file=sys.stderr)
        return 0


def json_line(value) -> str:
    import json

    return json.dumps(value)


class Forward(Subcommand):
    """A verb whose arguments belong to another module's ``main(argv)`` (``--help`` is theirs too)."""

    target = ""

    def add(self, subparsers):
        parser = subparsers.add_parser(self.name, help=self.help, add_help=False)
        parser.set_defaults(handler=self.run)
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        return parser

    def run(self, args):
        import importlib

        return importlib.import_module(self.target).main(args.rest) or 0


class ServeReward(Forward):
    name = "serve-reward"
    help = "Start the SAM2 reward HTTP service (arguments: videoseg-o3 serve-reward --help)."
    target = "videoseg_reward.app"


class DataConvert(Forward):
    name = "data"
    help = "Convert an RVOS dataset (MeViS, ReVOS, Ref-YTVOS, ...) to verl parquet (videoseg-o3 data --help)."
    target = "videoseg_o3_verl.data.convert_cli"


class Synthetic(Forward):
    name = "synthetic"
    help = "Write the synthetic RVOS dataset in the ReVOS/MeViS layout (videoseg-o3 synthetic --help)."
    target = "videoseg_o3_verl.data.synthetic_cli"


class Sft(Forward):
    name = "sft"
    help = "Cold-start SFT on verl's SFT trainer: videoseg-o3 sft --config-name NAME [hydra overrides]."
    target = "videoseg_o3_verl.sft.trainer"


class VtsCot(Forward):
    name = "vts-cot"
    help = "Build VTS-CoT cold-start trajectories (SFT parquet) from an RL parquet or the released JSON (--help)."
    target = "videoseg_o3_verl.data.vts_cot_cli"


class ConvertCheckpoint(Forward):
    name = "convert-checkpoint"
    help = "Convert a released VideoSEG-O3 checkpoint to HF Qwen-VL + seg head + SAM2 (--help for options)."
    target = "videoseg_o3_verl.model.convert_cli"


class ExportCheckpoint(Forward):
    name = "export-checkpoint"
    help = "Export HF Qwen-VL + seg head + SAM2 to the released VideoSEG-O3 checkpoint layout (--help for options)."
    target = "videoseg_o3_verl.model.export_released"


SUBCOMMANDS = [Demo(), Smoke(), Train(), Eval(), DataConvert(), Synthetic(), VtsCot(), Sft(), ConvertCheckpoint(),
               ExportCheckpoint(), BuildTiny(), ServeReward()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoseg-o3", description="VideoSEG-O3 on verl")
    subparsers = parser.add_subparsers(title="commands")
    for command in SUBCOMMANDS:
        command.add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 0
    if unknown:
        if hasattr(args, "rest"):
            args.rest = [*unknown, *args.rest]
        elif hasattr(args, "overrides"):
            args.overrides = [*args.overrides, *unknown]
        else:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
