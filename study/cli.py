"""What every script shares on the command line: common options and the error guard."""
from __future__ import annotations

import argparse
import logging
import sys

from study.errors import StudyError


def add_common(parser: argparse.ArgumentParser, models: bool = True) -> None:
    parser.add_argument("--config", default=None, help="config file (default: config.yaml beside the scripts)")
    parser.add_argument("--dataset", help="dataset name from config.yaml (also names the outputs)")
    parser.add_argument("--data-dir", help="folder with train/val/test.jsonl (any dataset in the input format)")
    if models:
        parser.add_argument("--models", nargs="+", help="model names from config.yaml (default: all)")
        parser.add_argument("--max-tokens", type=int, default=None,
                            help="override each model's max_tokens (part of the artifact names)")


def run(main) -> None:
    """Call `main()`; bad input ends with one readable line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except StudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: artifacts already written are complete, nothing half-written was kept",
              file=sys.stderr)
        sys.exit(130)
