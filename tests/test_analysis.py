"""analyze_error_distribution.py: the error summary equals a direct numpy computation; figures are real PNGs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import in_process, write_config
from records import model_entry, score_evaluation, score_probe
from matplotlib.image import imread

from study.error_analysis import error_summary, load_predictions, model_summary
from study.artifacts import save_npz
from study.config import load_config
from study.data import file_sha256
from study.errors import StudyError
from study.results import read_evaluation
from study.schemas import ErrorModel

DIMS = ["climate_relevance", "technical_depth", "optimism"]
MODEL = {"source": "sentence-transformers", "model_name": "unused", "dimensions": 8, "max_tokens": 64}
SUMMARY_KEYS = {"n", "max_tokens", "overall_mae", "bias", "abs_error_quantiles", "per_dimension_mae", "per_language",
                "token_bins", "truncated", "not_truncated", "score_bins", "worst"}


def make_predictions(n: int = 90, max_tokens: int = 64, seed: int = 0, shrink: float = 0.6) -> dict:
    """Arrays in evaluate.py's layout: true scores on a 0.5 grid (edges 0, 2, ..., 10 included),
    predictions pulled toward 5 by `shrink` plus noise."""
    rng = np.random.default_rng(seed)
    Y = rng.integers(0, 21, size=(n, len(DIMS))) / 2
    Y[:3] = [[0, 2, 10], [10, 4, 8], [2, 6, 0]]
    P = np.clip(5 + shrink * (Y - 5) + rng.normal(0, 0.7, Y.shape), 0, 10).astype(np.float32)
    return {"ids": np.array([f"a{i:03d}" for i in range(n)]), "y_true": Y.astype(np.float32), "y_pred": P,
            "languages": rng.choice(["en", "fr", "es"], n, p=[0.6, 0.3, 0.1]),
            "token_counts": rng.integers(10, 700, n).astype(np.int64), "titles": np.array([f"title {i}" for i in range(n)]),
            "max_tokens": np.int64(max_tokens), "dimension_names": np.array(DIMS)}


def write_predictions(path: Path, arrays: dict) -> dict:
    save_npz(path, **arrays)
    return load_predictions(path)


def assert_png(path: Path, min_side: int = 300) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert min(img.shape[:2]) >= min_side and img[..., :3].std() > 0.05  # a real drawing, not a blank canvas


def test_model_summary_matches_numpy(tmp_path):
    pred = write_predictions(tmp_path / "p.npz", make_predictions())
    s = model_summary(pred, (0, 10))
    assert set(s) == SUMMARY_KEYS
    Y, P = pred["y_true"], pred["y_pred"]
    E = P - Y
    art = np.abs(E).mean(axis=1)
    assert s["n"] == 90 and s["max_tokens"] == 64
    assert s["overall_mae"] == pytest.approx(np.abs(E).mean())
    assert s["bias"] == pytest.approx(E.mean())
    assert s["abs_error_quantiles"] == pytest.approx({f"p{q}": np.percentile(np.abs(E), q) for q in (50, 90, 99)})
    assert s["per_dimension_mae"] == pytest.approx({d: np.abs(E[:, i]).mean() for i, d in enumerate(DIMS)})

    langs = pred["languages"]
    assert list(s["per_language"]) == ["en", "fr", "es"]  # largest group first
    for lang, g in s["per_language"].items():
        mask = langs == lang
        assert g == pytest.approx({"n": mask.sum(), "mae": np.abs(E[mask]).mean(), "bias": E[mask].mean()})

    cut = pred["token_counts"] > 64
    assert s["truncated"] == pytest.approx({"n": cut.sum(), "mae": art[cut].mean()})
    assert s["not_truncated"] == pytest.approx({"n": (~cut).sum(), "mae": art[~cut].mean()})
    tokens = pred["token_counts"]
    expected_tokens = [{"low": lo, "high": hi, "n": ((tokens >= lo) & (tokens < hi)).sum(),
                        "mae": art[(tokens >= lo) & (tokens < hi)].mean()}
                       for lo, hi in ((0, 128), (128, 256), (256, 512), (512, 1024))]
    assert len(s["token_bins"]) == len(expected_tokens)
    for got, want in zip(s["token_bins"], expected_tokens):  # approx compares flat dicts only
        assert got == pytest.approx(want)

    y, e = Y.ravel(), E.ravel()
    expected_bins = []
    for lo, hi in ((0, 2), (2, 4), (4, 6), (6, 8), (8, 10)):
        mask = (y >= lo) & ((y < hi) if hi < 10 else (y <= hi))  # the last bin holds the 10s
        expected_bins.append({"low": lo, "high": hi, "n": mask.sum(), "mae": np.abs(e[mask]).mean(), "bias": e[mask].mean()})
    assert len(s["score_bins"]) == len(expected_bins)
    for got, want in zip(s["score_bins"], expected_bins):
        assert got == pytest.approx(want)
    assert sum(b["n"] for b in s["score_bins"]) == Y.size

    order = sorted(range(90), key=lambda i: -art[i])[:20]
    assert [w["id"] for w in s["worst"]] == [f"a{i:03d}" for i in order]
    assert [w["mae"] for w in s["worst"]] == pytest.approx(art[order])
    first = s["worst"][0]
    assert first["true"] == pytest.approx(Y[order[0]].tolist()) and first["pred"] == pytest.approx(P[order[0]].tolist())
    assert first["title"] == f"title {order[0]}" and first["language"] == langs[order[0]]


def test_shrinking_probe_shows_pull_toward_the_mean(tmp_path):
    pred = write_predictions(tmp_path / "p.npz", make_predictions(shrink=0.3, seed=1))
    bins = model_summary(pred, (0, 10))["score_bins"]
    assert bins[0]["bias"] > 1 and bins[-1]["bias"] < -1  # low scores over-, high scores under-predicted


def test_nothing_truncated_gives_null_mae(tmp_path):
    pred = write_predictions(tmp_path / "p.npz", make_predictions(max_tokens=8192))
    s = model_summary(pred, (0, 10))
    assert s["truncated"] == {"n": 0, "mae": None} and s["not_truncated"]["n"] == 90


def test_load_predictions_names_missing_arrays(tmp_path):
    arrays = make_predictions()
    del arrays["token_counts"]
    save_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(StudyError, match=r"bad\.npz.*token_counts"):
        load_predictions(tmp_path / "bad.npz")


def evaluation_json(variants, probe: str) -> dict:
    """An evaluation JSON with `probe` chosen for every model (and the first model best)."""
    models = {v: model_entry(v, {probe: score_probe(1.0, val_mae=1.0, dims=DIMS)}) for v in variants}
    return score_evaluation(models, dataset="toy", dims=DIMS)


@pytest.fixture
def setup(tmp_path):
    cfg_path = write_config(tmp_path, {"small": MODEL, "long": {**MODEL, "max_tokens": 512}})
    data_dir = tmp_path / "toy"
    data_dir.mkdir()
    return cfg_path, load_config(cfg_path), data_dir


@pytest.mark.slow   # every figure
def test_script_writes_summary_and_figures(setup):
    cfg_path, cfg, data_dir = setup
    preds = {}
    for seed, (variant, max_tokens) in enumerate((("small", 64), ("long", 512))):
        path = cfg.results_path / "predictions" / f"toy_{variant}_mlp_test.npz"
        preds[variant] = write_predictions(path, make_predictions(max_tokens=max_tokens, seed=seed))
    (cfg.results_path / "toy_evaluation_results.json").write_text(json.dumps(evaluation_json(("small", "long"), "mlp")))

    proc = in_process("analyze_error_distribution.py", "--config", cfg_path, "--data-dir", data_dir,
                      "--probe", "mlp")
    out = cfg.results_path / "analysis" / "toy_error_summary.json"
    assert str(out) in proc.stdout
    summary = json.loads(out.read_text())
    assert list(summary) == ["schema_version", "task", "dataset", "probe", "figures", "models", "provenance",
                             "evaluation_sha256"]
    assert summary["evaluation_sha256"] == file_sha256(cfg.results_path / "toy_evaluation_results.json")
    assert summary["dataset"] == "toy" and summary["probe"] == "mlp"
    assert list(summary["models"]) == ["small", "long"]
    direct = error_summary("toy", "mlp", preds, (0, 10))["models"]   # as the typed model writes it (optional fields null)
    assert summary["models"] == {v: ErrorModel.model_validate(m).model_dump(mode="json", exclude_unset=True) for v, m in direct.items()}
    assert summary["models"]["long"]["max_tokens"] == 512

    expected = {"error_histograms", "error_violins", "pred_vs_true", "dimension_mae", "error_vs_tokens",
                "error_by_language", "bias_by_score_bin"}
    assert set(summary["figures"]) == expected
    for rel in summary["figures"].values():
        assert rel.startswith("analysis/") and rel.endswith(".png")
        assert_png(cfg.results_path / rel)
    assert not list(cfg.results_path.rglob("*.tmp"))


def test_missing_predictions_is_one_line_exit_2(setup):
    cfg_path, cfg, data_dir = setup
    cfg.results_path.mkdir(parents=True)
    (cfg.results_path / "toy_evaluation_results.json").write_text(json.dumps(evaluation_json(("small",), "ridge")))
    proc = in_process("analyze_error_distribution.py", "--config", cfg_path, "--data-dir", data_dir,
                      "--models", "small", "--probe", "ridge", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(cfg.results_path / "predictions" / "toy_small_ridge_test.npz") in lines[0]
    assert not (cfg.results_path / "analysis").exists()


def test_probe_defaults_to_the_one_chosen_on_validation(setup):
    cfg_path, cfg, data_dir = setup
    write_predictions(cfg.results_path / "predictions" / "toy_small_lightgbm_test.npz", make_predictions())
    (cfg.results_path / "toy_evaluation_results.json").write_text(json.dumps(evaluation_json(("small",), "lightgbm")))
    in_process("analyze_error_distribution.py", "--config", cfg_path, "--data-dir", data_dir)
    summary = json.loads((cfg.results_path / "analysis" / "toy_error_summary.json").read_text())
    assert summary["probe"] == "lightgbm"
    assert all(rel.startswith("analysis/toy_lightgbm_") for rel in summary["figures"].values())


def test_phase_5_is_a_function_returning_the_record_it_wrote(score_study_copy, yes_no_study_copy):
    """study/error_analysis.py `analyze` (what analyze_error_distribution.py calls) returns the typed record it wrote,
    of the task's type, with the figures it drew; the script on the same inputs writes the same file."""
    from study import paths
    from study.data import dataset_name
    from study.error_analysis import BINARY_FIGURES, FIGURES, Options, analyze
    from study.schemas import ErrorSummary, YesNoErrorSummary, read_record

    for (cfg_path, data, _), kind, figures in ((score_study_copy, ErrorSummary, FIGURES),
                                               (yes_no_study_copy, YesNoErrorSummary, BINARY_FIGURES)):
        cfg, name = load_config(cfg_path), dataset_name(None, str(data))
        done = analyze(cfg, name, Options(models=("tiny",)))
        assert isinstance(done.record, kind) and done.path == paths.error_summary(cfg, name)
        assert done.record == read_record(done.path, kind, "error summary", "")
        assert list(done.figures) == list(figures) == list(done.record.figures)
        for n, png in done.figures.items():
            assert cfg.results_path / done.record.figures[n] == png and png.read_bytes()[:4] == b"\x89PNG"
        assert list(done.record.models) == ["tiny"] and done.record.probe == read_evaluation(cfg, name).best.probe

    # the script on the same inputs writes the same file and prints from the record (on the yes/no study: its one
    # figure is cheap; the score study's script output is checked against numpy in test_script_writes_summary_...)
    proc = in_process("analyze_error_distribution.py", "--config", cfg_path, "--data-dir", data, "--models", "tiny")
    again = read_record(done.path, kind, "error summary", "")
    assert again.model_dump(exclude={"provenance"}) == done.record.model_dump(exclude={"provenance"})
    m = done.record.models["tiny"]
    assert f"tiny{' ' * 28} {m.threshold:9.3f} {m.confusion.tp:5d} {m.confusion.fp:5d}" in proc.stdout
    assert f"summary: {done.path}" in proc.stdout
