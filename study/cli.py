"""What every script shares on the command line: one vocabulary of options and the error guard.

    --config, --dataset, --data-dir      every script
    --models, --max-tokens               every phase that works per model (same meaning everywhere):
                                         bge-m3, bge-m3-t512 (max tokens), bge-m3-c512 (chunked),
                                         multilingual-e5-large+bge-m3 (side by side), bge-m3-L12 (a layer)
    --chunks, --layers                   the phases that embed: each model also chunked / at hidden layers
    --probes                             every phase that works per probe
    --dtype, --batch-size                the phases that embed
    --train-fractions                    train_probes.py and run_all.py (the learning curve)
"""
from __future__ import annotations

import argparse
import logging
import math
import signal
import sys

from study.config import DTYPE_NAMES, PROBES, is_device
from study.errors import Interrupted, StudyError


def _number(text: str, parse, expected: str, ok, rule: str, shown=None):
    """`text` parsed by `parse` (int or float) and checked by `ok`; argparse's one-line refusal otherwise."""
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, found '{text}'") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{rule}, found {value if shown is None else shown}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a whole number", lambda v: v >= 1, "must be at least 1")


def non_negative_int(text: str) -> int:
    return _number(text, int, "a whole number", lambda v: v >= 0, "must be 0 or more")


def positive_float(text: str) -> float:
    return _number(text, float, "a number", lambda v: math.isfinite(v) and v > 0,
                   "must be a finite number above 0", shown=text)


def finite_float(text: str) -> float:
    return _number(text, float, "a number", math.isfinite, "must be a finite number", shown=text)


def unit_float(text: str) -> float:
    """A share in (0, 1]: an F1, a fraction of the training articles."""
    return _number(text, float, "a number in (0, 1]", lambda v: math.isfinite(v) and 0 < v <= 1,
                   "must lie in (0, 1]", shown=text)


def device(text: str) -> str:
    if not is_device(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda, cuda:N or mps, found '{text}'")
    return text


class _Parser(argparse.ArgumentParser):
    def error(self, message):   # one line, like every other error of the study
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def bare_parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose help is the script's usage docstring and whose errors are one `error:` line."""
    return _Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose help is the script's usage docstring, with --config, --dataset, --data-dir."""
    p = bare_parser(doc)
    p.add_argument("--config", default=None, help="config file (default: config.yaml beside the scripts)")
    p.add_argument("--dataset", help="dataset name from config.yaml (also names the outputs)")
    p.add_argument("--data-dir", help="folder with train/val/test.jsonl (any dataset in the input format)")
    return p


def add_models(p: argparse.ArgumentParser, default: str) -> None:
    """--models and --max-tokens; `default` says what runs without --models (see Config.select_variants)."""
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   help=f"config model names, a max-tokens variant such as bge-m3-t512, a chunked one such as "
                        f"bge-m3-c512, or models side by side such as multilingual-e5-large+bge-m3 (default: {default})")
    p.add_argument("--max-tokens", nargs="+", type=positive_int, metavar="N",
                   help="max tokens of each model (several values: a truncation sweep; default: the model's own). "
                        "Names the artifacts <model>-t<N> when it differs from config.yaml")


def add_chunks(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chunks", action="store_true",
                   help="each model also as its chunked twin <model>-c<N>: windows of N tokens covering the whole "
                        "article, their embeddings averaged (config chunking: overlap, max_windows)")


def add_layers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", nargs="+", type=non_negative_int, metavar="K",
                   help="each model instead at its hidden layers K (a layer sweep): <model>-L<k>, transformers' "
                        "hidden_states[k] (0 the embedding layer) pooled as the model pools, every layer from one "
                        "forward pass; include the model's last layer to compare with it")


def add_probes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--probes", nargs="+", choices=PROBES,
                   help="probes (default: the dataset's task's three: ridge mlp lightgbm for scores, logistic mlp "
                        "lightgbm for yes/no labels)")


