"""Can a probe screen articles for the fine-tuned model? The numbers of the two-stage scorer.

The article score is the weighted mean of its dimension scores (config `dimension_weights`,
equal by default); tiers cut it at `medium` and `high`. A screening threshold on the
predicted article score lets the articles below it skip the fine-tuned model (the probe's
scores are final for them); it is chosen on the validation split as the highest threshold
that keeps at least a target share (`screening_recall`) of the articles whose true score is
medium or higher, then applied unchanged to the test split. Every single number on test
comes with a 95% bootstrap CI (articles resampled, seeded); the proportions (recall, skip share, tier
accuracy, shares within ±0.5 / ±1) also with their exact Clopper-Pearson interval.

That plug-in threshold just meets the target on validation, so on new articles it misses it about half
the time. The guaranteed threshold (`guaranteed_threshold`) is an order statistic of the medium+
validation articles' predicted scores chosen so that, at one-sided confidence `screening_confidence`,
the share it keeps of new medium+ articles is at least the target (the one-sided Clopper-Pearson rule);
with too few medium+ validation articles no threshold can promise that, and the record says so.

The guarantee is over validation samples, so one test split's recall may still fall below the target even when
it holds (`ONE_SPLIT`); a seed ensemble's threshold moves with its seeds (`seed_skip_shares`: the guaranteed skip
share of each seed's probe alone, recorded beside the CI, which treats the threshold as fixed).
"""
from __future__ import annotations

import math

import numpy as np

from study.errors import StudyError
from study.metrics import clopper_pearson, groups_largest_first, resampled
from study.verdicts import too_few_to_judge

TIER_NAMES = ("low", "medium", "high")
ONE_SPLIT = ("one test split's recall can fall below the target even when the guarantee holds (in about 5-10% of "
             "re-splits of real articles, docs/RESULTS.md): only an exact CI wholly below it speaks against it")


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
    """Percentile 95% CI of a statistic over `n_boot` resamples of the n articles (NaN resamples dropped).
    `stat(rows)` takes a block of resamples, a row of article indices each, and gives one value a row."""
    values = resampled(stat, n, n_boot, seed)
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
        out[key + "_ci95"] = bootstrap(len(values), lambda rows, v=values: v[rows].mean(axis=1), n_boot, seed)
        if key != "weighted_mae":
            out[key + "_exact_ci95"] = clopper_pearson(int(per_article.sum()), len(values))
    out["tier_confusion"] = [[int(((t_true == a) & (t_pred == b)).sum()) for b in range(3)] for a in range(3)]
    return out


def choose_threshold(s_true, s_pred, medium: float, recall: float) -> float | None:
    """The highest threshold on the predicted score keeping >= `recall` of the articles truly >= medium."""
    relevant = np.sort(np.asarray(s_pred)[np.asarray(s_true) >= medium])
    if not len(relevant):
        return None
    misses = int(math.floor((1 - recall) * len(relevant) + 1e-9))
    return float(relevant[misses])


def majority_tier(train_scores, test_scores, tiers: dict) -> dict:
    """The trivial reference of tier accuracy: the tier most training articles fall in, and the share of test
    articles in it (what saying that tier for every article scores), with its exact CI."""
    train_tiers, test_tiers = tier_of(np.asarray(train_scores), tiers), tier_of(np.asarray(test_scores), tiers)
    tier = int(np.argmax(np.bincount(train_tiers, minlength=len(TIER_NAMES))))
    k = int((test_tiers == tier).sum())
    return {"tier": TIER_NAMES[tier], "accuracy": k / len(test_tiers),
            "accuracy_exact_ci95": clopper_pearson(k, len(test_tiers))}


def articles_needed(recall: float, confidence: float) -> int | None:
    """The fewest medium+ validation articles with which any threshold can keep `recall` of new ones at one-sided
    `confidence`: the smallest n with recall**n <= 1 - confidence (299 for 99% at 95%); None for recall 1."""
    from scipy.stats import binom

    if recall >= 1:
        return None
    n = max(1, math.ceil(math.log(1 - confidence) / math.log(recall)))
    while n > 1 and binom.cdf(0, n - 1, 1 - recall) <= 1 - confidence:   # guard the float edges
        n -= 1
    while binom.cdf(0, n, 1 - recall) > 1 - confidence:
        n += 1
    return n


