"""Phase 3b: the evaluation JSON as a markdown comparison report and its two charts.

`comparison_rows` and `dimension_matrix` are the plain data of the charts; `comparison_markdown`
writes the report (best model against the baseline, overall, per dimension, per language,
truncation, screening, the learning curve); `draw_figures` draws the charts under the names of `FIGURES`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from study import paths, plots
from study.config import Config
from study.findings import (CURVE_RULE, article_score_rows, band_rule, chunking_rows, concatenation_rows,
                            learning_curve_readings, learning_curve_rows, screening_curves, screening_rows,
                            training_cost)
from study.results import best as best_entry
from study.results import learning_curves, ranked

FIGURES = {  # name -> caption, in the order of the report
    "mae_by_model": "Test MAE by model and probe with 95% CIs",
    "dimension_mae_heatmap": "Test MAE per dimension",
    "screening_curve": "Share of test articles that skip the fine-tuned model against the share of medium+ "
                       "articles kept, over all thresholds (each model's probe chosen on validation)",
    "learning_curve": "Test MAE with 95% CIs against the number of training articles (nested subsets of the "
                      "training split; train_probes.py --train-fractions)",
}


def comparison_rows(results: dict) -> list[dict]:
    """One row a model x probe ({model, probe, mae, ci95, rmse, spearman, val_mae}), best test MAE first."""
    return [{"model": v, "probe": p, "mae": m["overall_mae"], "ci95": m["mae_ci95"], "rmse": m["overall_rmse"],
             "spearman": m["overall_spearman"], "val_mae": m["val_mae"]} for v, p, m in ranked(results)]


def dimension_matrix(results: dict) -> tuple[np.ndarray, list[str], list[str]]:
    """Per-dimension test MAE: (matrix, row labels 'model / probe', dimension names), best row first."""
    dims = results["dimension_names"]
    entries = ranked(results)
    matrix = np.array([[m["per_dimension"][d]["mae"] for d in dims] for _, _, m in entries], dtype=float)
    return matrix, [f"{v} / {p}" for v, p, _ in entries], list(dims)


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ci(ci) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]"


def _gap(mae: float, base: float | None) -> str:
    return "n/a" if base is None else f"{mae - base:+.3f}"


def _table(header: list[str], rows: list[list], right_from: int = 1) -> str:
    """A markdown table; columns from `right_from` on are right-aligned (numbers)."""
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = [header, align] + [[str(c) for c in row] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _baseline_position(ci, baseline: float) -> str:
    if ci[1] < baseline:
        return "below the baseline (the whole 95% CI is lower)"
    if ci[0] > baseline:
        return "above the baseline (the whole 95% CI is higher)"
    return "not distinguishable from the baseline (it lies inside the 95% CI)"


def _best_section(results: dict) -> list[str]:
    best, base = results["best"], results.get("baseline_mae")
    out = ["## Best model (chosen on validation MAE)", "",
           f"- **{best['model']} + {best['probe']}**: validation MAE {_f(best['val_mae'])}, "
           f"test MAE {_f(best['test_mae'])} {_ci(best['mae_ci95'])}"]
    if base is None:
        out.append("- No fine-tuned baseline known (config.yaml baseline_mae, evaluate.py --baseline-mae or "
                   "--baseline-predictions): no verdict band")
    else:
        out += [f"- Fine-tuned baseline: test MAE {_f(base, 2)} ({results['baseline_source']})",
                f"- Gap to the baseline: {best['gap_to_baseline']:+.3f}; the best probe is "
                f"{_baseline_position(best['mae_ci95'], base)}",
                f"- Verdict: **{best['band']}** (bands {band_rule(results['baseline_mae'], results['success_bands'])})"]
        paired = best_entry(results)[2].get("vs_baseline")
        if paired:
            out.append(f"- Paired on {paired['n_articles']} matched articles: probe - baseline MAE "
                       f"{paired['mae_difference']:+.3f} {_ci(paired['difference_ci95'])}")
    mean = results.get("mean_predictor")
    if mean:
        out.append(f"- Train-mean predictor (predicts every article as the training mean): test MAE "
                   f"{_f(mean['overall_mae'])} {_ci(mean['mae_ci95'])}")
    return out


def _references(results: dict) -> list[tuple[str, dict]]:
    """The train-mean predictor and the fine-tuned model's scores, where the results hold them."""
    return [(name, results[key]) for name, key in (("train-mean predictor", "mean_predictor"),
                                                   ("fine-tuned baseline", "baseline")) if results.get(key)]


