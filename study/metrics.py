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


CI_METHODS = ("percentile", "BCa")


RESAMPLE_BLOCK = 1 << 20   # article indices drawn at once (8 MiB): memory stays flat however large the test set


def resamples(n: int, n_boot: int, seed: int):
    """The bootstrap's resamples of n articles (with replacement), in blocks of rows of indices, a resample a row:
    the draws `rng.integers(0, n, n)` would give one resample at a time from `default_rng(seed)`, bit for bit (the
    generator's stream does not depend on how many values a call asks for), at a numpy call a block."""
    rng = np.random.default_rng(seed)
    per_block = max(1, RESAMPLE_BLOCK // max(n, 1))
    for start in range(0, n_boot, per_block):
        yield rng.integers(0, n, (min(per_block, n_boot - start), n))


def resampled(stat, n: int, n_boot: int, seed: int) -> np.ndarray:
    """`stat(rows)` of every resample (`resamples`), called a block at a time: one value a resample, in draw order."""
    return np.concatenate([np.empty(0), *(np.asarray(stat(rows), dtype=np.float64)
                                          for rows in resamples(n, n_boot, seed))])


def groups_largest_first(groups) -> list[tuple[str, np.ndarray]]:
    """[(group, its rows as a boolean mask)] of an array of group names (languages), the largest group first and
    ties in name order: the order every per-language table and record uses."""
    groups = np.asarray(groups).astype(str)
    names, counts = np.unique(groups, return_counts=True)
    return [(str(names[g]), groups == names[g]) for g in np.argsort(-counts, kind="stable")]


def bootstrap_ci(per_article: np.ndarray, n_boot: int, seed: int, level: float = 0.95,
                 method: str = "percentile") -> tuple[float, float]:
    """CI of the mean of `per_article` values, resampling articles with replacement: percentile, or (`method`
    "BCa") bias-corrected and accelerated (`bca_ci`), better where few articles carry a skewed error."""
    if method not in CI_METHODS:
        raise ValueError(f"a bootstrap CI method is one of {', '.join(CI_METHODS)}, found {method!r}")
    if method == "BCa":
        return bca_ci(per_article, n_boot, seed, level)
    values = np.asarray(per_article, dtype=np.float64)
    means = resampled(lambda rows: values[rows].mean(axis=1), len(values), n_boot, seed)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def bca_ci(per_article, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """The BCa (bias-corrected and accelerated) bootstrap CI of the mean of `per_article` values
    (scipy.stats.bootstrap, method 'BCa', `n_boot` resamples from a generator seeded with `seed`). Values all equal
    (no spread to resample) give the point; where BCa is undefined (its bias or acceleration estimate), the
    percentile CI from the same seed."""
    from scipy.stats import bootstrap

    values = np.asarray(per_article, dtype=np.float64)
    if len(values) < 2 or np.ptp(values) == 0:
        return float(values.mean()), float(values.mean())
    res = bootstrap((values,), np.mean, n_resamples=n_boot, confidence_level=level, method="BCa",
                    random_state=np.random.default_rng(seed), vectorized=True, batch=min(n_boot, 1000))
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return bootstrap_ci(values, n_boot, seed, level)
    return float(lo), float(hi)


def article_mae(Y, P) -> np.ndarray:
    """Each article's MAE over its dimensions (the unit the bootstrap resamples)."""
    return np.abs(np.asarray(P, dtype=np.float64) - np.asarray(Y, dtype=np.float64)).mean(axis=1)


def summed_rate(rates) -> float:
    """The throughput of doing several things one after the other, from each one's rate: 1 / sum of 1 / rate
    (two embedders at 100 and 25 articles/s side by side make 20 articles/s)."""
    return 1.0 / sum(1.0 / r for r in rates)


SUCCESS_BANDS = ("closes the gap", "partial", "no improvement")   # best first


def band_limits(baseline_mae: float, margins: dict) -> tuple[float, float]:
    """(closes-the-gap limit, partial limit): the dataset's baseline MAE plus each margin."""
    return baseline_mae + margins["closes_gap"], baseline_mae + margins["partial"]


def success_band(mae: float, baseline_mae: float, margins: dict) -> str:
    """The band of a test MAE: within baseline + closes_gap, within baseline + partial, or beyond."""
    closes, partial = band_limits(baseline_mae, margins)
    if mae <= closes + 1e-12:
        return SUCCESS_BANDS[0]
    if mae <= partial + 1e-12:
        return SUCCESS_BANDS[1]
    return SUCCESS_BANDS[2]


def clopper_pearson(k: int, n: int, level: float = 0.95) -> list[float | None]:
    """The exact (Clopper-Pearson) two-sided CI of a proportion k / n: never zero-width (50 of 50 gives
    [0.929, 1]); [None, None] without articles."""
    from scipy.stats import beta

    if not 0 <= k <= n:
        raise ValueError(f"a proportion needs 0 <= k <= n, found k={k}, n={n}")
    if n == 0:
        return [None, None]
    alpha = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))
    return [lo, hi]


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


def score_with_ci(Y, P, dimension_names: list[str], n_boot: int, seed: int, method: str = "percentile") -> dict:
    """`score` plus the 95% bootstrap CI of the MAE (articles resampled; `method` percentile or BCa, recorded as
    `mae_ci_method`)."""
    return {**score(Y, P, dimension_names), "mae_ci95": bootstrap_ci(article_mae(Y, P), n_boot, seed, method=method),
            "mae_ci_method": method}


def score_probe(Y, P, dimension_names: list[str], *, languages, token_counts, max_tokens: int,
                n_boot: int, seed: int, method: str = "percentile") -> dict:
    """Everything phase 3 reports for one probe's test predictions: scores with CI (`method`), MAE per
    language, and truncated against whole articles."""
    return {**score_with_ci(Y, P, dimension_names, n_boot, seed, method),
            "per_language": mae_by_group(Y, P, languages),
            "truncation": truncation_split(article_mae(Y, P), token_counts, max_tokens)}


