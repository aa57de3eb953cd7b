"""Scores of predictions against labels: MAE, RMSE, Spearman, groups, bootstrap CIs, bands."""
from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def finite(x) -> bool:
    """A real, finite number (not a bool, not None, not NaN): what a table may print as a number."""
    return isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool) and bool(np.isfinite(x))


def _spearman(y, p) -> float:
    if np.ptp(y) == 0 or np.ptp(p) == 0:  # undefined for a constant column
        return float("nan")
    return float(spearmanr(y, p).statistic)


def score(Y: np.ndarray, P: np.ndarray, dimension_names: list[str]) -> dict:
    """Overall and per-dimension MAE / RMSE / Spearman.

    `overall_mae` and `overall_rmse` pool every (article, dimension) error;
    `overall_spearman` is the mean of the per-dimension Spearman correlations.
    """
    Y, P = np.asarray(Y, dtype=np.float64), np.asarray(P, dtype=np.float64)
    err = P - Y
    per_dim = {}
    for d, name in enumerate(dimension_names):
        per_dim[name] = {"mae": float(np.mean(np.abs(err[:, d]))), "rmse": float(np.sqrt(np.mean(err[:, d] ** 2))),
                         "spearman": _spearman(Y[:, d], P[:, d])}
    rhos = [v["spearman"] for v in per_dim.values() if np.isfinite(v["spearman"])]
    return {"overall_mae": float(np.mean(np.abs(err))), "overall_rmse": float(np.sqrt(np.mean(err ** 2))),
            "overall_spearman": float(np.mean(rhos)) if rhos else float("nan"), "per_dimension": per_dim}


def mae_by_group(Y: np.ndarray, P: np.ndarray, groups) -> dict:
    """{group: {"n": articles, "mae": MAE over their dimensions, "bias": mean of predicted − true}},
    largest group first (ties in name order)."""
    groups = np.asarray(groups)
    err = np.asarray(P, dtype=np.float64) - np.asarray(Y, dtype=np.float64)
    abs_err, bias = np.abs(err).mean(axis=1), err.mean(axis=1)
    names, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    mae_sum, bias_sum = np.bincount(index, abs_err, len(names)), np.bincount(index, bias, len(names))
    return {str(names[g]): {"n": int(counts[g]), "mae": float(mae_sum[g] / counts[g]), "bias": float(bias_sum[g] / counts[g])}
            for g in np.argsort(-counts, kind="stable")}


def bootstrap_ci(per_article: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the mean of `per_article` values, resampling articles with replacement."""
    values = np.asarray(per_article, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for b in range(n_boot):  # a loop keeps memory flat for large test sets
        means[b] = values[rng.integers(0, len(values), len(values))].mean()
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def article_mae(Y, P) -> np.ndarray:
    """Each article's MAE over its dimensions (the unit the bootstrap resamples)."""
    return np.abs(np.asarray(P, dtype=np.float64) - np.asarray(Y, dtype=np.float64)).mean(axis=1)


def band_limits(baseline_mae: float, margins: dict) -> tuple[float, float]:
    """(closes-the-gap limit, partial limit): the dataset's baseline MAE plus each margin."""
    return baseline_mae + margins["closes_gap"], baseline_mae + margins["partial"]


def success_band(mae: float, baseline_mae: float, margins: dict) -> str:
    """The band of a test MAE: within baseline + closes_gap, within baseline + partial, or beyond."""
    closes, partial = band_limits(baseline_mae, margins)
    if mae <= closes + 1e-12:
        return "closes the gap"
    if mae <= partial + 1e-12:
        return "partial"
    return "no improvement"


def truncation_split(article_err: np.ndarray, token_counts: np.ndarray, max_tokens: int) -> dict:
    """MAE of the articles longer than `max_tokens` (cut) and of the others (whole).

    {"max_tokens", "truncated": {"n", "mae"}, "not_truncated": {"n", "mae"}}; a group without
    articles has MAE None. Phases 3 and 5 both use it.
    """
    article_err = np.asarray(article_err, dtype=np.float64)
    cut = np.asarray(token_counts) > max_tokens
    return {"max_tokens": int(max_tokens),
            **{name: {"n": int(mask.sum()), "mae": float(article_err[mask].mean()) if mask.any() else None}
               for name, mask in (("truncated", cut), ("not_truncated", ~cut))}}


def score_with_ci(Y, P, dimension_names: list[str], n_boot: int, seed: int) -> dict:
    """`score` plus the 95% bootstrap CI of the MAE (articles resampled)."""
    return {**score(Y, P, dimension_names), "mae_ci95": bootstrap_ci(article_mae(Y, P), n_boot, seed)}


def score_probe(Y, P, dimension_names: list[str], *, languages, token_counts, max_tokens: int,
                n_boot: int, seed: int) -> dict:
    """Everything phase 3 reports for one probe's test predictions: scores with CI, MAE per
    language, and truncated against whole articles."""
    return {**score_with_ci(Y, P, dimension_names, n_boot, seed),
            "per_language": mae_by_group(Y, P, languages),
            "truncation": truncation_split(article_mae(Y, P), token_counts, max_tokens)}


def paired_difference(probe_err: np.ndarray, baseline_err: np.ndarray, n_boot: int, seed: int) -> dict:
    """Probe minus baseline per-article MAE on the same articles, with a paired bootstrap CI."""
    diff = np.asarray(probe_err, dtype=np.float64) - np.asarray(baseline_err, dtype=np.float64)
    return {"n_articles": int(len(diff)), "probe_mae": float(np.mean(probe_err)),
            "baseline_mae": float(np.mean(baseline_err)), "mae_difference": float(diff.mean()),
            "difference_ci95": bootstrap_ci(diff, n_boot, seed)}