def _overall_section(results: dict) -> list[str]:
    best, base = results["best"], results.get("baseline_mae")
    table = [[i, r["model"], r["probe"] + (" (best on val)" if (r["model"], r["probe"]) == (best["model"], best["probe"])
                                           else ""), _f(r["mae"]), _ci(r["ci95"]), _f(r["rmse"]), _f(r["spearman"]),
              _f(r["val_mae"]), _gap(r["mae"], base)] for i, r in enumerate(comparison_rows(results), 1)]
    table += [["", name, "", _f(ref["overall_mae"]), _ci(ref["mae_ci95"]), _f(ref["overall_rmse"]),
               _f(ref["overall_spearman"]), "", _gap(ref["overall_mae"], base)] for name, ref in _references(results)]
    return ["## Overall results (sorted by test MAE)", "",
            "Spearman: mean of the per-dimension rank correlations. Gap: test MAE minus the baseline's.", "",
            _table(["#", "model", "probe", "test MAE", "95% CI", "RMSE", "Spearman", "val MAE", "gap"], table, 3)]


def _dimension_section(results: dict) -> list[str]:
    matrix, labels, dims = dimension_matrix(results)
    rows = [[label, *(_f(v) for v in row)] for label, row in zip(labels, matrix)]
    rows += [[name, *(_f(ref["per_dimension"][d]["mae"]) for d in dims)] for name, ref in _references(results)]
    return ["## Test MAE per dimension", "", _table(["model / probe", *dims], rows)]


def _language_section(results: dict) -> list[str]:
    entries = ranked(results)
    counts = results.get("language_counts") or {}
    langs = list(counts) or list(dict.fromkeys(lang for _, _, m in entries for lang in m["per_language"]))
    rows = [[f"{v} / {p}", *(_f(m["per_language"][lang]["mae"]) if lang in m["per_language"] else "n/a"
                             for lang in langs)] for v, p, m in entries]
    header = [f"{lang} (n={counts[lang]})" if lang in counts else lang for lang in langs]
    return ["## Test MAE per language", "", _table(["model / probe", *header], rows)]


def _truncation_section(results: dict) -> list[str]:
    rows = []
    for v, p, m in ranked(results):
        t = m["truncation"]
        cut, whole = t["truncated"], t["not_truncated"]
        diff = None if cut["mae"] is None or whole["mae"] is None else f"{cut['mae'] - whole['mae']:+.3f}"
        rows.append([f"{v} / {p}", t["max_tokens"], f"{cut['n']} ({cut['n'] / (cut['n'] + whole['n']):.0%})",
                     _f(cut["mae"]), whole["n"], _f(whole["mae"]), diff or "n/a"])
    return ["## Truncation: articles longer than the model's max tokens", "",
            "Token counts are measured before truncation; a positive difference means cut articles score worse.", "",
            _table(["model / probe", "max tokens", "truncated", "MAE truncated", "whole", "MAE whole", "difference"],
                   rows)]


def _diff(d) -> str:
    return "n/a" if not d else f"{d['mae_difference']:+.3f} {_ci(d['difference_ci95'])}"


def _chunking_section(results: dict) -> list[str]:
    """Chunked against truncated (only when both were evaluated)."""
    rows = [[r["variant"], r["truncated"], r["probe"], _f(r.get("windows_per_article"), 2), _pct(r.get("capped_fraction")),
             _diff(r["all"]), r["cut"]["n_articles"] if r["cut"] else 0, _diff(r["cut"])] for r in chunking_rows(results)]
    if not rows:
        return []
    return ["## Chunked against truncated", "",
            "Same model, same probe (the chunked variant's chosen on validation); difference = chunked − truncated test "
            "MAE paired on the same articles, with its 95% CI: below zero chunking helps.", "",
            _table(["chunked", "truncated", "probe", "windows/article", "cut after max windows", "difference, all",
                    "n cut", "difference, cut articles"], rows, right_from=3)]


