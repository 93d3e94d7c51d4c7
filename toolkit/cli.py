"""Command line: ``python -m toolkit {train,evaluate,export,ablate,seeds,compare-recipes,
check-rule,reproduce,compare-int8,card,environment,smoke}``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _train(args: argparse.Namespace) -> None:
    from toolkit.train.config import load_config
    from toolkit.train.experiment import train_runs

    config = load_config(Path(args.config), args.set)
    train_runs(config, Path(args.out), [n for n in args.runs.split(",") if n], args.resume)


def _environment(args: argparse.Namespace) -> None:
    import json

    from toolkit.numerics import training_environment

    print(json.dumps(training_environment(), indent=1))


def _smoke(args: argparse.Namespace) -> None:
    from toolkit.train.smoke import run_smoke

    run_smoke(Path(args.out) if args.out else None)


def _evaluate(args: argparse.Namespace) -> None:
    from toolkit.evaluate import evaluate

    names = [n for n in args.runs.split(",") if n] if args.runs else None
    evaluate(Path(args.run_dir), names, noise=not args.no_noise)


def _export(args: argparse.Namespace) -> None:
    from toolkit.package import package

    for path in package(
        Path(args.run_dir),
        args.run,
        Path(args.models_dir),
        args.name,
        args.version,
        tuple(v for v in args.variants.split(",") if v),
    ):
        print(path)


def _ablate(args: argparse.Namespace) -> None:
    import sys

    from toolkit.ablation import UnknownVariantError, ablate

    names = [n for n in args.variants.split(",") if n] or None
    backbones = [Path(d) for d in args.backbones.split(",") if d]
    reference = args.reference or None
    try:
        table = ablate(
            Path(args.spec), Path(args.out), names, backbones, args.table_only, args.set, reference
        )
    except UnknownVariantError as error:
        print(f"ablate: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(table)


def _seeds(args: argparse.Namespace) -> None:
    from toolkit.seed_spread import seed_spread

    configs = [Path(c) for c in args.configs.split(",") if c]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    runs = [r for r in args.runs.split(",") if r]
    record = Path(args.record) if args.record else None
    print(seed_spread(configs, seeds, Path(args.out), runs, args.table_only, record))


def _compare_recipes(args: argparse.Namespace) -> None:
    import json

    from toolkit.compare_recipes import compare, markdown, record_in_model_dir

    recipes: dict[str, list[Path]] = {}
    for spec in args.recipe:
        name, _, dirs = spec.partition("=")
        if not name or not dirs:
            raise SystemExit(f"--recipe {spec!r}: give NAME=RUN_DIR[,RUN_DIR...]")
        recipes[name] = [Path(d) for d in dirs.split(",") if d]
    document = compare(recipes, args.variant, args.paired)
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    if args.record:
        record_in_model_dir(Path(args.record), document)
    print(markdown(document), end="")


def _check_rule(args: argparse.Namespace) -> None:
    import json
    import sys

    from toolkit.decision_rule import check, load_rule, markdown, passes

    try:
        checks = check(load_rule(Path(args.rule)), json.loads(Path(args.comparison).read_text()))
    except (OSError, ValueError, KeyError) as error:  # TOML and JSON errors are ValueErrors
        print(f"check-rule: {error}", file=sys.stderr)
        raise SystemExit(2) from None  # 2: the inputs are wrong; 1: the rule fails
    print(markdown(checks), end="")
    if not passes(checks):
        raise SystemExit(1)


def _reproduce(args: argparse.Namespace) -> None:
    import json

    from toolkit.reproduce import compare_with_shipped

    report = compare_with_shipped(
        Path(args.run_dir), args.run, Path(args.model_dir), record=args.record
    )
    print(json.dumps(report, indent=1))


def _compare_int8(args: argparse.Namespace) -> None:
    from toolkit.compare_int8 import compare_int8, markdown_table

    runs = [r for r in args.runs.split(",") if r]
    print(markdown_table(compare_int8(Path(args.run_dir), runs, Path(args.out))))


def _crop_share(args: argparse.Namespace) -> None:
    from toolkit.crop_share import crop_shares, markdown

    print(markdown(crop_shares([c for c in args.corpora.split(",") if c], args.step)))


def _card(args: argparse.Namespace) -> None:
    import json

    from service.inference.manifest import read_manifest
    from toolkit.card import write_card

    for directory in args.model_dirs:
        model_dir = Path(directory)
        results = json.loads((model_dir / "results.json").read_text())
        print(write_card(model_dir, read_manifest(model_dir), results))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m toolkit")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train runs of the protocol")
    train.add_argument("--config", default="toolkit/configs/whisper_l2_noisy_servecrop_q90.toml")
    train.add_argument("--out", required=True, help="run directory, e.g. runs/default")
    train.add_argument(
        "--runs",
        default="fold0,fold1,fold2,fold3,fold4",
        help="comma-separated: fold0..fold4, final, cross_ravdess_to_emodb, cross_emodb_to_ravdess",
    )
    train.add_argument("--set", action="append", default=[], help="override, e.g. optim.epochs=5")
    train.add_argument(
        "--resume", action="store_true", help="keep the runs of --out that already finished"
    )
    train.set_defaults(handler=_train)
    evaluate = commands.add_parser("evaluate", help="evaluate trained runs -> results.json")
    evaluate.add_argument("--run-dir", required=True)
    evaluate.add_argument(
        "--runs", default="", help="comma-separated subset (default: all trained)"
    )
    evaluate.add_argument("--no-noise", action="store_true", help="skip the noisy conditions")
    evaluate.set_defaults(handler=_evaluate)
    export = commands.add_parser("export", help="package a run as models/<name>/<version>/")
    export.add_argument("--run-dir", required=True)
    export.add_argument("--run", default="final", help="which run's weights to ship")
    export.add_argument("--models-dir", default="models")
    export.add_argument(
        "--name", required=True, help="e.g. ser-whisper-l2 (the int8 variant gets -int8)"
    )
    export.add_argument("--version", required=True)
    export.add_argument(
        "--variants", default="fp32,int8", help="which to ship: fp32,int8 (int8 -> <name>-int8)"
    )
    export.set_defaults(handler=_export)
    ablation = commands.add_parser("ablate", help="train + evaluate recipe variants -> table")
    ablation.add_argument("--spec", default="toolkit/configs/ablations.toml")
    ablation.add_argument("--out", default="runs/ablation")
    ablation.add_argument("--variants", default="", help="comma-separated subset (default: all)")
    ablation.add_argument(
        "--backbones", default="", help="evaluated run dirs to compare over all folds"
    )
    ablation.add_argument("--table-only", action="store_true", help="only rewrite the tables")
    ablation.add_argument(
        "--reference",
        default="",
        help="read the variants against this one (default: the spec's reference)",
    )
    ablation.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra config override for the variants trained now, e.g. optim.threads=2",
    )
    ablation.set_defaults(handler=_ablate)
    seeds = commands.add_parser(
        "seeds", help="train + evaluate one run per training seed -> spread table"
    )
    seeds.add_argument(
        "--configs",
        default="toolkit/configs/whisper_l2_noisy.toml,toolkit/configs/whisper_l2.toml",
        help="comma-separated recipes",
    )
    seeds.add_argument("--seeds", default="0,1,2,3", help="comma-separated optim.seed values")
    seeds.add_argument("--runs", default="cross_emodb_to_ravdess", help="comma-separated runs")
    seeds.add_argument("--out", default="runs/seeds")
    seeds.add_argument("--table-only", action="store_true", help="only rewrite the tables")
    seeds.add_argument(
        "--record",
        default="",
        metavar="MODEL_DIR",
        help="also write the spread into this model's results.json and card",
    )
    seeds.set_defaults(handler=_seeds)
    recipes = commands.add_parser(
        "compare-recipes", help="evaluated run dirs of two or more recipes, over seeds -> table"
    )
    recipes.add_argument(
        "--recipe",
        action="append",
        required=True,
        metavar="NAME=RUN_DIR[,RUN_DIR...]",
        help="a recipe and its evaluated run dirs, one per training seed; repeat per recipe",
    )
    recipes.add_argument("--variant", default="int8", choices=("fp32", "int8"))
    recipes.add_argument(
        "--paired",
        action="store_true",
        help="run dir i of both recipes holds the same trained weights (a recipe that differs "
        "only in how it is served): paired t instead of Welch's t",
    )
    recipes.add_argument("--json", default="", help="also write the figures to this JSON file")
    recipes.add_argument(
        "--record",
        default="",
        metavar="MODEL_DIR",
        help="also store the comparison in this model's results.json and card (the first "
        "recipe should be the model's own)",
    )
    recipes.set_defaults(handler=_compare_recipes)
    rule = commands.add_parser(
        "check-rule", help="a pre-registered experiment rule applied to a compare-recipes JSON"
    )
    rule.add_argument("--rule", required=True, help="e.g. docs/rules/babble20_screen.toml")
    rule.add_argument("--comparison", required=True, help="compare-recipes --json output")
    rule.set_defaults(handler=_check_rule)
    reproduce = commands.add_parser(
        "reproduce", help="compare a retrained run with a shipped model (sha256, every head)"
    )
    reproduce.add_argument("--run-dir", required=True, help="e.g. runs/v1 after make train")
    reproduce.add_argument("--run", default="final")
    reproduce.add_argument("--model-dir", required=True, help="e.g. models/ser-compact/0.2.0")
    reproduce.add_argument(
        "--record", action="store_true", help="write the outcome into the model's results and card"
    )
    reproduce.set_defaults(handler=_reproduce)
    compare = commands.add_parser(
        "compare-int8", help="fp32 vs every int8 method on the test speakers of fold runs"
    )
    compare.add_argument("--run-dir", required=True, help="an evaluated or trained run directory")
    compare.add_argument("--runs", default="fold0,fold1,fold2,fold3,fold4")
    compare.add_argument("--out", required=True, help="JSON report, e.g. docs/int8_whisper.json")
    compare.set_defaults(handler=_compare_int8)
    crop = commands.add_parser(
        "crop-share", help="share of each clip the speech crop keeps, clean and at 10 dB noise"
    )
    crop.add_argument("--corpora", default="ravdess,emodb")
    crop.add_argument("--step", type=int, default=10, help="every n-th clip of each corpus")
    crop.set_defaults(handler=_crop_share)
    card = commands.add_parser("card", help="re-render MODEL_CARD.md from results.json")
    card.add_argument("model_dirs", nargs="+", help="models/<name>/<version> directories")
    card.set_defaults(handler=_card)
    environment = commands.add_parser(
        "environment", help="versions, processor and pinned CPU kernels training would use"
    )
    environment.set_defaults(handler=_environment)
    smoke = commands.add_parser("smoke", help="few-step train + export + parity (CI)")
    smoke.add_argument("--out", default="", help="work directory (default: a temp dir)")
    smoke.set_defaults(handler=_smoke)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and run the chosen command."""
    args = build_parser().parse_args(argv)
    args.handler(args)
