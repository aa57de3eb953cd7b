"""compare_results.py: the markdown report holds the evaluation JSON's numbers; charts are real PNGs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import in_process, markdown_tables, write_config
from matplotlib.image import imread
from records import as_model, config_dump, mean_predictor, model_entry, score_evaluation, score_probe

from study import plots
from study.data import file_sha256
from study.schemas import SCHEMA_VERSION
from study.comparison import comparison_rows, dimension_matrix

DIMS = ["clarity", "evidence_strength"]
MODEL = {"source": "sentence-transformers", "model_name": "unused", "dimensions": 8, "max_tokens": 128}


def _probe(mae, ci, val, rmse, rho, per_dim, per_lang, truncated, whole) -> dict:
    return score_probe(
        overall_mae=mae, mae_ci95=ci, val_mae=val, overall_rmse=rmse, overall_spearman=rho, dims=DIMS,
        per_dimension={d: {"mae": m, "rmse": m + 0.2, "spearman": 0.5} for d, m in zip(DIMS, per_dim)},
        per_language={lang: {"n": n, "mae": m} for lang, (n, m) in per_lang.items()},
        truncation={"max_tokens": 128, "truncated": {"n": truncated[0], "mae": truncated[1]},
                    "not_truncated": {"n": whole[0], "mae": whole[1]}},
        inference_ms_per_article=0.05, selected={})


def make_results(baseline: float | None = 0.68) -> dict:
    """Evaluation results with known numbers: ridge of m-large is best on test, mlp of m-large on validation."""
    models = {
        "m-small": model_entry("m-small", max_tokens=128, truncated_fraction=0.75, chosen="mlp", probes={
                    "ridge": _probe(0.9123, [0.8511, 0.9744], 0.9051, 1.2011, 0.4123, [0.8012, 1.0234],
                                    {"en": (30, 0.8834), "fr": (10, 0.9991)}, (30, 0.9456), (10, 0.8124)),
                    "mlp": _probe(0.8016, [0.7422, 0.8633], 0.7912, 1.1012, 0.5012, [0.7541, 0.8491],
                                  {"en": (30, 0.7788), "fr": (10, 0.8701)}, (30, 0.8222), (10, 0.7398))}),
        "m-large": model_entry("m-large", max_tokens=128, truncated_fraction=0.75, chosen="mlp", probes={
                    "ridge": _probe(0.7051, [0.6512, 0.7633], 0.7203, 0.9901, 0.6234, [0.6611, 0.7491],
                                    {"en": (30, 0.6987), "fr": (10, 0.7243)}, (30, 0.7102), (10, 0.6898)),
                    "mlp": _probe(0.7334, [0.6747, 0.7956], 0.7012, 1.0123, 0.6011, [0.7012, 0.7656],
                                  {"en": (30, 0.7211), "fr": (10, 0.7703)}, (30, 0.7523), (10, 0.6767))}),
    }
    best = {"model": "m-large", "probe": "mlp", "val_mae": 0.7012, "test_mae": 0.7334,
            "mae_ci95": [0.6747, 0.7956], "chosen_by": "validation MAE",
            "verdicts": {"candidates": 4, "vs_median_predictor": "better", "vs_mean_predictor": "better",
                         "null_result": None}}
    if baseline is not None:
        best.update(gap_to_baseline=0.7334 - baseline, band="closes the gap")
        best["verdicts"].update(   # what evaluate.py records: the CI against the single baseline, and its bands
            vs_baseline={"difference": 0.7334 - baseline, "ci95": [0.6747 - baseline, 0.7956 - baseline],
                         "margin": 0.02, "better": "lower", "paired": False, "reference": baseline,
                         "verdict": "inconclusive"},
            bands_spanned=["closes the gap", "partial"], band_reading="partial, possibly closes the gap")
    return score_evaluation(
        models, best, dataset="toy", dims=DIMS, n_test=40, baseline_mae=baseline,
        baseline_source="config.yaml baseline_mae",
        random_seed=42, bootstrap_samples=200, success_bands={"closes_gap": 0.07, "partial": 0.17},
        language_counts={"en": 30, "fr": 10},
        mean_predictor=mean_predictor(1.4321, DIMS, overall_rmse=1.8767, overall_spearman=None,
                              per_dimension={d: {"mae": 1.4, "rmse": 1.8, "spearman": None} for d in DIMS},
                              mae_ci95=[1.3012, 1.5567]),
        evaluated_at="2026-01-01T00:00:00+00:00")


def table(md: str, caption_start: str) -> list[list[str]]:
    """Cells of the one markdown table whose caption starts with `caption_start` (header row first)."""
    found = [cells for caption, cells in markdown_tables(md).items() if caption.startswith(caption_start)]
    assert len(found) == 1, (caption_start, list(markdown_tables(md)))
    return [[c.replace("\u200b", "") for c in row] for row in found[0]]


def compare(setup, results: dict) -> str:
    """Run compare_results.py on `results`; the markdown it wrote."""
    cfg, data_dir, results_dir = setup
    results = {**results, "config": config_dump(cfg)}   # the configuration the evaluation ran with
    (results_dir / "toy_evaluation_results.json").parent.mkdir(parents=True, exist_ok=True)
    (results_dir / "toy_evaluation_results.json").write_text(json.dumps(results))
    proc = in_process("compare_results.py", "--config", cfg, "--data-dir", data_dir)
    report = results_dir / "toy_comparison_report.md"
    assert str(report) in proc.stdout
    return report.read_text(encoding="utf-8")


def assert_png(path: Path, min_side: int = 300) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert min(img.shape[:2]) >= min_side and img[..., :3].std() > 0.05  # a real drawing, not a blank canvas


@pytest.fixture
def setup(tmp_path):
    cfg = write_config(tmp_path, {"m-small": MODEL, "m-large": MODEL})
    data_dir = tmp_path / "toy"
    data_dir.mkdir()
    return cfg, data_dir, tmp_path / "results"


def test_report_and_charts_hold_the_json_numbers(setup):
    cfg, data_dir, results_dir = setup
    results = make_results()
    md = compare(setup, results)

    board = table(md, "Every model and probe")
    # no speed benchmark: the Articles/s column is empty in every row, so it is left out and the caption says why
    assert board[0] == ["Model", "Probe", "Test MAE [95% CI]", "− train median [95% CI]", "− best model [95% CI]",
                        "− fine-tuned [95% CI]", "Spearman"]
    assert "Left out, empty in every row: Articles/s (no speed benchmark ran)." in md
    body = board[1:5]   # sorted by test MAE; the validation choice is marked, not the test winner
    assert [(r[0], r[1], r[2]) for r in body] == [
        ("m-large", "ridge", "0.705 [0.651, 0.763]"), ("m-large", "mlp (best)", "0.733 [0.675, 0.796]"),
        ("m-small", "mlp", "0.802 [0.742, 0.863]"), ("m-small", "ridge", "0.912 [0.851, 0.974]")]
    # against the single baseline MAE 0.68 (no predictions): the CI shifted by it, read by the same rule, unpaired
    assert body[2][5] == "+0.122 [+0.062, +0.183] worse" and body[2][6] == "0.501"
    # the constant the verdicts read (the training median), then the mean beside it, then the fine-tuned model
    median = make_results()["median_predictor"]
    assert board[5][:4] == ["train-median predictor", "—", f"{median['overall_mae']:.3f} [{median['mae_ci95'][0]:.3f}, "
                            f"{median['mae_ci95'][1]:.3f}]", "reference"]
    assert board[6] == ["train-mean predictor", "—", "1.432 [1.301, 1.557]", "—", "—", "—", "—"]
    assert board[7][:3] == ["fine-tuned baseline", "—", "0.680"]
    assert "Fine-tuned baseline from config.yaml baseline_mae; against it unpaired" in md

    decision = {r[0]: r[1] for r in table(md, "The study's questions")[1:]}
    assert decision["Does the best probe close the gap to the fine-tuned model?"].startswith(
        "partial, possibly closes the gap")

    dims = table(md, "Test RMSE and MAE per dimension")
    assert dims[0] == ["Model + probe", "RMSE", *DIMS]
    assert ["m-small + ridge", "1.201", "0.801", "1.023"] in dims and ["m-large + mlp", "1.012", "0.701", "0.766"] in dims


    trunc = table(md, "Test MAE of the articles cut")
    assert ["m-small", "128", "75.0%", "mlp", "30", "0.822", "10", "0.740", "too few to judge"] in trunc
    assert "Speed comparison unavailable" in md and "run benchmark_speed.py" in md   # phase 4 comes later

    record = json.loads((results_dir / "toy_comparison.json").read_text())
    assert set(record.pop("provenance")) == {"code", "host", "device", "versions", "created_at"}
    assert record.pop("schema_version") == SCHEMA_VERSION
    assert record.pop("evaluation_sha256") == file_sha256(results_dir / "toy_evaluation_results.json")
    assert record == {"dataset": "toy", "report": "toy_comparison_report.md",
                      "figures": {"mae_by_model": "figures/toy_mae_by_model.png",
                                  "dimension_mae_heatmap": "figures/toy_dimension_mae_heatmap.png"}}
    for rel in record["figures"].values():
        assert_png(results_dir / rel)
    assert not list(results_dir.rglob("*.tmp"))


def test_missing_evaluation_json_is_one_line_exit_2(setup):
    cfg, data_dir, results_dir = setup
    proc = in_process("compare_results.py", "--config", cfg, "--data-dir", data_dir, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(results_dir / "toy_evaluation_results.json") in lines[0]
    assert not (results_dir / "toy_comparison_report.md").exists()


def test_without_baseline_no_band_and_bars_still_drawn(setup, tmp_path):
    results = make_results(baseline=None)
    md = compare(setup, results)
    head = table(md, "Every model and probe")[0]
    assert "− fine-tuned [95% CI]" not in head and "Bands the CI spans" not in head
    assert "no fine-tuned baseline MAE" in md and "possibly closes the gap" not in md
    out = plots.mae_bars(comparison_rows(as_model(results)), None, tmp_path / "bars.png")
    assert_png(out)


def test_baseline_predictions_add_reference_rows(setup):
    results = make_results()
    results["baseline"] = {"overall_mae": 0.6812, "overall_rmse": 0.9234, "overall_spearman": 0.7123,
                           "mae_ci95": [0.6311, 0.7344], "n_articles": 40, "source": "baseline.json",
                           "per_dimension": {"clarity": {"mae": 0.6502, "rmse": 0.8, "spearman": 0.7},
                                             "evidence_strength": {"mae": 0.7122, "rmse": 0.9, "spearman": 0.7}}}
    results["models"]["m-large"]["probes"]["mlp"]["vs_baseline"] = {"n_articles": 40, "mae_difference": 0.0522,
                                                         "probe_mae": 0.7334, "baseline_mae": 0.6812,
                                                         "difference_ci95": [-0.0108, 0.1163],
                                                         "verdict": "inconclusive", "equivalence_margin": 0.02}
    md = compare(setup, results)
    board = table(md, "Every model and probe")
    assert ["fine-tuned baseline", "—", "0.681 [0.631, 0.734]", "—", "—", "reference", "0.712"] in board
    assert next(r for r in board if r[1] == "mlp (best)")[5] == "+0.052 [−0.011, +0.116] inconclusive"   # paired
    assert next(r for r in board if r[1] == "ridge")[5].endswith(" (unpaired)")   # the others: the single MAE
    assert ["fine-tuned baseline", "0.923", "0.650", "0.712"] in table(md, "Test RMSE and MAE per dimension")


def test_dimension_matrix_rows_follow_the_ranking():
    matrix, rows, cols = dimension_matrix(as_model(make_results()))
    assert rows == ["m-large / ridge", "m-large / mlp", "m-small / mlp", "m-small / ridge"] and cols == DIMS
    np.testing.assert_allclose(matrix[0], [0.6611, 0.7491])


def test_quality_vs_speed_writes_a_png(tmp_path):
    points = [{"label": "m-small + mlp", "mae": 0.80, "articles_per_s": 900.0},
              {"label": "m-large + ridge", "mae": 0.70, "articles_per_s": 40.0}]
    out = plots.quality_vs_speed(points, 0.68, tmp_path / "sub" / "speed.png")
    assert out == tmp_path / "sub" / "speed.png"
    assert_png(out)
    assert [p.name for p in out.parent.iterdir()] == ["speed.png"]