def _pairs_section(results: dict) -> list[str]:
    """Concatenations against their parts (only when one was evaluated)."""
    rows = [[r["variant"], r["probe"], f"{_f(r['mae'])} {_ci(r['ci'])}", a["part"], _diff(a), a["reading"]]
            for r in concatenation_rows(results) for a in r["against"]]
    if not rows:
        return []
    return ["## Models side by side", "",
            "Difference = pair − part test MAE, same probe, paired on the same articles, with its 95% CI: below zero "
            "the pair is better.", "",
            _table(["pair", "probe", "test MAE", "part", "difference", "reading"], rows, right_from=2)]


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _pct_ci(ci) -> str:
    return "n/a" if not ci or ci[0] is None else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _screening_section(results: dict) -> list[str]:
    setup = results.get("screening_setup")
    rows = screening_rows(results)
    if not setup or not rows:
        return ["## Can a probe screen articles for the fine-tuned model?", "",
                "No screening results: rerun evaluate.py (it predicts the validation split and chooses thresholds)."]
    tiers, weights = setup["tiers"], setup["weights"]
    table = [[f"{r['variant']} / {r['probe']}", f"{r['target']:.0%}", f"{r['threshold']:.2f}", _pct(r["val_skip_share"]),
              _pct(r["skip_share"]), _pct_ci(r["skip_share_ci95"]), _pct(r["recall"]), _pct_ci(r["recall_ci95"]),
              _f(r["skipped_mae"]), _ci(r["skipped_mae_ci95"]) if r["skipped_mae_ci95"][0] is not None else "n/a"]
             for r in rows]
    cost = [[f"{r['variant']} / {r['probe']}", _f(r["embedding_seconds"], 1), _f(r["probe_seconds"], 1),
             _f(r["total_seconds"], 1), r["device"] or "n/a",
             "n/a" if not r["share_of_fine_tuned"] else f"{100 * r['share_of_fine_tuned'][1]:.2f}-"
                                                       f"{100 * r['share_of_fine_tuned'][0]:.2f}%"]
            for r in training_cost(results)]
    hours = setup["fine_tuned_training_hours"]
    return ["## Can a probe screen articles for the fine-tuned model?", "",
            "Article score: the weighted mean of the dimension scores (weights "
            + ", ".join(f"{d} {w:.3g}" for d, w in weights.items()) + f"); medium+ means a true score >= "
            f"{tiers['medium']:g} (high >= {tiers['high']:g}). For each recall target the threshold on the predicted "
            "score is chosen on the validation split (the highest that keeps the target share of medium+ validation "
            "articles) and applied unchanged to test. Articles below it skip the fine-tuned model; their probe "
            "scores are final (skipped MAE).", "",
            _table(["model / probe", "target", "threshold", "val skip", "test skip", "95% CI", "test recall", "95% CI",
                    "skipped MAE", "95% CI"], table),
            "", "Article scores on test: MAE of the weighted article score, tier accuracy (low / medium / high) and "
            "the share of article scores within 0.5 and 1.0 of the truth.", "",
            _table(["model / probe", "article MAE", "95% CI", "tier accuracy", "95% CI", "within 0.5", "within 1.0"],
                   [[f"{v} / {p}", _f(a["weighted_mae"]), _ci(a["weighted_mae_ci95"]), _pct(a["tier_accuracy"]),
                     _pct_ci(a["tier_accuracy_ci95"]), _pct(a["within_0.5"]), _pct(a["within_1.0"])]
                    for v, p, a in article_score_rows(results)]),
            "", f"Training cost: embedding train + val (as recorded in the caches) plus the probe's fit, against "
            f"{hours[0]:g}-{hours[1]:g} h for the fine-tuned model.", "",
            _table(["model / probe", "embedding s", "probe fit s", "total s", "device", "of fine-tuned training"], cost)]


def _learning_curve_section(results: dict) -> list[str]:
    head = ["## Would more labels help? (learning curve)", ""]
    rows = learning_curve_rows(results)
    if not rows:
        return head + ["No learning curve: run `python train_probes.py ... --train-fractions 0.1 0.25 0.5 1.0`, then "
                       "evaluate.py."]
    table = [[f"{r['variant']} / {r['probe']}", f"{r['fraction']:g}", r["n_train"], _f(r["mae"]), _ci(r["ci"]),
              _f(r["val_mae"]), "" if r["difference"] is None else f"{r['difference']:+.3f}",
              "" if r["difference_ci"] is None else _ci(r["difference_ci"])] for r in rows]
    readings = [f"- {r['variant']} / {r['probe']}: **{r['reading']}** (test MAE {_f(r['mae_first'])} with "
                f"{r['n_first']} training articles, {_f(r['mae_last'])} with {r['n_last']}"
                + ("" if r["difference"] is None else f"; last step {r['n_previous']} -> {r['n_last']}: "
                   f"{r['difference']:+.3f} {_ci(r['difference_ci'])}") + ")" for r in learning_curve_readings(results)]
    return head + ["Each probe retrained on nested subsets of the training split (one seeded permutation, the first "
                   "ceil(fraction x n) articles; the same validation and test articles); fraction 1 is the normal "
                   "probe. Change: test MAE minus the point before's, paired on the same test articles, with its 95% "
                   "bootstrap CI.", "",
                   _table(["model / probe", "fraction", "training articles", "test MAE", "95% CI", "val MAE",
                           "change", "95% CI"], table), "",
                   f"Reading: {CURVE_RULE}.", ""] + readings


