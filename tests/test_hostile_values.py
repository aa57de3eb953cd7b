"""Accepted-looking values that used to give wrong results or a traceback: JSON the line validator missed,
names that break tables, languages spelled several ways, damaged caches with a valid fingerprint, options
out of range, derive_yes_no.py's inputs."""
import json

import numpy as np
import pytest

from conftest import call, snapshot
from study.artifacts import read_npz, save_npz
from study.data import Dataset, load_split
from study.errors import StudyError

GOOD = {"id": "a1", "title": "t", "content": "c", "labels": [1.0, 2.0], "dimension_names": ["x", "y"],
        "language": "en"}


def _split(tmp_path, second: str) -> Dataset:
    (tmp_path / "train.jsonl").write_text(json.dumps(GOOD) + "\n" + second + "\n", encoding="utf-8",
                                          errors="surrogatepass")
    return Dataset(name="d", path=tmp_path, baseline_mae=None)


def _line(**fields) -> str:
    return json.dumps({**GOOD, "id": "a2", **fields})


BAD_LINES = [
    ("a 5,000-digit number", _line().replace('"a2"', "9" * 5000), "unreadable JSON (Exceeds the limit"),
    ("100,000 nested arrays", _line().replace('"t"', "[" * 100_000 + "]" * 100_000), "malformed JSON (nested too deeply)"),
    ("a 401-digit integer label", _line().replace("[1.0, 2.0]", "[1" + "0" * 400 + ", 2]"),
     "field 'labels' must hold only numbers (finite ones)"),
    ("a lone surrogate in a title", _line(title="\ud800"), "field 'title' holds a lone surrogate"),
    ("a lone surrogate in a language", _line(language="\ud800"), "field 'language' holds a lone surrogate"),
    ("a lone surrogate in a dimension name", _line(dimension_names=["x", "\ud800"]), "field 'dimension_names'"),
    ("'|' in a dimension name", _line(dimension_names=["x", "a|b"]), "holds '|', a line break"),
    ("a newline in a dimension name", _line(dimension_names=["x", "a\nb"]), "holds '|', a line break"),
    ("'|' in a language", _line(language="en|fr"), "field 'language' must be a language code"),
    ("a newline in a language", _line(language="en\nfr"), "field 'language' must be a language code"),
]


@pytest.mark.parametrize("line, expect", [(l, e) for _, l, e in BAD_LINES], ids=[c for c, _, _ in BAD_LINES])
def test_json_the_validator_missed_is_one_line_naming_file_line_and_field(tmp_path, line, expect):
    dataset = _split(tmp_path, line)
    with pytest.raises(StudyError) as err:
        load_split(dataset, "train", (0.0, 10.0))
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'train.jsonl'}:2: ") and expect in message, message[:300]
    assert len(message) < 400


def test_languages_are_one_spelling(tmp_path):
    lines = [_line(id=f"b{i}", language=lang) for i, lang in enumerate(["EN", " en", "en ", "pt-BR"])]
    dataset = _split(tmp_path, "\n".join(lines))
    assert load_split(dataset, "train", (0.0, 10.0)).languages.tolist() == ["en", "en", "en", "en", "pt-br"]


def _damage(cache, how):
    data = read_npz(cache, "cache", "")
    emb = data["embeddings"]
    data["embeddings"] = np.full_like(emb, np.nan) if how == "nan" else emb[:, :0] if how == "no columns" else emb[:-1]
    save_npz(cache, **data)   # the fingerprint stays valid


@pytest.mark.parametrize("how, expect", [("nan", "rows of embeddings not finite (NaN or inf)"),
                                         ("rows", "rows of embeddings for"),
                                         ("no columns", "expected a float matrix")])
