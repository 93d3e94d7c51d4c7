"""``python -m bench``: the benchmark of issue 6 (``make bench``, ``make bench-quick``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.modes import MODES
from bench.report import write_markdown
from bench.run import REPOSITORY_ROOT, RunOptions, default_data_dir, run


def build_parser() -> argparse.ArgumentParser:
    """The command line; every path has a default that works from the repository root."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Model-only speed against DistilHuBERT and wav2vec2-base, HTTP latency "
        "and throughput, memory and load time; writes results.json and RESULTS.md.",
    )
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    parser.add_argument(
        "--quick",
        action="store_const",
        const="quick",
        dest="mode",
        help="same as --mode quick (a few minutes)",
    )
    parser.add_argument("--models-dir", type=Path, default=REPOSITORY_ROOT / "models")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=REPOSITORY_ROOT / "var" / "bench",
        help="exported ONNX files, placeholders, server log (gitignored)",
    )
    parser.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "bench" / "results.json")
    parser.add_argument("--markdown", type=Path, default=REPOSITORY_ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-http", action="store_true", help="skip the service benchmark")
    parser.add_argument(
        "--no-candidates", action="store_true", help="skip the Whisper tiny.en candidate backbone"
    )
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        help="a sentence about the conditions, added to the load note",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the service under test (repeatable), e.g. "
        "SER_MAX_BATCH_SEGMENTS=8; recorded in results.json",
    )
    parser.add_argument(
        "--markdown-from",
        type=Path,
        metavar="RESULTS_JSON",
        help="only rewrite the markdown from a saved results.json",
    )
    return parser


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``["A=1", "B=x"]`` -> ``{"A": "1", "B": "x"}``.

    Raises:
        SystemExit: an item has no ``=``.
    """
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--service-env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run (or only re-render the markdown)."""
    args = build_parser().parse_args(argv)
    if args.markdown_from:
        write_markdown(
            json.loads(args.markdown_from.read_text()), args.markdown, args.markdown_from
        )
        return
    run(
        RunOptions(
            mode=MODES[args.mode],
            models_dir=args.models_dir,
            data_dir=args.data_dir,
            cache_dir=args.cache_dir,
            json_path=args.out,
            markdown_path=args.markdown,
            with_http=not args.no_http,
            with_candidates=not args.no_candidates,
            notes=tuple(args.note),
            service_env=parse_env(args.service_env),
        )
    )


if __name__ == "__main__":
    main()