def comparison_markdown(results: dict, figures: dict[str, str]) -> str:
    """The comparison report: best model vs baseline, overall, per dimension, per language, truncation.

    figures: {caption: path relative to the report}.
    """
    dims = results["dimension_names"]
    out = [f"# Comparison report: {results['dataset']}", "",
           f"{results['n_test']} test articles, {len(dims)} dimensions ({', '.join(dims)}). "
           f"95% CIs: {results['bootstrap_samples']} bootstrap resamples of articles (seed {results['random_seed']}). "
           f"Evaluated {results.get('evaluated_at', 'n/a')}."]
    for section in (_best_section, _overall_section, _dimension_section, _language_section, _truncation_section,
                    _chunking_section, _pairs_section, _screening_section, _learning_curve_section):
        lines = section(results)
        out += [""] + lines if lines else []
    out += ["", "## Figures"] + [f"\n![{caption}]({path})" for caption, path in figures.items()]
    return "\n".join(out) + "\n"


def draw_figures(cfg: Config, results: dict) -> dict[str, Path]:
    """Draw the charts of `FIGURES`; {name: png}."""
    name = results["dataset"]
    bars = plots.mae_bars(comparison_rows(results), results.get("baseline_mae"),
                          paths.comparison_figure(cfg, name, "mae_by_model"),
                          baseline_source=results.get("baseline_source", ""),
                          mean_mae=(results.get("mean_predictor") or {}).get("overall_mae"))
    matrix, rows, dims = dimension_matrix(results)
    heatmap = plots.dimension_heatmap(matrix, rows, dims, paths.comparison_figure(cfg, name, "dimension_mae_heatmap"),
                                      title=f"Test MAE per dimension ({name})")
    figures = {"mae_by_model": bars, "dimension_mae_heatmap": heatmap}
    curves = screening_curves(results)
    if curves:
        figures["screening_curve"] = plots.screening_curve(
            curves, results["screening_setup"]["recall_targets"], paths.comparison_figure(cfg, name, "screening_curve"))
    learning = learning_curves(results)
    if learning:
        figures["learning_curve"] = plots.learning_curve(
            {f"{v} + {p}": points for v, p, points in learning}, results.get("baseline_mae"),
            paths.comparison_figure(cfg, name, "learning_curve"), baseline_source=results.get("baseline_source", ""))
    return figures


# -- yes/no labels (task: classification) --------------------------------------------------------
BINARY_FIGURES = {"f1_by_model": "Test F1 by model and probe with 95% CIs, at each probe's threshold chosen on "
                                 "validation"}


def binary_rows(results: dict) -> list[dict]:
    """One row a model x probe, best test F1 first: F1, precision, recall, ROC AUC (values and CIs), threshold."""
    return [{"model": v, "probe": p, "f1": m["f1"], "ci95": m["f1_ci95"], "precision": m["precision"],
             "precision_ci95": m["precision_ci95"], "recall": m["recall"], "recall_ci95": m["recall_ci95"],
             "roc_auc": m["roc_auc"], "roc_auc_ci95": m["roc_auc_ci95"], "threshold": m["threshold"],
             "val_log_loss": m["val_log_loss"], "val_f1": m["val_f1"]} for v, p, m in ranked(results)]


def _value_ci(x, ci) -> str:
    return f"{_f(x)} {_ci(ci)}" if ci and ci[0] is not None else _f(x)