def test_a_cache_with_a_valid_fingerprint_but_damaged_embeddings_is_rebuilt(how, expect, tmp_path, workspace, capsys):
    cfg, demo_dir = workspace
    cache = tmp_path / "embeddings" / "demo_ds_tiny_train.npz"
    _damage(cache, how)
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    capsys.readouterr()
    assert call("train_probes", "--config", cfg, "--data-dir", demo_dir, "--probes", "ridge") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {cache}: damaged embedding cache (") and expect in err[-1], err
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before
    assert call("embed_articles", "--config", cfg, "--data-dir", demo_dir) == 0
    out = capsys.readouterr().out
    assert expect in out and "train: cache out of date (" in out and "rebuilding" in out, out
    assert call("train_probes", "--config", cfg, "--data-dir", demo_dir, "--probes", "ridge") == 0


@pytest.mark.parametrize("script, extra, expect", [
    ("embed_articles", ["--device", "gpu"], "--device: expected auto, cpu, cuda, cuda:N or mps, found 'gpu'"),
    ("train_probes", ["--mlp-device", "gpu"], "--mlp-device: expected auto, cpu, cuda, cuda:N or mps"),
    ("benchmark_speed", ["--token-budget", "-5"], "--token-budget: must be 0 or more, found -5"),
    ("benchmark_speed", ["--peak-tflops", "-1"], "--peak-tflops: must be a finite number above 0, found -1"),
    ("benchmark_speed", ["--peak-tflops", "inf"], "--peak-tflops: must be a finite number above 0, found inf"),
])
def test_options_out_of_range_are_one_line(script, extra, expect, tmp_path, workspace, capsys):
    cfg, demo_dir = workspace
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    capsys.readouterr()
    assert call(script, "--config", cfg, "--data-dir", demo_dir, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: argument ") and expect in err[0], err
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before


def _derive(tmp_path, capsys, *extra):
    capsys.readouterr()
    code = call("derive_yes_no", "--data-dir", tmp_path / "src", "--out", tmp_path / "out", *extra)
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def scored(tmp_path):
    from study.demo import write_demo_dataset

    return write_demo_dataset(tmp_path / "src", n_train=30, n_val=10, n_test=10, seed=3)


@pytest.mark.parametrize("case, setup, extra, expect", [
    ("--min-score nan", None, ["--min-score", "nan"], "error: argument --min-score: must be a finite number, found nan"),
    ("an --out holding another dataset", "other", ["--min-score", "5"], "already holds train.jsonl"),
    ("an empty split", "empty", ["--min-score", "5"], "val.jsonl: no articles"),
    ("a byte that is not UTF-8", "latin1", ["--min-score", "5"], "test.jsonl:2: not UTF-8 (byte 0xe9"),
    ("labels phase 1 refuses", "out of range", ["--min-score", "5"], "train.jsonl:1: field 'labels' outside score_range"),
])
def test_derive_yes_no_refuses_and_writes_nothing(case, setup, extra, expect, tmp_path, scored, capsys):
    out = tmp_path / "out"
    if setup == "other":
        out.mkdir()
        (out / "train.jsonl").write_text('{"id": "mine"}\n')
    elif setup == "empty":
        (scored / "val.jsonl").write_text("\n")
    elif setup == "latin1":
        lines = (scored / "test.jsonl").read_bytes().split(b"\n")
        lines[1] = lines[1].replace(b'"title": "', b'"title": "\xe9', 1)
        (scored / "test.jsonl").write_bytes(b"\n".join(lines))
    elif setup == "out of range":
        lines = (scored / "train.jsonl").read_text().splitlines()
        rec = json.loads(lines[0])
        rec["labels"][0] = 11
        (scored / "train.jsonl").write_text("\n".join([json.dumps(rec)] + lines[1:]) + "\n")
    before = snapshot(out)
    code, err = _derive(tmp_path, capsys, *extra)
    assert code == 2 and len(err) == 1 and expect in err[0] and err[0].startswith("error: "), err
    assert snapshot(out) == before


def test_derive_yes_no_rewrites_its_own_output(tmp_path, scored, capsys):
    assert _derive(tmp_path, capsys, "--min-score", "5")[0] == 0
    assert _derive(tmp_path, capsys, "--min-score", "6")[0] == 0     # the same source again: allowed
    assert "is >= 6" in (tmp_path / "out" / "dataset.yaml").read_text()


@pytest.mark.slow
def test_a_full_disk_while_writing_the_report_is_one_line(tmp_path, workspace):
    """The file-size limit stands in for a full disk: the write fails part way (EFBIG), as ENOSPC would."""
    import subprocess
    import sys

    from conftest import REPO

    cfg, demo_dir = workspace
    assert call("evaluate", "--config", cfg, "--data-dir", demo_dir) == 0
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    code = ("import resource, runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000)); sys.argv = sys.argv[1:]; "
            "sys.path.insert(0, '.'); runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code, "generate_report.py", "--config", str(cfg), "--data-dir",
                           str(demo_dir)], cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert lines[-1].startswith("error: ") and "File too large (nothing half-written was kept)" in lines[-1], lines
    assert not any("Traceback" in line or "Exception ignored" in line for line in lines), proc.stderr[-2000:]
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before

