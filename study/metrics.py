"""Scores of predictions against labels: MAE, RMSE, Spearman, groups, bootstrap CIs, bands."""
from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


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
    """{group: {"n": articles, "mae": MAE over their dimensions}}, largest group first."""
    groups = np.asarray(groups)
    abs_err = np.abs(np.asarray(P, dtype=np.float64) - np.asarray(Y, dtype=np.float64)).mean(axis=1)
    names, counts = np.unique(groups, return_counts=True)
    out = {}
    for name in names[np.argsort(-counts, kind="stable")]:
        mask = groups == name
        out[str(name)] = {"n": int(mask.sum()), "mae": float(abs_err[mask].mean())}
    return out


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


def success_band(mae: float, closes_gap: float, partial: float) -> str:
    if mae <= closes_gap:
        return "closes the gap"
    if mae <= partial:
        return "partial"
    return "no improvement"
