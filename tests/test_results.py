"""study/results.py and study/findings.py: the choices made on validation, the bands, the screening rows."""
import pytest

from records import (as_model, benchmark_record, model_entry, score_evaluation, score_probe, screening_threshold,
                     stage1_cost, timed_model)
from study.schemas import BenchmarkRecord
from study.findings import band_rule, bands_of, screening_rows, vs_baseline
from study.metrics import success_band
from study.results import best_summary, chosen_probe

MARGINS = {"closes_gap": 0.07, "partial": 0.17}


def _models(test_mae: float, half: float = 0.03) -> dict:
    probes = {"ridge": {"val_mae": 0.80, "overall_mae": 0.79, "mae_ci95": [0.7, 0.9]},
              "mlp": {"val_mae": 0.70, "overall_mae": test_mae, "mae_ci95": [test_mae - half, test_mae + half]}}
    return {"m": {"chosen_probe": chosen_probe(probes), "probes": probes}}


def test_bands_are_margins_over_each_datasets_own_baseline():
    # the study's original bands for uplifting_v5 (baseline 0.68): 0.75 / 0.85, read on the whole CI
    assert best_summary(_models(0.74, 0.005), 0.68, MARGINS)["band"] == "closes the gap"
    assert best_summary(_models(0.84, 0.005), 0.68, MARGINS)["band"] == "partial"
    assert best_summary(_models(0.86, 0.005), 0.68, MARGINS)["band"] == "no improvement"
    # a CI across a limit is read whole, never by its point estimate: 0.74 [0.71, 0.77] straddles 0.75
    assert best_summary(_models(0.74), 0.68, MARGINS)["band"] == "partial, possibly closes the gap"
    # investment-risk_v5 (baseline 0.48): 0.74 is no improvement, not "closes the gap"
    best = best_summary(_models(0.74), 0.48, MARGINS)
    assert best["band"] == "no improvement" and best["band_limits"] == pytest.approx([0.55, 0.65])
    assert best["gap_to_baseline"] == pytest.approx(0.26) and best["probe"] == "mlp"   # chosen on validation
    assert success_band(0.60, 0.48, MARGINS) == "partial" and "at or below 0.55" in band_rule(0.48, MARGINS)
    assert "0.65" in band_rule(0.48, MARGINS) and band_rule(None, MARGINS) is None


def test_gap_uses_the_articles_both_sides_scored():
    models = _models(0.74)
    models["m"]["probes"]["mlp"]["vs_baseline"] = {"probe_mae": 0.70, "baseline_mae": 0.66,
                                                   "difference_ci95": [0.02, 0.06]}   # MAE [0.68, 0.72] < 0.73
    best = best_summary(models, 0.66, MARGINS)
    assert best["gap_to_baseline"] == pytest.approx(0.04) and best["band"] == "closes the gap"


def test_screening_rows_quote_the_guarantee_and_cost_only_what_is_certified():
    probe = score_probe(screening={"thresholds": [screening_threshold(0.95, 0.10, 0.30), screening_threshold(0.99, 0, 0.2, False)],
                                   "curve": {"threshold": [], "skip_share": [], "recall": []}})
    ev = as_model(score_evaluation({"a": model_entry("a", {"ridge": probe})}))
    bench = BenchmarkRecord.model_validate(benchmark_record({"a": timed_model()}, {"a": {"ridge": stage1_cost(2.0)}}))
    certified, not_certified = screening_rows(ev, bench)
    assert certified["threshold"] == 2.5 and certified["test"].skip_share == 0.10      # the guaranteed one ...
    assert certified["plug_in_test"].skip_share == 0.30                                # ... the plug-in beside it
    assert certified["ms_per_article"] == pytest.approx([2 + 0.9 * 20, 2 + 0.9 * 50])
    assert certified["speedup"] == pytest.approx([20 / 20, 50 / 47])
    assert not not_certified["certified"] and not_certified["articles_needed"] == 299
    assert not_certified["ms_per_article"] is None and not_certified["test"] is None   # nothing costed, nothing quoted


def test_the_baseline_is_read_paired_when_it_can_be_and_unpaired_otherwise():
    """One rule for both: the paired record where evaluate.py had the fine-tuned predictions, else the test MAE's
    CI shifted by the single baseline number, read against the same margin."""
    probe = score_probe(overall_mae=0.80, mae_ci95=[0.75, 0.85])
    ev = as_model(score_evaluation({"a": model_entry("a", {"ridge": probe})}, baseline_mae=0.70,
                                   baseline_source="config", config={"equivalence_margin": 0.02}))
    r = vs_baseline(ev, ev.models["a"].probes["ridge"])
    assert not r["paired"] and r["ci95"] == pytest.approx([0.05, 0.15]) and r["verdict"] == "worse"
    # against 0.70 the bands end at 0.77 (closes the gap) and 0.87 (partial): the whole CI is read
    assert bands_of(ev, [0.75, 0.85]) == "partial, possibly closes the gap"
    assert bands_of(ev, [0.80, 0.90]) == "no improvement, possibly partial" and bands_of(ev, [0.78, 0.86]) == "partial"
    near = as_model(score_evaluation({"a": model_entry("a", {"ridge": score_probe(
        overall_mae=0.70, mae_ci95=[0.69, 0.71], vs_baseline={"n_articles": 50, "probe_mae": 0.7, "baseline_mae": 0.7,
                                                             "mae_difference": 0.0, "difference_ci95": [-0.01, 0.01],
                                                             "verdict": "equivalent", "equivalence_margin": 0.02})})},
        baseline_mae=0.70, baseline_source="config"))
    r = vs_baseline(near, near.models["a"].probes["ridge"])
    assert r["paired"] and r["verdict"] == "equivalent"
