"""Can a probe screen articles for the fine-tuned model? The numbers of the two-stage scorer.

The article score is the weighted mean of its dimension scores (config `dimension_weights`,
equal by default); tiers cut it at `medium` and `high`. A screening threshold on the
predicted article score lets the articles below it skip the fine-tuned model (the probe's
scores are final for them); it is chosen on the validation split as the highest threshold
that keeps at least a target share (`screening_recall`) of the articles whose true score is
medium or higher, then applied unchanged to the test split. Every single number on test
comes with a 95% bootstrap CI (articles resampled, seeded).
"""
from __future__ import annotations

import math

import numpy as np

from study.errors import StudyError

TIER_NAMES = ("low", "medium", "high")
CURVE_POINTS = 101


def weight_vector(dimension_names: list[str], weights: dict[str, float] | None) -> np.ndarray:
    """Weights in the order of `dimension_names`, summing to 1 (equal when None)."""
    if weights is None:
        return np.full(len(dimension_names), 1.0 / len(dimension_names))
    if set(weights) != set(dimension_names):
        raise StudyError(f"dimension_weights name {sorted(weights)}, but the data's dimensions are "
                         f"{sorted(dimension_names)}: give one weight per dimension name")
    w = np.array([weights[d] for d in dimension_names], dtype=np.float64)
    return w / w.sum()


def tier_of(scores: np.ndarray, tiers: dict) -> np.ndarray:
    """0 low, 1 medium (>= medium), 2 high (>= high)."""
    return np.digitize(scores, [tiers["medium"], tiers["high"]])


def bootstrap(n: int, stat, n_boot: int, seed: int) -> list[float | None]:
    """Percentile 95% CI of `stat(indices)` over `n_boot` resamples of the n articles (NaN resamples dropped)."""
    rng = np.random.default_rng(seed)
    values = np.array([stat(rng.integers(0, n, n)) for _ in range(n_boot)], dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return [None, None]
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


def _mean(x) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def tier_scores(Y, P, w: np.ndarray, tiers: dict, n_boot: int, seed: int) -> dict:
    """Article-score MAE, tier accuracy, tier confusion (rows true, columns predicted), shares within ±0.5 / ±1.0."""
    s_true, s_pred = np.asarray(Y, np.float64) @ w, np.asarray(P, np.float64) @ w
    err = np.abs(s_pred - s_true)
    t_true, t_pred = tier_of(s_true, tiers), tier_of(s_pred, tiers)
    hit = t_true == t_pred
    out = {"n": int(len(err))}
    for key, per_article in (("weighted_mae", err), ("tier_accuracy", hit), ("within_0.5", err <= 0.5),
                             ("within_1.0", err <= 1.0)):
        values = per_article.astype(np.float64)
        out[key] = float(values.mean())
        out[key + "_ci95"] = bootstrap(len(values), lambda i, v=values: v[i].mean(), n_boot, seed)
    out["tier_confusion"] = [[int(((t_true == a) & (t_pred == b)).sum()) for b in range(3)] for a in range(3)]
    return out


def choose_threshold(s_true, s_pred, medium: float, recall: float) -> float | None:
    """The highest threshold on the predicted score keeping >= `recall` of the articles truly >= medium."""
    relevant = np.sort(np.asarray(s_pred)[np.asarray(s_true) >= medium])
    if not len(relevant):
        return None
    misses = int(math.floor((1 - recall) * len(relevant) + 1e-9))
    return float(relevant[misses])


def at_threshold(s_true, s_pred, article_err, threshold: float, medium: float, n_boot: int, seed: int) -> dict:
    """Skip share, recall of medium+ articles and MAE of the skipped articles at one threshold, with CIs."""
    skip, relevant = s_pred < threshold, s_true >= medium

    def skip_share(i):
        return skip[i].mean()

    def recall(i):
        return _mean(~skip[i][relevant[i]])

    def skipped_mae(i):
        return _mean(article_err[i][skip[i]])

    n = len(skip)
    return {"n": int(n), "n_skipped": int(skip.sum()), "n_relevant": int(relevant.sum()),
            "skip_share": float(skip.mean()), "skip_share_ci95": bootstrap(n, skip_share, n_boot, seed),
            "recall": recall(np.arange(n)), "recall_ci95": bootstrap(n, recall, n_boot, seed),
            "skipped_mae": skipped_mae(np.arange(n)), "skipped_mae_ci95": bootstrap(n, skipped_mae, n_boot, seed)}


def curve(s_true, s_pred, medium: float, score_range) -> dict:
    """Skip share and recall of medium+ articles at thresholds across the score range (test split)."""
    thresholds = np.linspace(score_range[0], score_range[1], CURVE_POINTS)
    relevant = s_true >= medium
    skip = s_pred[None, :] < thresholds[:, None]
    return {"threshold": thresholds.tolist(), "skip_share": skip.mean(axis=1).tolist(),
            "recall": ((~skip[:, relevant]).mean(axis=1) if relevant.any() else np.full(len(thresholds), np.nan)).tolist()}


def screen(val: tuple, test: tuple, w: np.ndarray, tiers: dict, targets: list[float], score_range,
           n_boot: int, seed: int) -> dict:
    """val, test: (Y, P) each. Thresholds chosen on validation for each recall target, applied to test."""
    (Yv, Pv), (Yt, Pt) = val, test
    sv_true, sv_pred = np.asarray(Yv, np.float64) @ w, np.asarray(Pv, np.float64) @ w
    st_true, st_pred = np.asarray(Yt, np.float64) @ w, np.asarray(Pt, np.float64) @ w
    err_v = np.abs(np.asarray(Pv, np.float64) - Yv).mean(axis=1)
    err_t = np.abs(np.asarray(Pt, np.float64) - Yt).mean(axis=1)
    medium = tiers["medium"]
    out = []
    for target in targets:
        t = choose_threshold(sv_true, sv_pred, medium, target)
        if t is None:
            out.append({"target_recall": target, "threshold": None})
            continue
        v = at_threshold(sv_true, sv_pred, err_v, t, medium, 0, seed)
        out.append({"target_recall": target, "threshold": t,
                    "val": {k: v[k] for k in ("n", "n_skipped", "skip_share", "recall", "skipped_mae")},
                    "test": at_threshold(st_true, st_pred, err_t, t, medium, n_boot, seed)})
    return {"thresholds": out, "curve": curve(st_true, st_pred, medium, score_range)}
