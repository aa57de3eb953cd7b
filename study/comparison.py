"""Phase 3b: the charts of the evaluation, drawn under the names of `FIGURES` (`BINARY_FIGURES` for yes/no).

The comparison markdown itself is the report's document rendered as markdown (study/report.py
`compare`, phase 3b as one function), so its tables are the Word report's, cell for cell. `comparison_rows`
and `dimension_matrix` are the plain data of the two summary charts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from study import paths, plots
from study.config import Config
from study.findings import learning_curves, ranked, screening_curves

FIGURES = {  # name -> caption, in the order of the report
    "mae_by_model": "Test MAE by model and probe with 95% CIs",
    "dimension_mae_heatmap": "Test MAE per dimension",
    "screening_curve": "Share of test articles that skip the fine-tuned model against the share of medium+ "
                       "articles kept, at every distinct threshold (each model's probe chosen on validation; the "
                       "best model, which page 1 quotes, first)",
    "learning_curve": "Test MAE with 95% CIs against the number of training articles (nested subsets of the "
                      "training split; train_probes.py --train-fractions)",
}
BINARY_FIGURES = {"f1_by_model": "Test F1 by model and probe with 95% CIs, at each probe's threshold chosen on "
                                 "validation"}


def comparison_rows(ev) -> list[dict]:
    """One row a model x probe ({model, probe, mae, ci95}), best test MAE first."""
    return [{"model": v, "probe": p, "mae": m.overall_mae, "ci95": m.mae_ci95} for v, p, m in ranked(ev)]


def dimension_matrix(ev) -> tuple[np.ndarray, list[str], list[str]]:
    """Per-dimension test MAE: (matrix, row labels 'model / probe', dimension names), best row first."""
    dims = ev.dimension_names
    entries = ranked(ev)
    matrix = np.array([[m.per_dimension[d].mae for d in dims] for _, _, m in entries], dtype=float)
    return matrix, [f"{v} / {p}" for v, p, _ in entries], list(dims)


def draw_figures(cfg: Config, ev) -> dict[str, Path]:
    """Draw the charts of `FIGURES` (yes/no: `BINARY_FIGURES`); {name: png}."""
    name = ev.dataset
    if ev.task == "classification":
        rows = [{"model": v, "probe": p, "f1": m.f1, "ci95": m.f1_ci95} for v, p, m in ranked(ev)
                if m.f1_ci95[0] is not None]
        return {"f1_by_model": plots.f1_bars(rows, ev.baseline_f1, paths.comparison_figure(cfg, name, "f1_by_model"),
                                             always_yes_f1=ev.always_yes.f1)}
    bars = plots.mae_bars(comparison_rows(ev), ev.baseline_mae, paths.comparison_figure(cfg, name, "mae_by_model"),
                          baseline_source=ev.baseline_source or "", mean_mae=ev.mean_predictor.overall_mae)
    matrix, rows, dims = dimension_matrix(ev)
    heatmap = plots.dimension_heatmap(matrix, rows, dims, paths.comparison_figure(cfg, name, "dimension_mae_heatmap"),
                                      title=f"Test MAE per dimension ({name})")
    figures = {"mae_by_model": bars, "dimension_mae_heatmap": heatmap}
    curves = screening_curves(ev)
    if curves:
        figures["screening_curve"] = plots.screening_curve(
            curves, ev.screening_setup.recall_targets, paths.comparison_figure(cfg, name, "screening_curve"))
    learning = learning_curves(ev)
    if learning:
        figures["learning_curve"] = plots.learning_curve(
            {f"{v} + {p}": [pt.model_dump() for pt in points] for v, p, points in learning}, ev.baseline_mae,
            paths.comparison_figure(cfg, name, "learning_curve"), baseline_source=ev.baseline_source or "")
    return figures