def paired_difference(probe_err: np.ndarray, baseline_err: np.ndarray, n_boot: int, seed: int,
                      method: str = "percentile") -> dict:
    """Probe minus baseline per-article MAE on the same articles, with a paired bootstrap CI (`method`, recorded as
    `ci_method`: percentile or BCa)."""
    diff = np.asarray(probe_err, dtype=np.float64) - np.asarray(baseline_err, dtype=np.float64)
    return {"n_articles": int(len(diff)), "probe_mae": float(np.mean(probe_err)),
            "baseline_mae": float(np.mean(baseline_err)), "mae_difference": float(diff.mean()),
            "difference_ci95": bootstrap_ci(diff, n_boot, seed, method=method), "ci_method": method}


# -- yes/no labels (task: classification) ------------------------------------------------------
def bootstrap_statistic(statistic, n: int, n_boot: int, seed: int, level: float = 0.95):
    """Percentile CI of `statistic(rows)` over `n_boot` resamples of the n articles (the same draws as
    `bootstrap_ci`); resamples where the statistic is undefined (NaN) are left out; (None, None) if all are.
    A statistic that returns several numbers gets a list of CIs, one per number, from the same resamples."""
    values = np.array([np.atleast_1d(np.asarray(statistic(rows), dtype=np.float64))
                       for block in resamples(n, n_boot, seed) for rows in block])
    alpha = (1 - level) / 2
    cis = []
    for column in values.T:
        column = column[np.isfinite(column)]
        cis.append((None, None) if not len(column) else
                   (float(np.quantile(column, alpha)), float(np.quantile(column, 1 - alpha))))
    return cis if values.shape[1] > 1 else cis[0]


def _counts(y: np.ndarray, yhat: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of 0/1 arrays."""
    tp = int(np.sum(y & yhat))
    fp = int(np.sum(~y & yhat))
    fn = int(np.sum(y & ~yhat))
    return tp, fp, fn, len(y) - tp - fp - fn


def _ratio(a, b) -> float:
    return a / b if b else float("nan")


def roc_auc(y, p) -> float:
    """ROC AUC (ties counted half, as sklearn's roc_auc_score); NaN when only one class is present."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    pos = int(y.sum())
    if pos == 0 or pos == len(y):
        return float("nan")
    ranks = rankdata(np.asarray(p, dtype=np.float64))
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos)))


def binary_scores(y, p, threshold: float) -> dict:
    """F1, precision, recall (of the yes class) at `p >= threshold`, ROC AUC of `p`, accuracy, counts.

    Undefined figures are NaN (written as null, shown as n/a): F1 where there is no true and no
    predicted yes (sklearn would say 0), precision without a predicted yes, recall without a true yes."""
    y, p = np.asarray(y).ravel().astype(bool), np.asarray(p, dtype=np.float64).ravel()
    yhat = p >= threshold
    tp, fp, fn, tn = _counts(y, yhat)
    return {"f1": _ratio(2 * tp, 2 * tp + fp + fn), "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn), "roc_auc": roc_auc(y, p), "accuracy": (tp + tn) / len(y),
            "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn}, "n": int(len(y)), "positives": int(y.sum()),
            "predicted_positives": int(yhat.sum())}


def _nan_to_none(x):
    return None if isinstance(x, float) and not np.isfinite(x) else x


def score_binary(y, p, threshold: float, *, languages, token_counts, max_tokens: int, n_boot: int, seed: int) -> dict:
    """Everything phase 3 reports for one yes/no probe's test probabilities: F1, precision, recall and ROC AUC
    at the validation threshold, each with a 95% bootstrap CI (articles resampled), per language and for
    truncated against whole articles (F1, n)."""
    y, p = np.asarray(y).ravel().astype(bool), np.asarray(p, dtype=np.float64).ravel()
    out = {**binary_scores(y, p, threshold), "threshold": float(threshold)}
    keys = ("f1", "precision", "recall", "roc_auc")

    def stat(idx):
        s = binary_scores(y[idx], p[idx], threshold)
        return [s[k] for k in keys]

    for key, ci in zip(keys, bootstrap_statistic(stat, len(y), n_boot, seed)):
        out[f"{key}_ci95"] = list(ci)
    out["per_language"] = {}
    for lang, mask in groups_largest_first(languages):
        s = binary_scores(y[mask], p[mask], threshold)
        out["per_language"][lang] = {k: _nan_to_none(s[k]) for k in ("n", "positives", "f1", "precision", "recall")}
    cut = np.asarray(token_counts) > max_tokens
    out["truncation"] = {"max_tokens": int(max_tokens), **{
        name: {"n": int(mask.sum()), "positives": int(y[mask].sum()),
               "f1": _nan_to_none(binary_scores(y[mask], p[mask], threshold)["f1"]) if mask.any() else None}
        for name, mask in (("truncated", cut), ("not_truncated", ~cut))}}
    return {k: _nan_to_none(v) for k, v in out.items()}


def always_yes(y, n_boot: int, seed: int) -> dict:
    """The reference that says yes to every article: recall 1, precision = F1 / (2 - F1) = the yes rate."""
    y = np.asarray(y).ravel().astype(bool)
    s = binary_scores(y, np.ones(len(y)), 0.5)
    s["f1_ci95"] = list(bootstrap_statistic(lambda idx: binary_scores(y[idx], np.ones(len(idx)), 0.5)["f1"], len(y),
                                            n_boot, seed))
    return {k: _nan_to_none(v) for k, v in s.items()}
