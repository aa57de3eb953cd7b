"""study/results.py and study/findings.py on plain dicts: the choices made on validation, the bands."""
import pytest

from study.findings import band, band_rule, best_screening, screening_rows
from study.results import best_summary, chosen_probe

MARGINS = {"closes_gap": 0.07, "partial": 0.17}


def _models(test_mae: float) -> dict:
    probes = {"ridge": {"val_mae": 0.80, "overall_mae": 0.79, "mae_ci95": [0.7, 0.9]},
              "mlp": {"val_mae": 0.70, "overall_mae": test_mae, "mae_ci95": [test_mae - 0.03, test_mae + 0.03]}}
    return {"m": {"chosen_probe": chosen_probe(probes), "probes": probes}}


def test_bands_are_margins_over_each_datasets_own_baseline():
    # the study's original bands for uplifting_v5 (baseline 0.68): 0.75 / 0.85
    assert best_summary(_models(0.74), 0.68, MARGINS)["band"] == "closes the gap"
    assert best_summary(_models(0.85), 0.68, MARGINS)["band"] == "partial"
    assert best_summary(_models(0.86), 0.68, MARGINS)["band"] == "no improvement"
    # investment-risk_v5 (baseline 0.48): 0.74 is no improvement, not "closes the gap"
    best = best_summary(_models(0.74), 0.48, MARGINS)
    assert best["band"] == "no improvement" and best["band_limits"] == pytest.approx([0.55, 0.65])
    assert best["gap_to_baseline"] == pytest.approx(0.26) and best["probe"] == "mlp"   # chosen on validation
    assert band(0.60, 0.48, MARGINS) == "partial" and "at or below 0.55" in band_rule(0.48, MARGINS)
    assert "0.65" in band_rule(0.48, MARGINS) and band(0.5, None, MARGINS) is None


def test_gap_uses_the_articles_both_sides_scored():
    models = _models(0.74)
    models["m"]["probes"]["mlp"]["vs_baseline"] = {"probe_mae": 0.70, "baseline_mae": 0.66}
    best = best_summary(models, 0.66, MARGINS)
    assert best["gap_to_baseline"] == pytest.approx(0.04) and best["band"] == "closes the gap"


def test_best_screening_is_chosen_on_validation_and_costed_with_the_benchmark():
    def entry(val_skip, test_skip):
        t = {"target_recall": 0.99, "threshold": 3.0, "val": {"skip_share": val_skip, "recall": 0.99},
             "test": {"skip_share": test_skip, "skip_share_ci95": [0, 1], "recall": 0.98, "recall_ci95": [0, 1],
                      "skipped_mae": 0.5, "skipped_mae_ci95": [0, 1], "n_skipped": 1, "n": 10}}
        return {"val_mae": 1.0, "overall_mae": 1.0, "screening": {"thresholds": [t]}}
    ev = {"screening_setup": {"fine_tuned_ms_per_article": [20, 50]},
          "models": {"a": {"chosen_probe": "ridge", "probes": {"ridge": entry(0.30, 0.10)}},
                     "b": {"chosen_probe": "ridge", "probes": {"ridge": entry(0.20, 0.50)}}}}
    bench = {"end_to_end": {"a": {"ridge": {"ms_per_article": 2.0}}}}
    best = best_screening(ev, bench)[0.99]
    assert best["variant"] == "a"                          # larger validation skip share, though b skips more on test
    assert best["ms_per_article"] == pytest.approx([2 + 0.9 * 20, 2 + 0.9 * 50])
    assert best["speedup"] == pytest.approx([20 / 20, 50 / 47])
    assert [r["speedup"] for r in screening_rows(ev, bench) if r["variant"] == "b"] == [None]   # not benchmarked