def misses_allowed(n: int, recall: float, confidence: float) -> int | None:
    """How many of the n medium+ validation articles a guaranteed threshold may leave below it: the largest m
    with P(Binomial(n, 1 - recall) <= m) <= 1 - confidence; None when not even m = 0 qualifies.

    Why: for the threshold at the (m+1)-th lowest of n exchangeable scores, the share of new medium+ articles
    it misses is Beta(m+1, n-m) distributed, and P(Beta(m+1, n-m) <= 1 - recall) = P(Binomial(n, 1 - recall)
    >= m+1). The same m makes the one-sided Clopper-Pearson lower bound of the kept share (n - m of n) reach
    the target."""
    from scipy.stats import binom

    if n <= 0:
        return None
    ok = binom.cdf(np.arange(n), n, 1 - recall) <= 1 - confidence
    return int(np.flatnonzero(ok)[-1]) if ok[0] else None


def guaranteed_threshold(s_true, s_pred, medium: float, recall: float, confidence: float) -> dict:
    """The highest threshold on the predicted score that keeps >= `recall` of new medium+ articles at one-sided
    `confidence` (`misses_allowed`): {"threshold" (None when n cannot certify it), "confidence", "n_relevant",
    "misses_allowed", "articles_needed", "certified", "note" (None, or "cannot be certified with N articles
    (needs M)")}."""
    relevant = np.sort(np.asarray(s_pred, np.float64)[np.asarray(s_true) >= medium])
    n, needed = len(relevant), articles_needed(recall, confidence)
    m = misses_allowed(n, recall, confidence)
    out = {"threshold": None if m is None else float(relevant[m]), "confidence": confidence, "n_relevant": int(n),
           "misses_allowed": m, "articles_needed": needed, "certified": m is not None, "note": None}
    if m is None:
        out["note"] = (f"cannot be certified with {n} articles (needs {needed})" if needed is not None else
                       f"cannot be certified with {n} articles (a recall of 1 can never be)")
    return out


def at_threshold(s_true, s_pred, article_err, threshold: float, medium: float, n_boot: int, seed: int) -> dict:
    """Skip share, recall of medium+ articles and MAE of the skipped articles at one threshold, with CIs."""
    skip, relevant = s_pred < threshold, s_true >= medium

    def skip_share(rows):
        return skip[rows].mean(axis=1)

    def recall(rows):   # kept medium+ articles / medium+ articles: counts, so the same as each resample's mean
        kept, among = (~skip[rows] & relevant[rows]).sum(axis=1), relevant[rows].sum(axis=1)
        return np.divide(kept, among, out=np.full(len(rows), np.nan), where=among > 0)

    def skipped_mae(rows):   # a mean of floats over a subset: one resample at a time, to sum in the same order
        return [_mean(article_err[r][skip[r]]) for r in rows]

    n, kept = len(skip), int((~skip & relevant).sum())
    return {"n": int(n), "n_skipped": int(skip.sum()), "n_relevant": int(relevant.sum()),
            "skip_share": float(skip.mean()), "skip_share_ci95": bootstrap(n, skip_share, n_boot, seed),
            "recall": _mean(~skip[relevant]), "recall_ci95": bootstrap(n, recall, n_boot, seed),
            "skipped_mae": _mean(article_err[skip]), "skipped_mae_ci95": bootstrap(n, skipped_mae, n_boot, seed),
            "n_kept_relevant": kept, "skip_share_exact_ci95": clopper_pearson(int(skip.sum()), n),
            "recall_exact_ci95": clopper_pearson(kept, int(relevant.sum()))}


def below_target(recall_ci, target: float) -> bool | None:
    """The screening's one reading of a test recall against its target: below it only where the exact 95% CI lies
    wholly below (one test split's point estimate may fall short while the guarantee holds); None without medium+
    articles."""
    hi = recall_ci[1]
    return None if hi is None else bool(hi < target)


def figures_on_test(s_true, s_pred, article_err, threshold: float, medium: float, target: float, n_boot: int,
                 seed: int, min_articles: int) -> dict:
    """`at_threshold` on test, plus "recall_below_target" (the exact CI of the recall lies wholly below the
    target; None without medium+ articles) and "skipped_too_few" (fewer skipped articles than
    `min_articles`: their MAE is too few to judge)."""
    r = at_threshold(s_true, s_pred, article_err, threshold, medium, n_boot, seed)
    return {**r, "recall_below_target": below_target(r["recall_exact_ci95"], target),
            "skipped_too_few": too_few_to_judge(r["n_skipped"], min_articles=min_articles, min_positives=0)}


def curve(s_true, s_pred, medium: float, score_range) -> dict:
    """Skip share and recall of medium+ articles (test split) at every threshold where either changes: the
    bottom of the score range, each distinct predicted score, and just above the highest (every article
    skips). Exact, so a step drawn through these points agrees with the tables at any threshold."""
    s_pred = np.asarray(s_pred, dtype=np.float64)
    top = np.nextafter(s_pred.max(), np.inf) if len(s_pred) else score_range[1]
    thresholds = np.unique(np.concatenate([[score_range[0]], s_pred, [top]]))
    relevant = np.asarray(s_true) >= medium
    skip = s_pred[None, :] < thresholds[:, None]
    return {"threshold": thresholds.tolist(), "skip_share": skip.mean(axis=1).tolist(),
            "recall": ((~skip[:, relevant]).mean(axis=1) if relevant.any() else np.full(len(thresholds), np.nan)).tolist()}