def add_train_fractions(p: argparse.ArgumentParser) -> None:
    """--train-fractions: the learning curve's nested training subsets (see study/probes.py `nested_subsets`)."""
    p.add_argument("--train-fractions", nargs="+", type=unit_float, metavar="F",
                   help="also train each probe on these shares of the training articles, nested subsets of one "
                        "seeded permutation (e.g. 0.1 0.25 0.5 1.0; 1.0 is the normal probe, trained anyway); "
                        "evaluate.py scores them as a learning curve")


def language(text: str) -> str:
    from study.data import language_code
    code = language_code(text)
    if not code:
        raise argparse.ArgumentTypeError(f"expected a language code such as en or pt-br, found {text[:40]!r}")
    return code


def add_train_languages(p: argparse.ArgumentParser) -> None:
    """--train-languages: cross-lingual transfer (train on some languages, test on each)."""
    p.add_argument("--train-languages", nargs="+", type=language, metavar="LANG",
                   help="also train each probe on the training and validation articles of these languages only "
                        "(e.g. en); evaluate.py tests it on every language beside the probe trained on all: "
                        "'train on English, serve Dutch?'")


def add_teacher(p: argparse.ArgumentParser) -> None:
    """--teacher-predictions: the fine-tuned model's scores of any articles, the layout of --baseline-predictions."""
    p.add_argument("--teacher-predictions", metavar="FILE",
                   help="the fine-tuned model's scores ({\"predictions\": [[...]], \"article_ids\": [...], "
                        "\"dimension_names\": [...]}) of training, validation, test and unlabelled.jsonl articles: "
                        "trains each variant also as <variant>+teacher (unlabelled articles with teacher targets) and "
                        "screens against the teacher's medium+ decisions")


def add_speed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", choices=DTYPE_NAMES, help="default: bf16 on CUDA (fp16 where bf16 is missing), fp32 on CPU")
    p.add_argument("--batch-size", type=positive_int, help="override the model's batch_size")


def add_backend(p: argparse.ArgumentParser, default: str) -> None:
    """--backend / --int8: the runtime of the encoder's forward pass on the CPU (study/backends.py)."""
    p.add_argument("--backend", choices=("torch", "onnx", "openvino"),
                   help=f"runtime of the encoder on the CPU (default: {default}): onnx (onnxruntime) or openvino run "
                        "the model's forward pass exported once to ONNX from the local model")
    p.add_argument("--int8", action="store_true", help="with --backend onnx: weights quantized to int8 (dynamic "
                                                        "quantization, per channel)")


RESULTS_LOCK_ENV = "STUDY_RESULTS_LOCK_PID"   # run_all.py's pid, given to its phases: it holds the lock for them


def hold_results(cfg) -> None:
    """One run at a time in a results folder: the phases that write there (and run_all.py, for all of its phases)
    hold `.<results>.lock` beside it until they end; another one is refused with a line naming the holder (pid, host,
    command). A phase run_all.py started (its parent holds the lock) goes ahead."""
    import os

    from study.artifacts import hold_run

    if os.environ.get(RESULTS_LOCK_ENV) == str(os.getppid()):
        return
    results = cfg.results_path
    hold_run(results.parent / f".{results.name}.lock", f"results folder {results}")   # beside it: results/ stays as it was


def _mid_line() -> bool:
    """Did a progress bar leave stderr in the middle of a line? (then the error starts on a new one)"""
    from tqdm import tqdm

    return bool(getattr(tqdm, "_instances", None))


def run(main) -> None:
    """Call `main()`; bad input ends with one readable line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminated)   # `kill PID` ends as Ctrl-C does: temp files removed, one line
    signal.signal(signal.SIGHUP, _terminated)    # so does a closed ssh session
    try:
        try:
            main()
        finally:
            from study.artifacts import release_runs

            release_runs()
    except StudyError as exc:
        print(f"\nerror: {exc}" if _mid_line() else f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:   # a full disk, a read-only folder, a file where a folder should be ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc} (nothing half-written was kept)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        note = exc.note if isinstance(exc, Interrupted) else ""
        print(f"interrupted{' by ' + signal.Signals(signum).name if signum != signal.SIGINT else ''}{note}: "
              "artifacts already written are complete, nothing half-written was kept", file=sys.stderr)
        sys.exit(128 + signum)


def _terminated(signum, frame):
    raise Interrupted(signum)