def binary_markdown(results: dict, figures: dict[str, str]) -> str:
    """The comparison report of a yes/no dataset: best probe against the fine-tuned classifier's F1, every
    probe's F1 / precision / recall / ROC AUC with CIs and its threshold, per language, truncation."""
    best, base, ref = results["best"], results.get("baseline_f1"), results["always_yes"]
    label = results["dimension_names"][0]
    out = [f"# Comparison report: {results['dataset']} (yes/no: {label})", "",
           f"{results['n_test']} test articles, {results['positive_rate']:.1%} of them yes. Each probe says yes where "
           "its P(yes) reaches the threshold that maximises F1 on the validation split; F1, precision and recall "
           f"are of the yes class. 95% CIs: {results['bootstrap_samples']} bootstrap resamples of articles (seed "
           f"{results['random_seed']}). Evaluated {results.get('evaluated_at', 'n/a')}.", "",
           "## Best model (chosen on validation log-loss)", "",
           f"- **{best['model']} + {best['probe']}**: validation log-loss {_f(best['val_log_loss'], 4)}, threshold "
           f"{_f(best['threshold'])}; test F1 {_value_ci(best['test_f1'], best['f1_ci95'])}, precision "
           f"{_value_ci(best['test_precision'], best['precision_ci95'])}, recall "
           f"{_value_ci(best['test_recall'], best['recall_ci95'])}, ROC AUC "
           f"{_value_ci(best['test_roc_auc'], best['roc_auc_ci95'])}"]
    if base and "gap_to_baseline" in best:
        out += [f"- Fine-tuned classifier: test F1 {_f(base)} ({results['baseline_source']})",
                f"- Gap to it: {best['gap_to_baseline']:+.3f} F1 (positive: the probe is better); the best probe's F1 "
                f"is {best['against_baseline']}"]
    else:
        out.append("- No fine-tuned classifier F1 known (config.yaml baseline_f1, the folder's dataset.yaml or "
                   "evaluate.py --baseline-f1): no comparison")
    out.append(f"- Saying yes to every article: F1 {_value_ci(ref['f1'], ref.get('f1_ci95'))} (precision "
               f"{_f(ref['precision'])}, recall 1)")
    rows = binary_rows(results)
    out += ["", "## Overall results (sorted by test F1)", "",
            _table(["#", "model", "probe", "threshold", "test F1", "95% CI", "precision", "95% CI", "recall", "95% CI",
                    "ROC AUC", "95% CI", "val log-loss", "val F1"],
                   [[i, r["model"], r["probe"] + (" (best on val)" if (r["model"], r["probe"]) ==
                                                  (best["model"], best["probe"]) else ""),
                     _f(r["threshold"]), _f(r["f1"]), _ci(r["ci95"]), _f(r["precision"]), _ci(r["precision_ci95"]),
                     _f(r["recall"]), _ci(r["recall_ci95"]), _f(r["roc_auc"]), _ci(r["roc_auc_ci95"]),
                     _f(r["val_log_loss"], 4), _f(r["val_f1"])] for i, r in enumerate(rows, 1)], 3)]
    counts = results.get("language_counts") or {}
    entries = ranked(results)
    yes = {lang: g["positives"] for lang, g in entries[0][2]["per_language"].items()} if entries else {}
    out += ["", "## Test F1 per language", "", "F1 of each probe at its threshold (n/a: no yes to find and none "
            "predicted).", "",
            _table(["model / probe", *(f"{lang} (n={n}, {yes.get(lang, '?')} yes)" for lang, n in counts.items())],
                   [[f"{v} / {p}", *(_f((m["per_language"].get(lang) or {}).get("f1")) for lang in counts)]
                    for v, p, m in entries]),
            "", "## Truncation: articles longer than the model's max tokens", "",
            _table(["model / probe", "max tokens", "truncated (yes)", "F1 truncated", "whole (yes)", "F1 whole"],
                   [[f"{v} / {p}", m["truncation"]["max_tokens"],
                     f"{m['truncation']['truncated']['n']} ({m['truncation']['truncated']['positives']})",
                     _f(m["truncation"]["truncated"]["f1"]),
                     f"{m['truncation']['not_truncated']['n']} ({m['truncation']['not_truncated']['positives']})",
                     _f(m["truncation"]["not_truncated"]["f1"])] for v, p, m in entries]),
            "", "Not computed for yes/no labels: MAE, per-dimension tables, success bands and the screening "
                "thresholds (they are score analyses).",
            "", "## Figures"]
    out += [f"\n![{caption}]({path})" for caption, path in figures.items()]
    return "\n".join(out) + "\n"


def draw_binary_figures(cfg: Config, results: dict) -> dict[str, Path]:
    rows = [{"model": r["model"], "probe": r["probe"], "f1": r["f1"], "ci95": r["ci95"]} for r in binary_rows(results)
            if r["ci95"][0] is not None]
    return {"f1_by_model": plots.f1_bars(rows, results.get("baseline_f1"),
                                         paths.comparison_figure(cfg, results["dataset"], "f1_by_model"),
                                         always_yes_f1=results["always_yes"]["f1"])}