def per_language(s_true, s_pred, threshold: float, medium: float, target: float, languages) -> dict:
    """{language: its test articles at `threshold`}, largest first: how many skip the fine-tuned model, and the recall
    of its medium+ articles with the exact CI, `recall_below_target` when that CI lies wholly below `target` (a
    threshold that keeps the target overall may keep far fewer of one language's medium+ articles)."""
    skip, relevant = np.asarray(s_pred) < threshold, np.asarray(s_true) >= medium
    out = {}
    for lang, here in groups_largest_first(languages):
        n_rel, kept = int((relevant & here).sum()), int((relevant & here & ~skip).sum())
        ci = clopper_pearson(kept, n_rel)
        out[lang] = {"n": int(here.sum()), "n_skipped": int((skip & here).sum()), "skip_share": float(skip[here].mean()),
                     "n_relevant": n_rel, "n_kept_relevant": kept, "recall": kept / n_rel if n_rel else None,
                     "recall_exact_ci95": ci, "recall_below_target": below_target(ci, target)}
    return out


def screen(val: tuple, test: tuple, w: np.ndarray, tiers: dict, targets: list[float], score_range,
           n_boot: int, seed: int, confidence: float = 0.95, min_articles: int = 30, languages=None) -> dict:
    """val, test: (Y, P) each. Thresholds chosen on validation for each recall target, applied to test.

    Each target's entry: "threshold", "val", "test" of the plug-in threshold (`choose_threshold`, a reference),
    "n_relevant_val" (medium+ validation articles) and "guaranteed" (`guaranteed_threshold`, with its own "val"
    and "test" when it is certified, and with the test articles' `languages` its "per_language" figures). Test
    figures are `figures_on_test`."""
    (Yv, Pv), (Yt, Pt) = val, test
    sv_true, sv_pred = np.asarray(Yv, np.float64) @ w, np.asarray(Pv, np.float64) @ w
    st_true, st_pred = np.asarray(Yt, np.float64) @ w, np.asarray(Pt, np.float64) @ w
    err_v = np.abs(np.asarray(Pv, np.float64) - Yv).mean(axis=1)
    err_t = np.abs(np.asarray(Pt, np.float64) - Yt).mean(axis=1)
    medium = tiers["medium"]
    out = []
    def applied(t, target):
        v = at_threshold(sv_true, sv_pred, err_v, t, medium, 0, seed)
        return {"val": {k: v[k] for k in ("n", "n_skipped", "skip_share", "recall", "skipped_mae")},
                "test": figures_on_test(st_true, st_pred, err_t, t, medium, target, n_boot, seed, min_articles)}

    for target in targets:
        t = choose_threshold(sv_true, sv_pred, medium, target)
        g = guaranteed_threshold(sv_true, sv_pred, medium, target, confidence)
        if g["threshold"] is not None:
            g.update(applied(g["threshold"], target))
            if languages is not None:
                g["per_language"] = per_language(st_true, st_pred, g["threshold"], medium, target, languages)
        entry = {"target_recall": target, "threshold": t, **(applied(t, target) if t is not None else {}),
                 "n_relevant_val": g["n_relevant"], "guaranteed": g}
        out.append(entry)
    return {"thresholds": out, "curve": curve(st_true, st_pred, medium, score_range)}


def seed_skip_shares(val: tuple, test: tuple, w: np.ndarray, medium: float, targets: list[float],
                     confidence: float) -> list[list[float | None]]:
    """The guaranteed threshold's test skip share of each seed's probe alone, per recall target: `val`, `test`:
    (Y, [P of each member]); the threshold chosen on each member's own validation predictions
    (`guaranteed_threshold`), None where it cannot be certified."""
    (Yv, Pvs), (_, Pts) = val, test
    sv_true = np.asarray(Yv, np.float64) @ w   # the test labels are not needed: the share skipped is of predictions
    out = []
    for target in targets:
        shares = []
        for Pv, Pt in zip(Pvs, Pts):
            g = guaranteed_threshold(sv_true, np.asarray(Pv, np.float64) @ w, medium, target, confidence)
            shares.append(None if g["threshold"] is None else
                          float((np.asarray(Pt, np.float64) @ w < g["threshold"]).mean()))
        out.append(shares)
    return out
